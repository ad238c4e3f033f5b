// vb-wakevad as a process beside a real broker. The test publishes an espeak
// recording — the wake phrase, then a question — on audio.clean in real time
// and checks what a supervisor would rely on: one wake event placed on the
// phrase, carrying ≥ 2 s of the very audio that was sent; speech start and
// end around the words; and config mistakes named at start.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <map>

#include "actors/common/wav.h"
#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kBase = 1'600'000;  // the stream need not start at 0

// espeak-ng → 16 kHz mono; the sound's extent (espeak pads with silence).
struct Clip {
  std::vector<int16_t> pcm;
  size_t from = 0, to = 0;
};
Clip Speak(const TempDir& dir, const std::string& text, const std::string& name) {
  std::string raw = dir.File(name + ".raw.wav"), out = dir.File(name + ".wav");
  std::string cmd =
      "espeak-ng -v en-us -s 150 -w " + raw + " '" + text + "' && sox " + raw + " -r 16000 -c 1 -b 16 " + out;
  Clip c;
  if (std::system(cmd.c_str()) != 0) return c;
  audio::PcmBuffer b;
  if (!audio::ReadWav(out, &b).ok()) return c;
  c.pcm = std::move(b.samples);
  c.from = 0, c.to = c.pcm.size();
  while (c.from < c.to && std::abs(c.pcm[c.from]) < 300) ++c.from;
  while (c.to > c.from && std::abs(c.pcm[c.to - 1]) < 300) --c.to;
  return c;
}

class WakeVadProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.File("bus");
    bus::BusConfig c;
    c.endpoint = endpoint_;
    node_ = std::make_unique<bus::Node>(ctx_, loop_, "test", "local", c);
  }
  void TearDown() override {
    node_.reset();
    ctx_.shutdown();
  }
  std::string WriteConfig(const std::string& body, const std::string& name = "vb.yaml") {
    dir_.Write(name, "bus:\n  endpoint: " + endpoint_ + "\n" + body);
    return dir_.File(name);
  }

  // Publishes `pcm` on audio.clean from sample kBase in real time, one 20 ms
  // frame per timer tick as vb-afe would send them; the count sent so far.
  const size_t& Play(const std::vector<int16_t>& pcm) {
    clean_ = node_->Advertise(bus::topics::kAudioClean);
    loop_.AddTimer(20ms, [this, &pcm] {
      if (played_ >= pcm.size()) return;
      v1::AudioFrame f;
      f.set_sample_rate(16000);
      f.set_channels(1);
      f.set_sample_index(kBase + played_);
      f.mutable_pcm()->assign(reinterpret_cast<const char*>(pcm.data() + played_), 640);
      clean_.Publish(f, {.origin_ns = bus::MonoNs(), .turn_id = {}});
      played_ += 320;
    });
    return played_;
  }

  TempDir dir_;
  bus::Publisher<v1::AudioFrame> clean_;
  size_t played_ = 0;
  std::string endpoint_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_;
};

