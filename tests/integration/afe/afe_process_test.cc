// vb-afe as a process: a broker, the actor, and this test as both the
// playback (audio.ref, stamped with when each frame leaves the speaker,
// published well ahead) and the microphone (audio.mic carrying the echo).
// What a user would notice: every mic frame comes out clean, in order, with
// its timestamps; the speaker's echo is gone; garbage does not stop it.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <map>

#include "actors/afe/echo_sim.h"
#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;
namespace sim = afe::sim;

constexpr size_t kFrame = 320;
constexpr int64_t kFrameNs = 20'000'000;

class AfeProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.File("bus");
    bus::BusConfig c;
    c.endpoint = endpoint_;
    node_ = std::make_unique<bus::Node>(ctx_, loop_, "test", "local", c);
    node_->Subscribe<v1::Heartbeat>(
        bus::topics::kHeartbeat, [this](const auto& m) { beats_[m.msg.actor()] = m.msg; }, "*");
    node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioClean, [this](const auto& m) {
      clean_index_.push_back(m.msg.sample_index());
      last_clean_ns_ = bus::MonoNs();
      clean_origin_.push_back(m.header.origin_ns());
      clean_play_.push_back(m.msg.play_ns());
      const auto* p = reinterpret_cast<const int16_t*>(m.msg.pcm().data());
      clean_.insert(clean_.end(), p, p + m.msg.pcm().size() / 2);
    });
    mic_ = node_->Advertise(bus::topics::kAudioMic);
    ref_ = node_->Advertise(bus::topics::kAudioRef);
  }
  void TearDown() override {
    if (afe_.pid() > 0) afe_.Stop(SIGTERM, 3000ms);
    if (broker_.pid() > 0) broker_.Stop(SIGTERM, 3000ms);
    node_.reset();
    ctx_.shutdown();
  }
  void Start(const std::string& afe_section) {
    dir_.Write("vb.yaml", "bus:\n  endpoint: " + endpoint_ + "\nafe:\n" + afe_section);
    ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", dir_.File("vb.yaml")}, dir_.File("broker.log")));
    ASSERT_TRUE(afe_.Start({Bin("vb-afe"), "--config", dir_.File("vb.yaml")}, dir_.File("afe.log")));
    ASSERT_TRUE(node_->Connect().ok());
    node_->SetActive(true);
    ASSERT_TRUE(RunUntil(
        loop_, [&] { return beats_.count("afe") > 0; }, 10s))
        << ReadFile(afe_.log_path());
    ASSERT_TRUE(testing::AwaitSubscribers(loop_, *node_, {mic_.topic(), ref_.topic()}))
        << "vb-afe's subscriptions never reached the test's publishers";
  }
  static v1::AudioFrame Frame(const int16_t* pcm, size_t n, uint64_t index, int64_t t) {
    v1::AudioFrame f;
    f.set_sample_rate(16000);
    f.set_channels(1);
    f.set_sample_index(index);
    f.set_play_ns(t);
    f.set_reference_channel(-1);
    f.mutable_pcm()->assign(reinterpret_cast<const char*>(pcm), n * 2);
    return f;
  }
  // Flow control on vb-afe's progress: a frame may go out while fewer than
  // kInFlight mic frames wait for their cleaned copy. Faster than real time
  // on a quiet machine, never more than the stream plane's queues hold
  // (bus.stream_hwm, 100 a socket) on a loaded one: those drop stale audio
  // by design, and a timer alone sent ~1400 messages at 10x real time, more
  // than vb-afe could take at load 20 (lost 11-77 of 700 frames).
  static constexpr size_t kInFlight = 20;
  bool AfeBehind(size_t mic_frames_sent) const { return mic_frames_sent >= clean_index_.size() + kInFlight; }
  // Runs the loop until `frames` cleaned frames came, or vb-afe made no
  // progress for kStalled: its speed is the machine's (the speex canceller
  // under ASan at load 5 cleans 21-35 frames a second, slower than real time),
  // a stall is the failure.
  static constexpr auto kStalled = 10s;
  bool AwaitCleaned(size_t frames) {
    last_clean_ns_ = bus::MonoNs();
    RunUntil(
        loop_,
        [&] {
          return clean_index_.size() >= frames ||
                 bus::MonoNs() - last_clean_ns_ > std::chrono::nanoseconds(kStalled).count();
        },
        180s);
    return clean_index_.size() >= frames;
  }
  // Plays `far` as playback would (each reference frame published
  // `lead_frames` ahead of the mic frame captured while it sounds) and `mic`
  // as capture would, paced by vb-afe's output (AfeBehind), not by the
  // clock: only the stamps say when things happened.
  void Stream(const std::vector<int16_t>& far, const std::vector<int16_t>& mic, int lead_frames, int64_t t0) {
    size_t frames = mic.size() / kFrame;
    size_t k = 0;
    auto timer = loop_.AddTimer(2ms, [&] {
      if (k >= size_t(lead_frames) && AfeBehind(k - size_t(lead_frames))) return;
      if (k < frames) ref_.Publish(Frame(&far[k * kFrame], kFrame, k * kFrame, t0 + int64_t(k) * kFrameNs));
      // Every mic frame sent, the timer runs on until vb-afe's output catches up: nothing more to read.
      if (k >= size_t(lead_frames) && k - size_t(lead_frames) < frames) {
        size_t m = k - size_t(lead_frames);
        int64_t t = t0 + int64_t(m) * kFrameNs;
        mic_.Publish(Frame(&mic[m * kFrame], kFrame, m * kFrame, t), {.origin_ns = t});
      }
      ++k;
    });
    ASSERT_TRUE(AwaitCleaned(frames)) << clean_index_.size() << " of " << frames << "\n" << ReadFile(afe_.log_path());
    loop_.CancelTimer(timer);
  }

  TempDir dir_;
  std::string endpoint_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_;
  bus::Publisher<v1::AudioFrame> mic_, ref_;
  std::map<std::string, v1::Heartbeat> beats_;
  std::vector<uint64_t> clean_index_;
  std::vector<int64_t> clean_origin_, clean_play_;
  std::vector<int16_t> clean_;
  int64_t last_clean_ns_ = 0;  // when the last cleaned frame came
  Child broker_, afe_;
};

