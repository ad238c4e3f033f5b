// Speech recognition with pocketsphinx (0.8+5prealpha API). Each utterance is
// decoded twice: with a small JSGF grammar derived from the agent's rules
// (robust for the phrases the agent understands, also when spoken by
// espeak-ng) and with the general en-us language model (anything else). The
// grammar result wins unless it is much shorter than what the LM heard (then
// the utterance was out of grammar and the LM text is used).
// Not thread-safe: one instance per worker thread (each holds its own model).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct ps_decoder_s;

namespace vb::cozesim {

struct RecognizerOptions {
  std::string model_dir = "/usr/share/pocketsphinx/model/en-us";
  std::string jsgf;  // empty: LM only
};

struct RecognitionResult {
  std::string text;          // what the simulator reports
  std::string grammar_text;  // grammar hypothesis (may be empty)
  std::string lm_text;       // free LM hypothesis
  bool used_grammar = false;
  double gap_per_frame = 0;  // grammar path score per frame (diagnostic)
};

class Recognizer {
 public:
  static std::unique_ptr<Recognizer> Create(const RecognizerOptions& opts, std::string* error);
  ~Recognizer();
  Recognizer(const Recognizer&) = delete;
  Recognizer& operator=(const Recognizer&) = delete;
  RecognitionResult Recognize(const std::vector<int16_t>& pcm16k);

 private:
  Recognizer() = default;
  std::string Decode(const char* search, const std::vector<int16_t>& pcm, double* ascr, int* frames);

  RecognizerOptions opts_;
  ps_decoder_s* ps_ = nullptr;
  bool has_grammar_ = false;
};

}  // namespace vb::cozesim
