// Second-stage verification of wake detections: a forced decode of the phrase.
#include "actors/wakevad/wake_verifier.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "actors/wakevad/wake_spotter.h"

namespace vb::wakevad {

WakeVerifier::WakeVerifier() = default;

WakeVerifier::~WakeVerifier() {
  if (ps_) ps_free(ps_);
}

Status WakeVerifier::Init(const WakeOptions& opt) {
  err_set_logfp(nullptr);
  // Dither keeps digital silence from giving -inf log energies; the whole
  // window is one utterance with batch CMN, so no live mean to drift. The
  // word beam decides which word ends are kept each frame: at pocketsphinx's
  // default (7e-29) the end of a real phrase in loud music is pruned too
  // (music at 5 dB: 20 of 36 kept against 28 at 1e-48; measured, README).
  char wbeam[32];
  std::snprintf(wbeam, sizeof wbeam, "%g", opt.verify_word_beam);
  cmd_ln_t* config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", opt.model_dir.c_str(), "-dict", opt.dict.c_str(),
                                 "-remove_silence", "no", "-dither", "yes", "-cmn", "batch", "-bestpath", "no",
                                 "-wbeam", wbeam, "-logfn", "/dev/null", nullptr);
  if (!config) return Status::Invalid("pocketsphinx rejected the verifier configuration");
  ps_ = ps_init(config);
  cmd_ln_free_r(config);
  if (!ps_) return Status::Unavailable("pocketsphinx model did not load from " + opt.model_dir);
  if (Status s = AddPronunciations(ps_, opt.pronunciations); !s.ok()) return s;
  // The words in a row; the search adds optional silence and noise fillers
  // around and between them.
  const std::string grammar = "#JSGF V1.0;\ngrammar vbwake;\npublic <s> = " + opt.phrase + ";\n";
  if (ps_set_jsgf_string(ps_, "phrase", grammar.c_str()) < 0 || ps_set_search(ps_, "phrase") < 0)
    return Status::Invalid("pocketsphinx rejected the verifier grammar for '" + opt.phrase + "'");
  return Status::Ok();
}

double WakeVerifier::Score(std::span<const int16_t> pcm, uint64_t phrase_samples) {
  if (!ps_ || pcm.size() < 1600 || ps_start_utt(ps_) < 0) return NAN;
  ps_process_raw(ps_, pcm.data(), pcm.size(), FALSE, TRUE);
  ps_end_utt(ps_);
  int32 score = 0;
  const char* hyp = ps_get_hyp(ps_, &score);
  // No hypothesis: no path reached the grammar's final state.
  if (!hyp || !*hyp) return NAN;
  const double frames = std::max<double>(1, double(phrase_samples) / 160);
  return double(score) / frames;
}

}  // namespace vb::wakevad