TEST_F(WakeVadProcessTest, WakePhraseThenQuestionGivesWakeAndSpeechEvents) {
  Clip phrase = Speak(dir_, "ok voice bus", "phrase");  // the default phrase
  Clip question = Speak(dir_, "what is the weather like in paris today", "question");
  ASSERT_FALSE(phrase.pcm.empty() || question.pcm.empty()) << "espeak-ng / sox missing";
  std::vector<int16_t> pcm(16000, 0);  // 1 s of silence first
  const uint64_t phrase_at = kBase + pcm.size() + phrase.from;
  const uint64_t phrase_end = kBase + pcm.size() + phrase.to;
  pcm.insert(pcm.end(), phrase.pcm.begin(), phrase.pcm.end());
  const uint64_t question_end = kBase + pcm.size() + question.to;
  pcm.insert(pcm.end(), question.pcm.begin(), question.pcm.end());
  pcm.resize(pcm.size() + 24000, 0);  // 1.5 s of silence after

  auto cfg = WriteConfig("wakevad:\n  vad:\n    detector: energy\n");
  Child broker, actor;
  ASSERT_TRUE(broker.Start({Bin("vb-broker"), "--config", cfg}, dir_.File("broker.log")));
  ASSERT_TRUE(actor.Start({Bin("vb-wakevad"), "--config", cfg}, dir_.File("wakevad.log")));

  std::vector<v1::VadEvent> vads;
  std::vector<v1::WakeEvent> wakes;
  std::vector<int64_t> origins;
  node_->Subscribe<v1::VadEvent>(bus::topics::kVoiceVad, [&](const auto& m) {
    vads.push_back(m.msg);
    EXPECT_EQ(m.header.source(), "wakevad");
    origins.push_back(m.header.origin_ns());
  });
  node_->Subscribe<v1::WakeEvent>(bus::topics::kVoiceWake, [&](const auto& m) {
    wakes.push_back(m.msg);
    origins.push_back(m.header.origin_ns());
  });
  ASSERT_TRUE(node_->Connect().ok());
  node_->SetActive(true);
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return node_->HasSubscriber(bus::Plane::kStream, "audio.clean/local"); }, 10000ms))
      << ReadFile(dir_.File("wakevad.log"));

  int64_t first_origin = bus::MonoNs();
  const size_t& next = Play(pcm);
  // The last SPEECH_END comes after the trailing silence has been heard.
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return next >= pcm.size() && !vads.empty() && vads.back().kind() == v1::VadEvent::SPEECH_END; },
      20000ms))
      << "vad events: " << vads.size() << "\n"
      << ReadFile(dir_.File("wakevad.log"));

  // One wake event, on the phrase.
  ASSERT_EQ(wakes.size(), 1u) << ReadFile(dir_.File("wakevad.log"));
  const auto& w = wakes[0];
  EXPECT_EQ(w.phrase(), "ok voice bus");
  EXPECT_EQ(w.detector(), "pocketsphinx");
  EXPECT_NEAR(double(w.start_sample()), double(phrase_at), 0.2 * 16000);
  // pocketsphinx may fire on the start of the final "s" of "bus", before its
  // hiss fades out.
  EXPECT_NEAR(double(w.end_sample()), double(phrase_end), 0.35 * 16000);
  // Its context: ≥ 2 s, from before the phrase, byte for byte what was sent.
  const std::string& ctx = w.context_pcm();
  EXPECT_GE(ctx.size(), 2u * 32000);
  EXPECT_LE(w.context_start_sample(), w.start_sample());
  ASSERT_GE(w.context_start_sample(), kBase);
  const size_t off = size_t(w.context_start_sample() - kBase);
  ASSERT_LE(off + ctx.size() / 2, pcm.size());
  EXPECT_EQ(ctx, std::string(reinterpret_cast<const char*>(pcm.data() + off), ctx.size()))
      << "context_pcm is not the audio at context_start_sample";
  EXPECT_GT(w.context_start_sample() + ctx.size() / 2 + 0.35 * 16000, phrase_end)
      << "context stops well before the phrase ends";

  // Speech: one segment from the phrase through the question (the pause
  // between them is shorter than min_silence_ms), with its pre-roll.
  ASSERT_EQ(vads.size(), 2u);
  const auto& s = vads[0];
  EXPECT_EQ(s.kind(), v1::VadEvent::SPEECH_START);
  EXPECT_EQ(s.detector(), "energy");
  EXPECT_NEAR(double(s.sample_index()), double(phrase_at), 0.1 * 16000);
  EXPECT_EQ(s.preroll_ms(), 300u);
  EXPECT_EQ(s.preroll_start_sample(), s.sample_index() - 300 * 16);
  EXPECT_GE(s.preroll_pcm().size(), 2u * 300 * 16);
  const auto& e = vads[1];
  EXPECT_EQ(e.kind(), v1::VadEvent::SPEECH_END);
  EXPECT_NEAR(double(e.sample_index()), double(question_end), 0.2 * 16000);
  for (int64_t o : origins) EXPECT_GE(o, first_origin) << "origin_ns not carried from audio.clean";

  EXPECT_EQ(actor.Stop(SIGTERM, 5000ms), 0) << ReadFile(dir_.File("wakevad.log"));
  broker.Stop(SIGTERM, 5000ms);
}

