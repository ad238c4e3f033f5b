// Hysteresis and pre-roll: what a listener notices is a first word that is
// cut, a door slam that opens the microphone, or a pause that ends a turn.
#include "actors/wakevad/vad_tracker.h"

#include <gtest/gtest.h>

#include "actors/wakevad/voice_pipeline.h"
#include "tests/unit/wakevad/test_audio.h"

namespace vb::wakevad {
namespace {
using namespace test_audio;

struct Frames {
  std::vector<VadDecision> decisions;
  // Pushes frames with the given probabilities starting at sample `at`.
  void Push(VadTracker& t, uint64_t* at, std::initializer_list<float> probs) {
    for (float p : probs) {
      if (auto d = t.Push(*at, kFrameSamples, p)) decisions.push_back(*d);
      *at += kFrameSamples;
    }
  }
};

TEST(VadTracker, BlipShorterThanMinSpeechIsIgnored) {
  VadTracker t({.threshold = 0.5, .min_speech_ms = 60, .min_silence_ms = 100, .preroll_ms = 0});
  Frames r;
  uint64_t at = 0;
  r.Push(t, &at, {0, 0, 0.9, 0.9, 0, 0, 0, 0.9, 0});
  EXPECT_TRUE(r.decisions.empty());
  EXPECT_FALSE(t.in_speech());
}

TEST(VadTracker, StartIsBackdatedToFirstSpeechFrame) {
  VadTracker t({.threshold = 0.5, .min_speech_ms = 60, .min_silence_ms = 100, .preroll_ms = 0});
  Frames r;
  uint64_t at = 1000;
  r.Push(t, &at, {0.1, 0.2, 0.8, 0.9, 1.0});
  ASSERT_EQ(r.decisions.size(), 1u);
  const auto& d = r.decisions[0];
  EXPECT_TRUE(d.start);
  EXPECT_EQ(d.sample_index, 1000u + 2 * kFrameSamples);
  EXPECT_EQ(d.decided_at, 1000u + 5 * kFrameSamples);
  EXPECT_NEAR(d.probability, 0.9, 1e-6);
}

TEST(VadTracker, PauseShorterThanMinSilenceKeepsTheSegment) {
  VadTracker t({.threshold = 0.5, .min_speech_ms = 40, .min_silence_ms = 100, .preroll_ms = 0});
  Frames r;
  uint64_t at = 0;
  r.Push(t, &at, {1, 1, 1, 0, 0, 0, 0, 1, 1});  // 80 ms pause
  ASSERT_EQ(r.decisions.size(), 1u);
  r.Push(t, &at, {0, 0, 0, 0});
  EXPECT_EQ(r.decisions.size(), 1u) << "80 ms of silence is not yet 100";
  r.Push(t, &at, {0});
  ASSERT_EQ(r.decisions.size(), 2u);
  EXPECT_FALSE(r.decisions[1].start);
  // The end is where the speech stopped, not where we became sure.
  EXPECT_EQ(r.decisions[1].sample_index, 9u * kFrameSamples);
  EXPECT_EQ(r.decisions[1].decided_at, 14u * kFrameSamples);
}

TEST(VadTracker, EndClosesAnOpenSegmentOnly) {
  VadTracker t({.threshold = 0.5, .min_speech_ms = 20, .min_silence_ms = 100, .preroll_ms = 0});
  EXPECT_FALSE(t.End(0).has_value());
  Frames r;
  uint64_t at = 0;
  r.Push(t, &at, {1});
  ASSERT_TRUE(t.in_speech());
  auto d = t.End(at);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->start);
  EXPECT_FALSE(t.in_speech());
}

// Through the pipeline: the SPEECH_START carries the pre-roll and the onset.
TEST(VoicePipeline, SpeechStartCarriesPrerollAudio) {
  PipelineOptions o;
  o.wake_enabled = false;
  o.vad.preroll_ms = 300;
  std::vector<VadOutput> events;
  VoicePipeline p;
  ASSERT_TRUE(p.Init(
                   o, [&](const VadOutput& v) { events.push_back(v); }, nullptr)
                  .ok());
  std::vector<int16_t> pcm = Silence(1000);
  auto voice = Voiced(600, -20);
  Append(&pcm, voice);
  Append(&pcm, Silence(1000));
  const uint64_t base = 48000;  // the stream need not start at 0
  // Odd chunk sizes: the pipeline cuts its own frames.
  for (size_t i = 0; i < pcm.size(); i += 123) {
    size_t n = std::min<size_t>(123, pcm.size() - i);
    p.Feed(base + i, std::span<const int16_t>(pcm.data() + i, n));
  }
  ASSERT_EQ(events.size(), 2u);
  const auto& s = events[0];
  ASSERT_TRUE(s.decision.start);
  EXPECT_EQ(s.decision.sample_index, base + 16000) << "onset at the first voiced frame";
  EXPECT_EQ(s.preroll_start, s.decision.sample_index - 300 * 16);
  ASSERT_EQ(s.preroll_pcm.size(), (s.decision.decided_at - s.preroll_start) * 2);
  // The pre-roll is silent where the recording was and holds the onset after.
  auto sample = [&](uint64_t idx) {
    size_t o2 = size_t(idx - s.preroll_start) * 2;
    return int16_t(uint8_t(s.preroll_pcm[o2]) | uint8_t(s.preroll_pcm[o2 + 1]) << 8);
  };
  EXPECT_EQ(sample(s.preroll_start), 0);
  EXPECT_EQ(sample(base + 16000 + 10), voice[10]);
  const auto& e = events[1];
  EXPECT_FALSE(e.decision.start);
  EXPECT_NEAR(double(e.decision.sample_index), double(base + 16000 + voice.size()), 320);
}

TEST(VoicePipeline, SmallGapIsFilledLargeGapRestartsAndEndsSpeech) {
  PipelineOptions o;
  o.wake_enabled = false;
  o.max_gap_ms = 200;
  std::vector<VadOutput> events;
  VoicePipeline p;
  ASSERT_TRUE(p.Init(
                   o, [&](const VadOutput& v) { events.push_back(v); }, nullptr)
                  .ok());
  auto quiet = Silence(500);
  p.Feed(0, quiet);
  p.Feed(8000 + 1600, quiet);  // 100 ms lost
  EXPECT_EQ(p.counters().gap_fills, 1u);
  EXPECT_EQ(p.counters().frames, (8000u + 1600 + 8000) / kFrameSamples);
  auto voice = Voiced(400, -20);
  p.Feed(17600, voice);
  ASSERT_TRUE(p.in_speech());
  p.Feed(17600 + 6400 + 160000, quiet);  // 10 s lost: a restart
  EXPECT_EQ(p.counters().resyncs, 1u);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[1].decision.start);
  EXPECT_EQ(events[1].decision.sample_index, 17600u + 6400) << "speech ended where audio stopped";
}

}  // namespace
}  // namespace vb::wakevad
