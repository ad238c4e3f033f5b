// Measures the simulator's recognition on espeak-ng speech: each phrase is
// synthesized (two voices), padded with silence, cut by the server VAD as a
// server_vad turn would be, and recognized with the agent grammar + LM
// fallback. Usage: vb-cozesim-asr-eval [extra espeak voices…]. Prints one JSON object: per phrase the LM and grammar
// hypotheses, the score gap, the chosen text and whether it is right; and
// the accuracy of grammar+LM versus LM alone.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/coze-sim/agent.h"
#include "tools/coze-sim/audio_codec.h"
#include "tools/coze-sim/recognizer.h"
#include "tools/coze-sim/speech_synth.h"
#include "tools/coze-sim/vad.h"

using namespace vb::cozesim;

int main(int argc, char** argv) {
  std::vector<std::string> in_grammar = {"hello",
                                         "hi there",
                                         "what time is it",
                                         "what is the time",
                                         "what is the date today",
                                         "what day is it",
                                         "tell me a story",
                                         "what is the weather in paris",
                                         "how is the weather in london",
                                         "what is the weather like in tokyo",
                                         "what did i say before",
                                         "what did i say first"};
  std::vector<std::string> out_of_grammar = {"the quick brown fox jumps over the lazy dog",
                                             "please turn on the lights",
                                             "i like green apples",
                                             "good morning everybody",
                                             "call my mother tomorrow",
                                             "open the window"};
  auto agent = Agent::BuiltIn();
  std::string err;
  RecognizerOptions opts;
  opts.jsgf = agent->Grammar();
  opts.always_lm = true;  // to report the LM alone as well
  auto rec = Recognizer::Create(opts, &err);
  if (!rec) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  nlohmann::json out = {{"phrases", nlohmann::json::array()}};
  double total_ms = 0;
  int total = 0, correct = 0, lm_correct = 0, in_ok = 0, in_n = 0, out_ok = 0, out_n = 0, vad_ok = 0;
  std::vector<std::string> voices = {"en-us"};
  for (int i = 1; i < argc; ++i) voices.push_back(argv[i]);  // e.g. en
  for (const auto& voice : voices) {
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& phrase : pass == 0 ? in_grammar : out_of_grammar) {
        std::vector<int16_t> speech =
            Resampler::Convert(SpeechSynth::Speak(phrase, 0, voice), SpeechSynth::SampleRate(), kInternalRate);
        std::vector<int16_t> stream(16000 / 2, 0);
        stream.insert(stream.end(), speech.begin(), speech.end());
        stream.insert(stream.end(), 16000, 0);
        Vad vad(600, 500);
        std::vector<VadEvent> ev;
        vad.Feed(stream.data(), stream.size(), &ev);
        std::vector<int16_t> utt;
        int stops = 0;
        for (auto& e : ev)
          if (e.kind == VadEvent::kStopped) {
            ++stops;
            if (utt.empty()) utt = e.utterance;
          }
        if (stops == 1) ++vad_ok;
        auto t0 = std::chrono::steady_clock::now();
        RecognitionResult r = rec->Recognize(utt.empty() ? stream : utt);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        total_ms += ms;
        bool ok = Agent::Normalize(r.text) == Agent::Normalize(phrase);
        // For out-of-grammar speech "right" means: not mistaken for a rule phrase.
        bool right = pass == 0 ? ok : !r.used_grammar;
        ++total;
        correct += ok;
        lm_correct += Agent::Normalize(r.lm_text) == Agent::Normalize(phrase);
        (pass == 0 ? in_n : out_n)++;
        (pass == 0 ? in_ok : out_ok) += right;
        out["phrases"].push_back({{"voice", voice},
                                  {"phrase", phrase},
                                  {"in_grammar", pass == 0},
                                  {"vad_segments", stops},
                                  {"lm", r.lm_text},
                                  {"grammar", r.grammar_text},
                                  {"speech_seconds", r.speech_seconds},
                                  {"chosen", r.text},
                                  {"right", right}});
      }
    }
  }
  out["summary"] = {{"phrases", total},
                    {"exact_with_grammar", correct},
                    {"exact_lm_only", lm_correct},
                    {"in_grammar_right", in_ok},
                    {"in_grammar_total", in_n},
                    {"out_of_grammar_rejected", out_ok},
                    {"out_of_grammar_total", out_n},
                    {"vad_single_segment", vad_ok},
                    {"mean_recognition_ms", total > 0 ? total_ms / total : 0}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
