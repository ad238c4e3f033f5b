// Second-stage wake verification: real phrases must still come through the
// pipeline with verification on (the default), other speech must not score
// as the phrase, and the margin must turn down what scores below it. What it
// does to false accepts is measured on the corpus (README), not here.
#include "actors/wakevad/wake_verifier.h"

#include <gtest/gtest.h>

#include <cmath>

#include "actors/wakevad/voice_pipeline.h"
#include "tests/unit/wakevad/test_audio.h"

namespace vb::wakevad {
namespace {
using namespace test_audio;

std::vector<WakeOutput> Wakes(const PipelineOptions& o, const std::vector<int16_t>& pcm) {
  std::vector<WakeOutput> out;
  VoicePipeline p;
  EXPECT_TRUE(p.Init(o, nullptr, [&](const WakeOutput& w) { out.push_back(w); }).ok());
  for (size_t i = 0; i + kFrameSamples <= pcm.size(); i += kFrameSamples)
    p.Feed(i, std::span<const int16_t>(pcm.data() + i, kFrameSamples));
  return out;
}

std::vector<int16_t> Said(const std::string& text, const std::string& voice) {
  auto speech = Speak(text, voice);
  EXPECT_FALSE(speech.empty()) << "espeak-ng failed";
  std::vector<int16_t> pcm = Silence(1000);
  Append(&pcm, speech);
  Append(&pcm, Silence(1000));
  return pcm;
}

TEST(WakeVerifier, RealPhrasesPass) {
  PipelineOptions o;
  o.wake.verify = true;
  for (const char* voice : {"en-us", "en-gb+m3"}) {
    auto found = Wakes(o, Said("ok voice bus what time is it", voice));
    ASSERT_EQ(found.size(), 1u) << voice;
    EXPECT_TRUE(found[0].verified);
    EXPECT_GE(found[0].detection.verify_score, o.wake.verify_margin) << voice;
  }
}

// The margin is a floor on the forced phrase's score per frame: set above
// what a real phrase scores, the phrase is turned down too.
TEST(WakeVerifier, MarginAboveThePhraseScoreTurnsItDown) {
  const auto real = Said("ok voice bus", "en-us");
  PipelineOptions on;
  on.report_rejected = true;
  auto r = Wakes(on, real);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_TRUE(r[0].verified);
  on.report_rejected = false;
  on.wake.verify_margin = r[0].detection.verify_score + 1;
  EXPECT_TRUE(Wakes(on, real).empty());
}

TEST(WakeVerifier, ScoresThePhraseAboveOtherSpeech) {
  WakeOptions w;
  WakeVerifier v;
  ASSERT_TRUE(v.Init(w).ok());
  auto phrase = Speak("ok voice bus");
  auto other = Speak("hello charles");
  ASSERT_FALSE(phrase.empty());
  ASSERT_FALSE(other.empty());
  const double yes = v.Score(phrase, phrase.size());
  const double no = v.Score(other, other.size());
  EXPECT_GE(yes, w.verify_margin);
  EXPECT_FALSE(no >= w.verify_margin) << "score " << no;  // NaN (no path) counts as below
}

}  // namespace
}  // namespace vb::wakevad