TEST_F(AfeProcessTest, CancelsTheSpeakerEchoUsingTheReferenceStamps) {
  Start("  backend: speex\n  agc: false\n  noise_suppression: false\n");
  const double seconds = 14;
  size_t n = size_t(seconds * 16000);
  auto far = sim::Babble(n, 16000, 0.1, 11);
  auto echo = sim::Delay(sim::Convolve(far, sim::RoomImpulse(16000, 0.2, 3, 12)), 80);  // 5 ms
  sim::Scale(&echo, 0.5);
  auto noise = sim::Noise(n, 0.0005, 13);
  std::vector<float> mic(n);
  for (size_t i = 0; i < n; ++i) mic[i] = echo[i] + noise[i];
  const int64_t t0 = bus::MonoNs();
  // Reference published 200 ms before it plays: without the stamps the
  // canceller would get it 200 ms early and could not use it.
  Stream(sim::ToS16(far), sim::ToS16(mic), 10, t0);

  ASSERT_EQ(clean_.size(), n - n % kFrame);
  for (size_t i = 0; i < clean_index_.size(); ++i) {
    ASSERT_EQ(clean_index_[i], i * kFrame) << "frame " << i;
    ASSERT_EQ(clean_origin_[i], t0 + int64_t(i) * kFrameNs) << "origin_ns not carried, frame " << i;
    ASSERT_EQ(clean_play_[i], t0 + int64_t(i) * kFrameNs) << "capture time not carried, frame " << i;
  }
  auto out = sim::ToFloat(clean_);
  mic.resize(out.size());
  echo.resize(out.size());
  double erle = sim::Erle(mic, out, echo, 8 * 16000, out.size(), -50);
  EXPECT_GE(erle, 20.0);
  // The heartbeat shows the reference was used and never went missing.
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        return beats_["afe"].extra().count("mic_frames") &&
               beats_["afe"].extra().at("mic_frames") >= int64_t(clean_index_.size());
      },
      5s));
  const auto& x = beats_["afe"].extra();
  EXPECT_GT(x.at("blocks_with_ref"), 0);
  EXPECT_EQ(x.at("ref_gap_samples"), 0);
  EXPECT_EQ(x.at("ref_late_samples"), 0);
  EXPECT_EQ(x.at("ref_jumps"), 0);
}

