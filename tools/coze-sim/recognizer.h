// Speech recognition with pocketsphinx (0.8+5prealpha API). Each utterance is
// decoded twice: with a small JSGF grammar derived from the agent's rules
// (robust for the phrases the agent understands, also when spoken by
// espeak-ng) and with the general en-us language model (anything else). The
// grammar is decoded first; its result wins unless it has far fewer words
// than the length of the speech implies (then the speech was out of grammar,
// e.g. "please turn on the lights" forced into "hi", and the general LM
// decodes it). Decoding the LM only for those halves the CPU of a turn.
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
  // Grammar hypotheses with fewer words per second of speech are rejected
  // (measured: espeak-ng rule phrases have 1.5-6 words per voiced second).
  double min_words_per_speech_second = 1.5;
  bool always_lm = false;  // decode the LM too (for measurements)
};

struct RecognitionResult {
  std::string text;          // what the simulator reports
  std::string grammar_text;  // grammar hypothesis (may be empty)
  std::string lm_text;       // free LM hypothesis
  bool used_grammar = false;
  double gap_per_frame = 0;  // grammar path score per frame (diagnostic)
  double speech_seconds = 0; // voiced audio in the utterance
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
  // The cepstral mean as loaded. Live CMN carries over from one utterance to
  // the next, so the same audio was recognised differently depending on
  // which worker's decoder got it (seen: "what time is it" vs "hi"); every
  // utterance now starts from this mean.
  std::vector<float> initial_cmn_;
};

}  // namespace vb::cozesim
