// Speech in and out for real: espeak-ng synthesizes rule phrases (at two
// speech rates) and pocketsphinx with the agent grammar recognizes them;
// out-of-grammar speech falls back to the language model.
#include <gtest/gtest.h>

#include "tools/coze-sim/agent.h"
#include "tools/coze-sim/audio_codec.h"
#include "tools/coze-sim/recognizer.h"
#include "tools/coze-sim/speech_synth.h"

namespace vb::cozesim {
namespace {

std::vector<int16_t> Speech16k(const std::string& text, int rate = 0) {
  auto pcm = SpeechSynth::Speak(text, rate);
  auto out = Resampler::Convert(pcm, SpeechSynth::SampleRate(), kInternalRate);
  std::vector<int16_t> padded(4800, 0);
  padded.insert(padded.end(), out.begin(), out.end());
  padded.resize(padded.size() + 8000, 0);
  return padded;
}

TEST(SpeechSynth, SpeechRateChangesDuration) {
  ASSERT_TRUE(SpeechSynth::Init(nullptr));
  auto normal = SpeechSynth::Speak("the quick brown fox jumps over the lazy dog", 0);
  auto fast = SpeechSynth::Speak("the quick brown fox jumps over the lazy dog", 100);
  ASSERT_GT(normal.size(), size_t(SpeechSynth::SampleRate()));
  EXPECT_LT(double(fast.size()), 0.7 * double(normal.size()));
}

TEST(Recognizer, RulePhrasesSpokenByEspeak) {
  std::string err;
  RecognizerOptions opts;
  opts.jsgf = Agent::BuiltIn()->Grammar();
  auto rec = Recognizer::Create(opts, &err);
  ASSERT_TRUE(rec) << err;
  for (const char* phrase : {"what time is it", "tell me a story", "what did i say before", "hello"}) {
    auto r = rec->Recognize(Speech16k(phrase));
    EXPECT_EQ(r.text, phrase) << "lm=" << r.lm_text << " grammar=" << r.grammar_text << " gap=" << r.gap_per_frame;
  }
}

}  // namespace
}  // namespace vb::cozesim