// The backfill ring's answers say what they cover: the audio from the start
// asked for; a start older than the ring ("oldest_held" later); and a start
// beyond the newest sample held, which answers with no chunks and must not
// read as "nothing missed" (a session asking a ring whose stream restarted
// with new indices, issue 16).
TEST_F(WakeVadProcessTest, BackfillAnswersSayWhatTheyCoverAndWhenTheStartLiesBeyondTheRing) {
  auto cfg = WriteConfig("wakevad:\n  wake:\n    enabled: false\n");
  Child broker, actor;
  ASSERT_TRUE(broker.Start({Bin("vb-broker"), "--config", cfg}, dir_.File("broker.log")));
  ASSERT_TRUE(actor.Start({Bin("vb-wakevad"), "--config", cfg}, dir_.File("wakevad.log")));
  struct Answer {
    std::string pcm;
    uint64_t first = 0;
    bool last = false;
    v1::AudioBackfill end;
  };
  std::map<std::string, Answer> answers;
  node_->Subscribe<v1::AudioBackfill>(bus::topics::kAudioBackfill, [&](const auto& m) {
    Answer& a = answers[m.msg.request_id()];
    if (m.msg.has_frame()) {
      if (a.pcm.empty()) a.first = m.msg.frame().sample_index();
      a.pcm += m.msg.frame().pcm();
    }
    if (m.msg.last()) a.last = true, a.end = m.msg;
  });
  auto ask = node_->Advertise(bus::topics::kSessionBackfill);
  ASSERT_TRUE(node_->Connect().ok());
  node_->SetActive(true);
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] { return node_->HasSubscriber(bus::Plane::kStream, "audio.clean/local") && node_->HasSubscriber(ask); },
      10000ms))
      << ReadFile(dir_.File("wakevad.log"));
  // 1 s of audio whose every sample is its own index (mod 2^15), in real time.
  std::vector<int16_t> pcm(16000);
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = int16_t((kBase + i) & 0x7fff);
  const size_t& next = Play(pcm);
  int n = 0;
  // Asks until answered (a request may precede the actor's subscription).
  auto answer = [&](uint64_t from) -> const Answer& {
    const std::string id = "t" + std::to_string(++n);
    bool got = RunUntil(
        loop_,
        [&] {
          if (answers.count(id) && answers[id].last) return true;
          v1::BackfillRequest r;
          r.set_request_id(id);
          r.set_from_sample(from);
          ask.Publish(r);
          return false;
        },
        5000ms);
    EXPECT_TRUE(got) << "no answer from " << from;
    return answers[id];
  };
  // Wait until the ring holds the whole second.
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return next >= pcm.size(); }, 10000ms));
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return answer(kBase).end.newest_end() == kBase + pcm.size(); }, 5000ms))
      << ReadFile(dir_.File("wakevad.log"));
  const Answer& all = answer(kBase + 8000);
  EXPECT_EQ(all.first, kBase + 8000);
  EXPECT_EQ(all.pcm, std::string(reinterpret_cast<const char*>(pcm.data() + 8000), 16000));
  EXPECT_FALSE(all.end.beyond_newest());
  EXPECT_EQ(all.end.end_sample(), kBase + pcm.size());
  const Answer& old = answer(kBase - 4000);
  EXPECT_EQ(old.end.oldest_held(), kBase) << "a start older than the ring: the answer says where it begins";
  EXPECT_EQ(old.pcm.size(), pcm.size() * 2);
  const Answer& now = answer(kBase + pcm.size());
  EXPECT_TRUE(now.pcm.empty());
  EXPECT_FALSE(now.end.beyond_newest()) << "asked from the newest sample on: nothing missed yet";
  const Answer& beyond = answer(kBase + pcm.size() + 50000);
  EXPECT_TRUE(beyond.pcm.empty());
  EXPECT_TRUE(beyond.end.beyond_newest()) << "no chunks, and not because nothing was missed";
  EXPECT_EQ(beyond.end.newest_end(), kBase + pcm.size());
  EXPECT_EQ(actor.Stop(SIGTERM, 5000ms), 0) << ReadFile(dir_.File("wakevad.log"));
  broker.Stop(SIGTERM, 5000ms);
}

TEST_F(WakeVadProcessTest, ConfigMistakesExit78) {
  std::string out;
  auto unknown = WriteConfig("wakevad:\n  wake:\n    phrase: hey zorblax\n", "a.yaml");
  EXPECT_EQ(RunCommand({Bin("vb-wakevad"), "--config", unknown}, &out), 78);
  EXPECT_NE(out.find("zorblax"), std::string::npos) << out;
  auto typo = WriteConfig("wakevad:\n  vad:\n    detectr: speex\n", "b.yaml");
  EXPECT_EQ(RunCommand({Bin("vb-wakevad"), "--config", typo}, &out), 78);
  EXPECT_NE(out.find("wakevad.vad.detectr"), std::string::npos) << out;
  auto bad = WriteConfig("wakevad:\n  vad:\n    detector: magic\n", "c.yaml");
  EXPECT_EQ(RunCommand({Bin("vb-wakevad"), "--config", bad}, &out), 78);
  // With a custom pronunciation the same phrase is fine.
  auto fixed = WriteConfig(
      "wakevad:\n  wake:\n    phrase: hey zorblax\n    pronunciations: ['zorblax Z AO R B L AE K S']\n", "d.yaml");
  Child actor;
  ASSERT_TRUE(actor.Start({Bin("vb-wakevad"), "--config", fixed}, dir_.File("d.log")));
  EXPECT_TRUE(WaitForText(dir_.File("d.log"), "wake 'hey zorblax'", 10000ms)) << ReadFile(dir_.File("d.log"));
  EXPECT_EQ(actor.Stop(SIGTERM, 5000ms), 0) << ReadFile(dir_.File("d.log"));
}

}  // namespace
}  // namespace vb::testing
