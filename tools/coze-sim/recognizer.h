// Speech recognition with pocketsphinx (0.8+5prealpha API). Each utterance is
// decoded twice: with a small JSGF grammar derived from the agent's rules
// (robust for the phrases the agent understands, also when spoken by
// espeak-ng) and with the general en-us language model (anything else). The
// grammar's result wins unless it has far fewer words than the length of the
// speech implies ("please turn on the lights" forced into "hi"), or the LM
// check below finds it forced (real speech outside the rules); then the
// LM's transcript is reported.
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
  // Confirm a grammar hypothesis with the general LM (decoded as well): the
  // grammar forces any speech onto some phrase, so real speech outside the
  // rules ("he was not an ill disposed young man") came out as a rule
  // phrase ("what did i ask earlier"). It is rejected when the grammar path
  // scores less than `min_grammar_gain` per frame better than the LM's (a
  // forced fit), or when the LM heard `max_lm_extra_words` more words.
  // Measured on pocketsphinx-testdata's recordings and espeak-ng phrases:
  // rule phrases gain 8-31 per frame, forced real speech -6…+3 and twice 14
  // (see speech_test.cc); espeak-ng phrases' LM junk had up to 3 extra words,
  // a forced card list 4. 0 disables a check.
  double min_grammar_gain = 6;
  int max_lm_extra_words = 4;
};

struct RecognitionResult {
  std::string text;          // what the simulator reports
  std::string grammar_text;  // grammar hypothesis (may be empty)
  std::string lm_text;       // free LM hypothesis
  bool used_grammar = false;
  double gap_per_frame = 0;     // grammar path score per frame (diagnostic)
  double lm_per_frame = 0;      // LM path score per frame (0 when the LM was not decoded)
  bool rejected_by_lm = false;  // a grammar hypothesis the LM check turned down
  double speech_seconds = 0;    // voiced audio in the utterance
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
