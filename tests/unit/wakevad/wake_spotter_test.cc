// Wake phrase spotting with pocketsphinx on espeak speech: it must fire on
// the phrase (once, at the right place), stay quiet on other speech, accept
// custom pronunciations, and keep running across utterance restarts.
#include "actors/wakevad/wake_spotter.h"

#include <gtest/gtest.h>

#include "actors/wakevad/voice_pipeline.h"
#include "tests/unit/wakevad/test_audio.h"

namespace vb::wakevad {
namespace {
using namespace test_audio;

WakeOptions Opts(std::string phrase, int refractory_ms = 2000, int max_utterance_s = 30) {
  WakeOptions o;
  o.phrase = std::move(phrase);
  o.refractory_ms = refractory_ms;
  o.max_utterance_s = max_utterance_s;
  return o;
}

// Where the sound of a clip begins and ends (espeak pads its output).
std::pair<size_t, size_t> Extent(const std::vector<int16_t>& pcm) {
  size_t a = 0, b = pcm.size();
  while (a < b && std::abs(pcm[a]) < 300) ++a;
  while (b > a && std::abs(pcm[b - 1]) < 300) --b;
  return {a, b};
}

std::vector<WakeDetection> Spot(WakeSpotter& w, const std::vector<int16_t>& pcm, uint64_t base = 0) {
  std::vector<WakeDetection> out;
  for (size_t i = 0; i + kFrameSamples <= pcm.size(); i += kFrameSamples) {
    if (auto d = w.Process(base + i, std::span<const int16_t>(pcm.data() + i, kFrameSamples), false)) out.push_back(*d);
  }
  return out;
}

TEST(WakeSpotter, FindsThePhraseWhereItWasSaid) {
  WakeSpotter w;
  ASSERT_TRUE(w.Init(Opts("hey computer")).ok());
  auto phrase = Speak("hey computer");
  auto question = Speak("what is the weather like today");
  ASSERT_FALSE(phrase.empty());
  std::vector<int16_t> pcm = Silence(1000);
  const auto [a, b] = Extent(phrase);
  const size_t phrase_at = pcm.size() + a, phrase_end = pcm.size() + b;
  Append(&pcm, phrase);
  Append(&pcm, question);
  Append(&pcm, Silence(1000));
  auto found = Spot(w, pcm, 32000);
  ASSERT_EQ(found.size(), 1u);
  const auto& d = found[0];
  EXPECT_EQ(d.phrase, "hey computer");
  // espeak pads its output with some silence; allow for it.
  EXPECT_NEAR(double(d.start_sample), double(32000 + phrase_at), 0.15 * 16000);
  EXPECT_NEAR(double(d.end_sample), double(32000 + phrase_end), 0.15 * 16000);
  EXPECT_GE(d.detected_at, d.end_sample);
  EXPECT_LT(d.detected_at, d.end_sample + 16000) << "detected within a second of the phrase end";
}

TEST(WakeSpotter, IgnoresOtherSpeech) {
  WakeSpotter w;
  ASSERT_TRUE(w.Init(Opts("hey computer")).ok());
  auto pcm = Speak("the weather is nice today, let us go for a walk in the park before dinner");
  ASSERT_FALSE(pcm.empty());
  EXPECT_TRUE(Spot(w, pcm).empty());
}

TEST(WakeSpotter, UnknownWordNeedsAPronunciation) {
  WakeSpotter a;
  EXPECT_EQ(a.Init(Opts("hey zorblax")).code(), Status::Code::kInvalid);
  WakeSpotter b;
  WakeOptions o = Opts("hey zorblax");
  o.pronunciations = {"zorblax Z AO R B L AE K S"};
  EXPECT_TRUE(b.Init(o).ok());
  WakeSpotter c;
  o.pronunciations = {"zorblax QQ XX"};
  EXPECT_FALSE(c.Init(o).ok());
}

TEST(WakeSpotter, RefractoryPeriodSuppressesARepeat) {
  auto phrase = Speak("hey computer");
  std::vector<int16_t> pcm = Silence(500);
  Append(&pcm, phrase);
  Append(&pcm, Silence(2500));
  Append(&pcm, phrase);
  Append(&pcm, Silence(1000));
  WakeSpotter eager;
  ASSERT_TRUE(eager.Init(Opts("hey computer", 0)).ok());
  EXPECT_EQ(Spot(eager, pcm).size(), 2u);
  WakeSpotter calm;
  ASSERT_TRUE(calm.Init(Opts("hey computer", 5000)).ok());
  EXPECT_EQ(Spot(calm, pcm).size(), 1u);
}

TEST(WakeSpotter, KeepsDetectingAcrossUtteranceRestarts) {
  WakeSpotter w;
  ASSERT_TRUE(w.Init(Opts("hey computer", 2000, 2)).ok());
  // Room noise throughout, the phrase after 20 s of it.
  std::vector<int16_t> pcm = Silence(20000);
  auto phrase = Speak("hey computer");
  Append(&pcm, phrase);
  Append(&pcm, Silence(1000));
  auto noise = Noise(int((pcm.size() + 15) / 16), -40);  // whole ms: at least pcm.size() samples
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = int16_t(std::clamp(pcm[i] + noise[i], -32768, 32767));
  auto found = Spot(w, pcm);
  EXPECT_GE(w.utterances(), 9u) << "20 s with 2 s utterances";
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NEAR(double(found[0].start_sample), double(20000 * 16 + Extent(phrase).first), 0.3 * 16000)
      << "in noise the soft onset of \"hey\" may be heard late";
}

// Through the pipeline: the wake event carries ≥ 2 s of context reaching back
// before the phrase and up to the detection, so the question is not lost.
TEST(VoicePipeline, WakeContextCoversThePhraseAndWhatFollows) {
  PipelineOptions o;
  o.context_ms = 2000;
  o.context_lead_ms = 500;
  o.wake.phrase = "hey computer";
  std::vector<WakeOutput> wakes;
  VoicePipeline p;
  ASSERT_TRUE(p.Init(o, nullptr, [&](const WakeOutput& w) { wakes.push_back(w); }).ok());
  std::vector<int16_t> pcm = Noise(3000, -70);
  Append(&pcm, Speak("hey computer"));
  Append(&pcm, Speak("turn on the lights"));
  Append(&pcm, Silence(1000));
  p.Feed(0, pcm);
  ASSERT_EQ(wakes.size(), 1u);
  const auto& w = wakes[0];
  const uint64_t context_end = w.context_start + w.context_pcm.size() / 2;
  // Held until the phrase has ended (a quiet run) — "turn on" follows right
  // after, so at most end_settle_ms later.
  EXPECT_GE(context_end, w.detection.detected_at);
  EXPECT_LE(context_end, w.detection.detected_at + uint64_t(o.wake_end_settle_ms) * 16 + kFrameSamples);
  EXPECT_GE(w.context_pcm.size() / 2, 2u * 16000);
  EXPECT_LE(w.context_start + 500 * 16, w.detection.start_sample);
}

// The spotter fires before the last sound of "ok voice bus" ends; the event
// waits for the phrase to end, so the audio after end_sample (what control
// sends to the service as the start of the question) holds no phrase tail.
TEST(VoicePipeline, WakeEndIsAfterThePhrasesLastSound) {
  PipelineOptions o;
  o.wake.phrase = "ok voice bus";
  std::vector<WakeOutput> wakes;
  VoicePipeline p;
  ASSERT_TRUE(p.Init(o, nullptr, [&](const WakeOutput& w) { wakes.push_back(w); }).ok());
  std::vector<int16_t> pcm = Noise(2000, -70);
  auto phrase = Speak("OK voice bus.");
  const size_t phrase_end = pcm.size() + Extent(phrase).second;
  Append(&pcm, phrase);
  Append(&pcm, Noise(300, -70, 2));
  Append(&pcm, Speak("what time is it"));
  Append(&pcm, Silence(1000));
  p.Feed(0, pcm);
  ASSERT_EQ(wakes.size(), 1u);
  const auto& w = wakes[0];
  EXPECT_GE(w.detection.end_sample + 10 * 16, phrase_end) << "the phrase's tail would open the question";
  EXPECT_LT(w.detection.end_sample, phrase_end + 200 * 16);
  // What follows end_sample in the context is quiet, not the phrase's tail.
  const size_t skip = size_t(w.detection.end_sample - w.context_start) * 2;
  ASSERT_LT(skip, w.context_pcm.size());
  const auto* after = reinterpret_cast<const int16_t*>(w.context_pcm.data() + skip);
  const size_t n = std::min<size_t>((w.context_pcm.size() - skip) / 2, 100 * 16);
  int peak = 0;
  for (size_t i = 0; i < n; ++i) peak = std::max(peak, std::abs(int(after[i])));
  EXPECT_LT(peak, 300) << "loud audio right after the phrase end";
}

}  // namespace
}  // namespace vb::wakevad