// Regression (CI, e2e KilledActors): after vb-playback restarted, its
// reference came a moment after each mic frame; one wait timed out and the
// front end never waited again, so every block was processed without its
// reference and gated as possible echo: the user's next question reached the
// service 40 dB down and was heard as "the". Once the reference catches up
// with the mic, the front end waits for it again and the near end passes.
TEST_F(AfeProcessTest, AReferenceThatFallsBehindAndCatchesUpDoesNotMuteTheUser) {
  Start("  backend: speex\n  agc: false\n  noise_suppression: false\n");
  const size_t loud = 100, stall = 10, talk = 150, frames = loud + stall + talk;
  const size_t n = frames * kFrame;
  auto far = sim::ToS16(sim::Babble(n, 16000, 0.2, 21));
  auto echo = sim::Delay(sim::Convolve(sim::Babble(n, 16000, 0.2, 21), sim::RoomImpulse(16000, 0.2, 3, 22)), 80);
  auto user = sim::Babble(n, 16000, 0.1, 23);
  std::vector<float> micf(n, 0.0f);
  for (size_t i = 0; i < n; ++i)
    micf[i] = i < loud * kFrame ? 0.5f * echo[i] : (i >= (loud + stall) * kFrame ? user[i] : 0.0f);
  auto mic = sim::ToS16(micf);
  std::vector<int16_t> quiet(kFrame, 0);
  const int64_t t0 = bus::MonoNs();
  size_t k = 0;
  auto mic_frame = [&](size_t m) {
    mic_.Publish(Frame(&mic[m * kFrame], kFrame, m * kFrame, t0 + int64_t(m) * kFrameNs), {.origin_ns = t0});
  };
  // 1. The agent speaks: reference 10 frames ahead, as a sound card's queue.
  bus::Loop::TimerId timer = loop_.AddTimer(2ms, [&] {
    if (k >= 10 && AfeBehind(k - 10)) return;
    if (k < loud) ref_.Publish(Frame(&far[k * kFrame], kFrame, k * kFrame, t0 + int64_t(k) * kFrameNs));
    if (k >= 10 && k - 10 < loud) mic_frame(k - 10);
    ++k;
  });
  ASSERT_TRUE(AwaitCleaned(loud)) << clean_index_.size() << " of " << loud << "\n" << ReadFile(afe_.log_path());
  loop_.CancelTimer(timer);
  // 2. The playback dies: mic frames in real time, no reference (a wait times out).
  // 3. A new playback: its (silent) reference comes just after each mic frame.
  k = loud;
  timer = loop_.AddTimer(20ms, [&] {
    if (k >= frames || AfeBehind(k)) return;  // real time, unless vb-afe is slower (ASan)
    mic_frame(k);
    if (k >= loud + stall)
      ref_.Publish(Frame(quiet.data(), kFrame, (k - loud - stall) * kFrame, t0 + int64_t(k) * kFrameNs));
    ++k;
  });
  ASSERT_TRUE(AwaitCleaned(frames)) << clean_index_.size() << " of " << frames << "\n" << ReadFile(afe_.log_path());
  loop_.CancelTimer(timer);
  // The user's voice over the last 2 s: the cleaned level follows the mic's.
  const size_t from = (frames - 100) * kFrame, to = frames * kFrame;
  std::vector<float> in(micf.begin() + long(from), micf.begin() + long(to)), out;
  for (size_t i = from; i < to; ++i) out.push_back(float(clean_[i]) / 32768.0f);
  const double in_db = 20 * std::log10(sim::Rms(in)), out_db = 20 * std::log10(sim::Rms(out) + 1e-9);
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        return beats_["afe"].extra().count("mic_frames") && beats_["afe"].extra().at("mic_frames") >= int64_t(frames);
      },
      5s));
  const auto& x = beats_["afe"].extra();
  EXPECT_GT(out_db, in_db - 10) << "the user's voice was gated: mic " << in_db << " dBFS, cleaned " << out_db
                                << " dBFS; ref_wait_timeouts "
                                << (x.count("ref_wait_timeouts") ? x.at("ref_wait_timeouts") : -1);
  EXPECT_GE(x.count("ref_caught_up") ? x.at("ref_caught_up") : 0, 1);
}

TEST_F(AfeProcessTest, MalformedFramesAreCountedAndTheStreamGoesOn) {
  Start("  backend: bypass\n");
  std::vector<int16_t> pcm(kFrame, 1000);
  const int64_t t0 = bus::MonoNs();
  v1::AudioFrame odd = Frame(pcm.data(), kFrame, 0, t0);
  odd.mutable_pcm()->resize(321);  // half a sample
  v1::AudioFrame wrong_rate = Frame(pcm.data(), kFrame, 0, t0);
  wrong_rate.set_sample_rate(44100);
  v1::AudioFrame no_stamp = Frame(pcm.data(), kFrame, 0, 0);
  int sent = 0;
  auto timer = loop_.AddTimer(5ms, [&] {
    switch (sent++ % 4) {
      case 0: mic_.Publish(odd); break;
      case 1: mic_.Publish(wrong_rate); break;
      case 2: ref_.Publish(no_stamp); break;
      default: mic_.Publish(Frame(pcm.data(), kFrame, uint64_t(sent) * kFrame, t0), {.origin_ns = t0});
    }
  });
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return clean_index_.size() >= 20; }, 10s))
      << ReadFile(afe_.log_path());
  loop_.CancelTimer(timer);
  EXPECT_TRUE(std::all_of(clean_.begin(), clean_.end(), [](int16_t s) { return s == 1000; }));
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        const auto& x = beats_["afe"].extra();
        return x.count("bad_mic") && x.at("bad_mic") >= 40 && x.count("bad_ref") && x.at("bad_ref") >= 20;
      },
      5s));
  EXPECT_TRUE(afe_.running());
}

TEST_F(AfeProcessTest, ConfigErrorNamesTheKeyAndExits78) {
  dir_.Write("bad.yaml", "bus:\n  endpoint: " + endpoint_ + "\nafe:\n  backend: speexx\n  tail_ms: 5\n");
  std::string out;
  int rc = RunCommand({Bin("vb-afe"), "--config", dir_.File("bad.yaml")}, &out, 10s);
  EXPECT_EQ(rc, 78) << out;
  EXPECT_NE(out.find("afe.backend"), std::string::npos) << out;
  EXPECT_NE(out.find("afe.tail_ms"), std::string::npos) << out;
}

}  // namespace
}  // namespace vb::testing
