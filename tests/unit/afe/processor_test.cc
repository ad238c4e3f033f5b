// The backends on a synthetic echo path: each must cancel the echo, keep the
// near end audible, and the bypass must change nothing.
#include "actors/afe/echo_processor.h"

#include <gtest/gtest.h>

#include "scene.h"

namespace vb::afe {
namespace {

using testing::MakeScene;

// Runs a backend over whole signals in its blocks.
std::vector<float> RunBlocks(EchoProcessor& p, const std::vector<float>& mic, const std::vector<float>& ref) {
  auto m = sim::ToS16(mic), r = sim::ToS16(ref);
  std::vector<int16_t> out(m.size());
  size_t b = p.block_samples();
  for (size_t at = 0; at + b <= m.size(); at += b) p.Process(&m[at], &r[at], &out[at]);
  return sim::ToFloat(out);
}

ProcessorConfig EchoOnly() {
  ProcessorConfig c;
  c.agc = false;  // gain changes would be read as echo loss
  c.noise_suppression = false;
  return c;
}

class Backend : public ::testing::TestWithParam<std::string> {};

TEST_P(Backend, CancelsEchoOfADelayedRoom) {
  // speex adapts slowly on voiced sound: judge the last 8 s of 18.
  auto scene = MakeScene(18, 40, false);
  std::unique_ptr<EchoProcessor> p;
  ASSERT_TRUE(MakeProcessor(GetParam(), EchoOnly(), &p).ok());
  auto out = RunBlocks(*p, scene.mic, scene.far);
  size_t from = size_t(10 * scene.rate), to = scene.mic.size();
  double erle = sim::Erle(scene.mic, out, scene.echo, from, to, -50);
  EXPECT_GE(erle, 20.0) << GetParam();
}

TEST_P(Backend, KeepsTheNearEndTalkerDuringDoubleTalk) {
  auto scene = MakeScene(12, 40, true);
  std::unique_ptr<EchoProcessor> p;
  ASSERT_TRUE(MakeProcessor(GetParam(), EchoOnly(), &p).ok());
  auto out = RunBlocks(*p, scene.mic, scene.far);
  size_t from = size_t(6 * scene.rate), to = scene.mic.size();
  // Output power where the near end talks, against the near end's own power.
  double near_db = sim::PowerDb(scene.near, from, to, scene.near, -40);
  double out_db = sim::PowerDb(out, from, to, scene.near, -40);
  EXPECT_GT(out_db, near_db - 12.0) << GetParam() << ": near end suppressed";
}

TEST_P(Backend, NoReferenceLeavesSpeechAlone) {
  auto scene = MakeScene(6, 0, true);
  std::vector<float> silence(scene.far.size(), 0.0f);
  std::unique_ptr<EchoProcessor> p;
  ASSERT_TRUE(MakeProcessor(GetParam(), EchoOnly(), &p).ok());
  auto out = RunBlocks(*p, scene.near, silence);
  double in_db = sim::PowerDb(scene.near, 16000, scene.near.size(), scene.near, -40);
  double out_db = sim::PowerDb(out, 16000, scene.near.size(), scene.near, -40);
  EXPECT_NEAR(out_db, in_db, 3.0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Afe, Backend, ::testing::Values("speex", "webrtc"));

// webrtc's suppressor mutes the output while its new filter is still
// unconverged, so only speex shows a fresh start as low ERLE.
TEST(Speex, ResetForgetsTheEchoPath) {
  auto scene = MakeScene(8, 20, false);
  std::unique_ptr<EchoProcessor> p;
  ASSERT_TRUE(MakeProcessor("speex", EchoOnly(), &p).ok());
  RunBlocks(*p, scene.mic, scene.far);
  p->Reset();
  // Right after a reset the first half second is barely cancelled.
  std::vector<float> mic(scene.mic.begin(), scene.mic.begin() + 8000);
  std::vector<float> far(scene.far.begin(), scene.far.begin() + 8000);
  auto out = RunBlocks(*p, mic, far);
  EXPECT_LT(sim::Erle(mic, out, scene.echo, 0, 8000, -50), 10.0);
}

// While the speaker is silent for longer than the tail (the user talks, the
// assistant listens) the canceller is not run at all; when the next reply
// starts it picks up with what it had learnt, and in between the user's voice
// passes as it did through the canceller.
TEST(Speex, IdleCancellerKeepsTheEchoPathAndPassesTheUser) {
  auto scene = MakeScene(8, 20, false);
  std::unique_ptr<EchoProcessor> p;
  ASSERT_TRUE(MakeProcessor("speex", EchoOnly(), &p).ok());
  RunBlocks(*p, scene.mic, scene.far);
  const auto before = sim::Erle(scene.mic, RunBlocks(*p, scene.mic, scene.far), scene.echo, 0, 8000, -50);
  // 2 s: the user talks, nothing plays.
  const uint64_t idle_before = p->idle_blocks();  // the far end's longer pauses between phrases
  auto user = sim::Babble(2 * 16000, 16000, 0.05, 31);
  auto out = RunBlocks(*p, user, std::vector<float>(user.size(), 0.0f));
  // Idle from one tail (300 ms) and two blocks after the speaker stopped.
  const uint64_t idle = p->idle_blocks() - idle_before, blocks = user.size() / p->block_samples();
  EXPECT_GE(idle, blocks * 8 / 10);
  EXPECT_LT(idle, blocks);
  const double user_db = sim::PowerDb(user, 8000, user.size(), user, -40);
  EXPECT_NEAR(sim::PowerDb(out, 8000, out.size(), user, -40), user_db, 1.0) << "the user's voice changed";
  // The reply resumes: cancelled at once, as before the pause (a reset
  // canceller gets < 10 dB here, see ResetForgetsTheEchoPath).
  std::vector<float> mic(scene.mic.begin(), scene.mic.begin() + 8000);
  std::vector<float> far(scene.far.begin(), scene.far.begin() + 8000);
  const double after = sim::Erle(mic, RunBlocks(*p, mic, far), scene.echo, 0, 8000, -50);
  EXPECT_GE(after, 15.0);
  EXPECT_GE(after, before - 1.0) << "ERLE before the pause " << before;
}

TEST(Bypass, OutputIsTheMicrophone) {
  auto scene = MakeScene(2, 10, true);
  std::unique_ptr<EchoProcessor> p;
  ASSERT_TRUE(MakeProcessor("bypass", ProcessorConfig{}, &p).ok());
  auto out = RunBlocks(*p, scene.mic, scene.far);
  EXPECT_EQ(sim::ToS16(out), sim::ToS16(scene.mic));
}

TEST(Backends, NoiseSuppressionLowersSteadyNoise) {
  for (const char* name : {"speex", "webrtc"}) {
    ProcessorConfig c = EchoOnly();
    c.noise_suppression = true;
    c.ns_level = "high";
    std::unique_ptr<EchoProcessor> p;
    ASSERT_TRUE(MakeProcessor(name, c, &p).ok());
    auto noise = sim::Noise(5 * 16000, 0.01, 3);
    auto out = RunBlocks(*p, noise, std::vector<float>(noise.size(), 0.0f));
    EXPECT_LT(sim::PowerDb(out, 32000, noise.size()), sim::PowerDb(noise, 32000, noise.size()) - 6) << name;
  }
}

TEST(Backends, AgcRaisesQuietSpeech) {
  for (const char* name : {"speex", "webrtc"}) {
    ProcessorConfig c = EchoOnly();
    c.agc = true;
    c.agc_target_dbfs = -12;
    std::unique_ptr<EchoProcessor> p;
    ASSERT_TRUE(MakeProcessor(name, c, &p).ok());
    auto quiet = sim::Babble(10 * 16000, 16000, 0.01, 5);  // -40 dBFS
    auto out = RunBlocks(*p, quiet, std::vector<float>(quiet.size(), 0.0f));
    EXPECT_GT(sim::PowerDb(out, 80000, quiet.size(), quiet, -60),
              sim::PowerDb(quiet, 80000, quiet.size(), quiet, -60) + 6)
        << name;
  }
}

TEST(Backends, RejectsBadConfiguration) {
  std::unique_ptr<EchoProcessor> p;
  ProcessorConfig c;
  c.ns_level = "extreme";
  EXPECT_FALSE(MakeProcessor("speex", c, &p).ok());
  c = ProcessorConfig{};
  c.sample_rate = 44100;
  EXPECT_FALSE(MakeProcessor("webrtc", c, &p).ok());
  EXPECT_FALSE(MakeProcessor("nonesuch", ProcessorConfig{}, &p).ok());
}

}  // namespace
}  // namespace vb::afe
