// Speech in and out for real: espeak-ng synthesizes rule phrases (at two
// speech rates) and pocketsphinx with the agent grammar recognizes them;
// out-of-grammar speech falls back to the language model.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>

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

// The simulator loads one recognizer per worker thread, all at once.
// pocketsphinx's set-up shares process-wide state (its log FILE*): loading
// in parallel deadlocked glibc's stdio within a few rounds (3 threads) before
// Create() serialized it. Each must load, and work, without hanging.
TEST(Recognizer, SeveralLoadingAtOnceDoNotHang) {
  RecognizerOptions opts;
  opts.jsgf = Agent::BuiltIn()->Grammar();
  const auto question = Speech16k("what time is it");
  for (int round = 0; round < 2; ++round) {
    std::vector<std::future<std::string>> loads;
    for (int t = 0; t < 3; ++t)
      loads.push_back(std::async(std::launch::async, [&] {
        std::string err;
        auto rec = Recognizer::Create(opts, &err);
        return rec ? rec->Recognize(question).text : "load failed: " + err;
      }));
    for (auto& f : loads) {
      if (f.wait_for(std::chrono::seconds(120)) != std::future_status::ready) {
        // A deadlocked thread cannot be joined: fail loudly instead of hanging.
        std::fprintf(stderr, "Recognizer::Create deadlocked with 3 loading at once (round %d)\n", round);
        std::_Exit(1);
      }
      EXPECT_EQ(f.get(), "what time is it") << "round " << round;
    }
  }
}

}  // namespace
}  // namespace vb::cozesim
