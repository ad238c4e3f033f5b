// Second-stage wake verification: real phrases must still come through the
// pipeline, and a sound-alike that the keyphrase spotter fires on must be
// turned down by the verifier (and come through again with verify off).
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

// Since the verifier sees the whole phrase (it waits for the phrase's end),
// "okay boys plus" scores 28 against 37 for "ok voice bus" in the same voice
// (margin 0 lets both through; measured, see the README): the sound-alike
// scores lower, and a margin between the two turns it down while the real
// phrase still passes.
TEST(WakeVerifier, RejectsASoundAlikeTheSpotterAccepts) {
  const auto alike = Said("okay boys plus", "en-us");
  const auto real = Said("ok voice bus", "en-us");
  PipelineOptions off;
  off.wake.verify = false;
  ASSERT_EQ(Wakes(off, alike).size(), 1u) << "the first stage alone fires on it";
  PipelineOptions on;
  on.wake.verify = true;
  on.report_rejected = true;
  auto a = Wakes(on, alike), r = Wakes(on, real);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(r.size(), 1u);
  const double alike_score = a[0].detection.verify_score, real_score = r[0].detection.verify_score;
  EXPECT_GT(real_score, alike_score + 5) << "real " << real_score << ", sound-alike " << alike_score;
  on.report_rejected = false;
  on.wake.verify_margin = (real_score + alike_score) / 2;
  EXPECT_TRUE(Wakes(on, alike).empty()) << "the verifier turns it down";
  EXPECT_EQ(Wakes(on, real).size(), 1u);
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
