// WakeSpotter: continuous keyphrase spotting with pocketsphinx (the kws
// search of 0.8+5prealpha: ps_set_keyphrase + ps_set_search, threshold
// kws_threshold). Feed it the 16 kHz stream; it reports each detection with
// its score and where the phrase began and ended in the stream.
//
// The decoder runs forever but its memory stays bounded: the utterance (and
// with it the decoder's list of detections) is restarted whenever it grows
// past max_utterance_s, preferably in a pause (the caller says whether speech
// is going on), at the latest at twice that length. A refractory period keeps
// one spoken phrase from firing twice.
//
// Not thread-safe; one instance per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bus/status.h"

struct ps_decoder_s;

namespace vb::wakevad {

struct WakeOptions {
  std::string phrase = "ok voice bus";  // chosen by measurement (README)
  // pocketsphinx kws_threshold: higher = fewer false accepts, more misses.
  double threshold = 1e-12;
  // pocketsphinx kws_plp, the phone loop probability that competes with the
  // phrase: higher = fewer false accepts, more misses. pocketsphinx's own
  // default (0.1) misses espeak's phrases entirely.
  double phone_loop = 1e-10;
  std::string model_dir = "/usr/share/pocketsphinx/model/en-us/en-us";
  std::string dict = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";
  // Extra pronunciations, "WORD PH ON EMES" each (CMU phone set), for words
  // the dictionary lacks or says differently.
  std::vector<std::string> pronunciations;
  int refractory_ms = 2000;
  int max_utterance_s = 30;
  int kws_delay_frames = 10;  // pocketsphinx waits this long for a better score
  // Level (dBFS) of white noise added to what the decoder hears; 0 = none.
  // pocketsphinx's live cepstral mean drifts in near-digital silence (as
  // after noise suppression) and then misses the phrase that follows.
  double comfort_noise_dbfs = -50;
  // Second stage (WakeVerifier): re-decode the audio around each detection
  // with the whole phrase forced; keep the detection only if a path through
  // the phrase survives the word beam and scores at least verify_margin per
  // 10 ms frame of the phrase (pocketsphinx log domain). Chosen by measurement.
  bool verify = true;
  double verify_margin = -80;
  int verify_pad_ms = 300;  // audio before the phrase's estimated start and after its end
  double verify_word_beam = 1e-48;
};

struct WakeDetection {
  std::string phrase;
  double score;             // pocketsphinx path score (log domain; higher is surer)
  uint64_t start_sample;    // where the phrase began
  uint64_t end_sample;      // where it ended
  uint64_t detected_at;     // stream position when the detection was made
  double verify_score = 0;  // WakeVerifier score (NaN: no path; 0 if not verified)
};

// Adds 'WORD PH ON ES' lines to a decoder's dictionary (spotter and verifier).
Status AddPronunciations(ps_decoder_s* ps, const std::vector<std::string>& lines);

class WakeSpotter {
 public:
  WakeSpotter();
  ~WakeSpotter();
  WakeSpotter(const WakeSpotter&) = delete;
  WakeSpotter& operator=(const WakeSpotter&) = delete;

  // Loads the model and sets the phrase; Invalid if a word of the phrase has
  // no pronunciation, Unavailable if the model does not load.
  Status Init(const WakeOptions& options);
  // Samples continuing the stream at `first_sample`; `in_speech` lets the
  // utterance restart wait for a pause.
  std::optional<WakeDetection> Process(uint64_t first_sample, std::span<const int16_t> samples, bool in_speech);
  // Discontinuity: starts a new utterance at `next_sample`.
  void Reset(uint64_t next_sample);
  uint64_t utterances() const { return utterances_; }
  const WakeOptions& options() const { return opt_; }

 private:
  void Restart(uint64_t next_sample);

  WakeOptions opt_;
  ps_decoder_s* ps_ = nullptr;
  uint64_t utt_start_ = 0;  // stream index of the utterance's first sample
  uint64_t next_ = 0;       // stream index expected next
  bool utt_open_ = false;
  uint64_t utterances_ = 0;
  int reported_ = 0;  // detections of this utterance already reported
  std::optional<uint64_t> last_detection_;
  std::vector<int16_t> buf_;  // input plus comfort noise
  uint32_t noise_state_ = 12345;
};

}  // namespace vb::wakevad
