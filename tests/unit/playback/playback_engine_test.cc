// PlaybackEngine: prebuffering, turn start/end events, underruns, flush with
// a click-free fade and its latency, cancelled turns, prompts over speech.
#include "actors/playback/playback_engine.h"

#include <gtest/gtest.h>

#include <cmath>

#include "actors/playback/prompts.h"

namespace vb::playback {
namespace {

using Kind = v1::PlaybackEvent;
constexpr int64_t kMs = 1'000'000;

std::vector<int16_t> Sine(size_t n, double hz = 440, double amp = 10000, size_t phase = 0) {
  std::vector<int16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = int16_t(amp * std::sin(2 * M_PI * hz * double(i + phase) / 16000));
  return v;
}

class EngineTest : public ::testing::Test {
 protected:
  void Make(EngineConfig c = {}) { engine_ = std::make_unique<PlaybackEngine>(c); }
  // Pushes `frames` 20 ms frames of a continuous sine.
  void PushSine(const std::string& turn, int frames, bool end = false) {
    for (int f = 0; f < frames; ++f) {
      auto v = Sine(320, 440, 10000, phase_);
      phase_ += 320;
      engine_->Push(turn, v.data(), v.size(), 100 + f, end && f == frames - 1, now_);
    }
  }
  // Renders `ms` of audio in 10 ms blocks, advancing time.
  std::vector<int16_t> Play(int ms) {
    std::vector<int16_t> all;
    for (int i = 0; i < ms / 10; ++i) {
      std::vector<int16_t> b(160);
      RenderInfo info;
      engine_->Render(b.data(), b.size(), now_, now_ + 30 * kMs, &info);
      now_ += 10 * kMs;
      all.insert(all.end(), b.begin(), b.end());
    }
    return all;
  }
  std::vector<Kind::Kind> Kinds() {
    std::vector<Kind::Kind> k;
    for (auto& e : engine_->TakeEvents()) {
      k.push_back(e.kind);
      last_.push_back(e);
    }
    return k;
  }
  static double Rms(const std::vector<int16_t>& v, size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; ++i) s += double(v[i]) * v[i];
    return std::sqrt(s / double(to - from));
  }
  std::unique_ptr<PlaybackEngine> engine_;
  int64_t now_ = 1000 * kMs;
  size_t phase_ = 0;
  std::vector<EngineEvent> last_;
};

TEST_F(EngineTest, PrebuffersThenPlaysAndReportsStartAndDrain) {
  Make();  // target 60 ms
  PushSine("t1", 2);
  auto quiet = Play(20);
  EXPECT_EQ(Rms(quiet, 0, quiet.size()), 0) << "played before the jitter target was reached";
  PushSine("t1", 2, /*end=*/true);
  auto speech = Play(100);
  EXPECT_EQ(Kinds(), (std::vector<Kind::Kind>{Kind::STARTED, Kind::DRAINED}));
  EXPECT_GT(Rms(speech, 0, 1280), 6000);
  EXPECT_EQ(Rms(speech, 1280, speech.size()), 0);
  EXPECT_EQ(engine_->counters().underruns, 0u);
}

TEST_F(EngineTest, StartsAfterTargetTimeEvenWithLittleAudio) {
  Make();
  PushSine("t1", 1);
  Play(50);
  EXPECT_TRUE(Kinds().empty());
  Play(20);
  EXPECT_EQ(Kinds().front(), Kind::STARTED);
}

TEST_F(EngineTest, UnderrunIsCountedAndPlaybackResumes) {
  Make();
  PushSine("t1", 4);
  Play(100);  // plays 80 ms, then runs dry
  EXPECT_EQ(Kinds(), (std::vector<Kind::Kind>{Kind::STARTED, Kind::UNDERRUN}));
  EXPECT_EQ(engine_->counters().underruns, 1u);
  PushSine("t1", 4, true);
  auto resumed = Play(100);
  EXPECT_GT(Rms(resumed, 0, 640), 6000);
  EXPECT_EQ(Kinds(), (std::vector<Kind::Kind>{Kind::DRAINED}));
}

TEST_F(EngineTest, ATurnWithoutEndMarkerDrainsAfterTheTimeout) {
  EngineConfig c;
  c.drain_timeout_ms = 300;
  Make(c);
  PushSine("t1", 4);
  Play(500);
  auto k = Kinds();
  ASSERT_EQ(k.size(), 3u);
  EXPECT_EQ(k[2], Kind::DRAINED);
  EXPECT_EQ(last_[2].detail, "no end-of-turn marker");
}

// Issue 12: a restarted vb-playback joined a reply midway and sent 77
// alternating STARTED/DRAINED events. Whatever the audio of a turn does —
// bursts with gaps past the drain timeout, frames after its end marker, a
// turn coming back after another — each turn is announced once.
TEST_F(EngineTest, ATurnIsAnnouncedStartedAndDrainedAtMostOnce) {
  EngineConfig c;
  c.drain_timeout_ms = 100;
  Make(c);
  for (int burst = 0; burst < 10; ++burst) {
    PushSine("t1", 4, /*end=*/burst % 3 == 2);
    Play(300);  // plays the burst, then starves past the drain timeout
  }
  PushSine("t2", 4, true);
  Play(200);
  PushSine("t1", 4, true);  // t1 again, after another turn
  Play(200);
  int started_t1 = 0, drained_t1 = 0, started_t2 = 0;
  Kinds();
  for (const auto& e : last_) {
    started_t1 += e.kind == Kind::STARTED && e.turn_id == "t1";
    drained_t1 += e.kind == Kind::DRAINED && e.turn_id == "t1";
    started_t2 += e.kind == Kind::STARTED && e.turn_id == "t2";
  }
  EXPECT_EQ(started_t1, 1);
  EXPECT_EQ(drained_t1, 1);
  EXPECT_EQ(started_t2, 1);
  EXPECT_GT(engine_->counters().events_suppressed, 0u);
  EXPECT_FALSE(engine_->speaking());
}

TEST_F(EngineTest, SpeakingFromTheFirstSampleToTheDrain) {
  Make();
  EXPECT_FALSE(engine_->speaking());
  PushSine("t1", 2);  // 40 ms, below the 60 ms jitter target
  Play(20);
  EXPECT_FALSE(engine_->speaking());  // still prebuffering: nothing heard yet
  Play(60);
  EXPECT_TRUE(engine_->speaking());
  Play(200);  // starved, not yet drained: the reply is still under way
  EXPECT_TRUE(engine_->speaking());
  PushSine("t1", 2, true);
  Play(200);
  EXPECT_FALSE(engine_->speaking());
}

TEST_F(EngineTest, FlushFadesOutWithoutAClickAndReportsTheLatency) {
  Make();  // fade 5 ms = 80 samples
  PushSine("t1", 50);
  auto before = Play(100);
  Kinds();
  const int64_t flush_at = now_;
  engine_->Flush("", flush_at);
  auto after = Play(50);
  // Continuity: the first sample after the flush continues the waveform.
  auto expected = Sine(1, 440, 10000, 1600);
  EXPECT_NEAR(after[0], expected[0], 600);
  // The envelope falls to nothing within the fade, then silence; no step is
  // steeper than the sine's own (2π·440/16000·10000 ≈ 1728 per sample): no click.
  for (size_t i = 1; i < 90; ++i) EXPECT_LE(std::abs(after[i] - after[i - 1]), 1750) << i;
  EXPECT_LT(std::abs(after[79]), 100);
  EXPECT_EQ(Rms(after, 80, after.size()), 0);
  auto k = Kinds();
  ASSERT_EQ(k, (std::vector<Kind::Kind>{Kind::FLUSHED}));
  // Silent when the fade's end leaves the speaker: render time + 30 ms device
  // queue (what Play() says) + 5 ms.
  EXPECT_EQ(last_.back().latency_ns, 30 * kMs + 5 * kMs);
  EXPECT_EQ(engine_->queued_samples(), 0u);
}

TEST_F(EngineTest, FlushFadesFromTheDevicesUnplayedSamplesWhenTheCallerDropsThem) {
  Make();
  PushSine("t1", 50);
  Play(100);
  Kinds();
  // The device held 20 ms the listener had not heard yet: those continue, faded.
  auto unplayed = Sine(320, 440, 10000, 1000);
  engine_->Cancel("", now_, unplayed);
  auto after = Play(30);
  EXPECT_NEAR(after[0], unplayed[0], 600);
  for (size_t i = 1; i < 90; ++i) EXPECT_LE(std::abs(after[i] - after[i - 1]), 1750) << i;
  EXPECT_EQ(Rms(after, 80, after.size()), 0);
  auto k = Kinds();
  ASSERT_EQ(k, (std::vector<Kind::Kind>{Kind::FLUSHED}));
  EXPECT_EQ(last_.back().latency_ns, 30 * kMs + 5 * kMs);
}

TEST_F(EngineTest, CancelDropsTheTurnsLateFramesButNotTheNextTurn) {
  Make();
  PushSine("a", 10);
  Play(100);
  engine_->Cancel("", now_);
  PushSine("a", 10);  // late audio of the cancelled turn
  EXPECT_EQ(engine_->counters().dropped_cancelled, 10u);
  auto quiet = Play(100);
  EXPECT_EQ(Rms(quiet, 80, quiet.size()), 0);
  PushSine("b", 5, true);
  auto next = Play(200);
  EXPECT_GT(Rms(next, 0, 1600), 6000);
  // Flush (not cancel) keeps later frames of the turn.
  engine_->Flush("b", now_);
  PushSine("b", 5, true);
  EXPECT_GT(Rms(Play(200), 0, 1600), 6000);
}

TEST_F(EngineTest, FlushOfAnotherTurnLeavesThePlayingOneAlone) {
  Make();
  PushSine("a", 20);
  PushSine("b", 5);
  Play(100);
  engine_->Flush("b", now_);
  EXPECT_GT(Rms(Play(100), 0, 1600), 6000);
  EXPECT_EQ(engine_->queued_samples(), 320u * 20 - 1600 - 1600 + 0);
}

TEST_F(EngineTest, PromptsAreMixedOverSpeech) {
  Make();
  std::vector<int16_t> beep(800, 1000);
  engine_->PlayPrompt(&beep);
  auto alone = Play(60);
  EXPECT_EQ(alone[0], 1000);
  EXPECT_EQ(alone[799], 1000);
  EXPECT_EQ(alone[800], 0);
  // The same speech rendered by a twin engine without the prompt.
  PlaybackEngine twin{EngineConfig{}};
  auto speech = Sine(3200);
  engine_->Push("t", speech.data(), speech.size(), 1, false, now_);
  twin.Push("t", speech.data(), speech.size(), 1, false, now_);
  std::vector<int16_t> b(160), t(160);
  RenderInfo info;
  for (int i = 0; i < 7; ++i, now_ += 10 * kMs) {
    engine_->Render(b.data(), b.size(), now_, now_, &info);
    twin.Render(t.data(), t.size(), now_, now_, &info);
  }
  ASSERT_GT(Rms(t, 0, 160), 6000);
  engine_->PlayPrompt(&beep);
  engine_->Render(b.data(), b.size(), now_, now_, &info);
  twin.Render(t.data(), t.size(), now_, now_, &info);
  EXPECT_TRUE(info.audible);
  for (size_t i = 0; i < 160; ++i) EXPECT_EQ(b[i], int16_t(std::clamp(t[i] + 1000, -32768, 32767))) << i;
  EXPECT_EQ(engine_->counters().prompts, 2u);
}

TEST_F(EngineTest, GeneratedPromptsAreShortAndClickFree) {
  for (auto v : {MakeWakeChime(16000), MakeErrorTone(16000)}) {
    EXPECT_GT(v.size(), 16000u / 10);
    EXPECT_LT(v.size(), 16000u);
    EXPECT_LT(std::abs(v.front()), 200);
    EXPECT_LT(std::abs(v.back()), 200);
  }
  PromptLibrary lib(16000);
  EXPECT_NE(lib.Find("wake"), nullptr);
  EXPECT_NE(lib.Find("error"), nullptr);
  EXPECT_EQ(lib.Find("nope"), nullptr);
}

TEST_F(EngineTest, BufferIsBounded) {
  EngineConfig c;
  c.max_buffer_ms = 100;
  Make(c);
  PushSine("t", 10);
  EXPECT_EQ(engine_->counters().dropped_overflow, 5u);
  EXPECT_EQ(engine_->queued_samples(), 1600u);
}

TEST_F(EngineTest, OfflineModeNeitherWaitsNorReportsUnderruns) {
  EngineConfig c;
  c.offline = true;
  Make(c);
  PushSine("t", 1);
  auto out = Play(30);
  EXPECT_GT(Rms(out, 0, 320), 6000);
  EXPECT_EQ(engine_->counters().underruns, 0u);
}

}  // namespace
}  // namespace vb::playback
