// Second-stage verification of wake detections: forced phrase vs phone loop.
#include "actors/wakevad/wake_verifier.h"

#include <pocketsphinx.h>
#include <sphinxbase/ckd_alloc.h>
#include <sphinxbase/err.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "actors/wakevad/wake_spotter.h"

namespace vb::wakevad {
namespace {
constexpr const char* kPhraseSearch = "phrase";
constexpr const char* kFreeSearch = "free";
}  // namespace

WakeVerifier::WakeVerifier() = default;

WakeVerifier::~WakeVerifier() {
  if (ps_) ps_free(ps_);
}

Status WakeVerifier::Init(const WakeOptions& opt) {
  err_set_logfp(nullptr);
  // Dither keeps digital silence from giving -inf log energies; the whole
  // window is one utterance with batch CMN, so no live mean to drift.
  cmd_ln_t* config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", opt.model_dir.c_str(), "-dict",
                                 opt.dict.c_str(), "-remove_silence", "no", "-dither", "yes",
                                 "-cmn", "batch", "-bestpath", "no", "-logfn", "/dev/null", nullptr);
  if (!config) return Status::Invalid("pocketsphinx rejected the verifier configuration");
  ps_ = ps_init(config);
  cmd_ln_free_r(config);
  if (!ps_) return Status::Unavailable("pocketsphinx model did not load from " + opt.model_dir);
  if (Status s = AddPronunciations(ps_, opt.pronunciations); !s.ok()) return s;
  // Phrase: the words in a row (the search adds optional silence and
  // noise fillers around them). Free: pocketsphinx's phone recogniser with
  // the model's phone bigram, the best any English-like sound sequence can do.
  const std::string grammar = "#JSGF V1.0;\ngrammar vbwake;\npublic <s> = " + opt.phrase + ";\n";
  if (ps_set_jsgf_string(ps_, kPhraseSearch, grammar.c_str()) < 0)
    return Status::Invalid("pocketsphinx rejected the verifier grammar for '" + opt.phrase + "'");
  if (ps_set_allphone_file(ps_, kFreeSearch, opt.phone_lm.c_str()) < 0)
    return Status::Unavailable("phone language model did not load from " + opt.phone_lm);
  return Status::Ok();
}

int32_t WakeVerifier::Decode(const char* search, std::span<const int16_t> pcm, bool* ok) {
  *ok = false;
  if (ps_set_search(ps_, search) < 0 || ps_start_utt(ps_) < 0) return 0;
  ps_process_raw(ps_, pcm.data(), pcm.size(), FALSE, TRUE);
  ps_end_utt(ps_);
  int32 score = 0;
  const char* hyp = ps_get_hyp(ps_, &score);
  *ok = hyp != nullptr && *hyp;
  return score;
}

double WakeVerifier::Score(std::span<const int16_t> pcm, uint64_t phrase_samples) {
  if (!ps_ || pcm.size() < 1600) return NAN;
  bool ok_phrase = false, ok_free = false;
  const int32_t with_phrase = Decode(kPhraseSearch, pcm, &ok_phrase);
  const int32_t free = Decode(kFreeSearch, pcm, &ok_free);
  if (!ok_phrase || !ok_free) return NAN;
  // Scores are in pocketsphinx's log base (1.0001); per 10 ms frame of phrase.
  const double frames = std::max<double>(1, double(phrase_samples) / 160);
  return double(with_phrase - free) / frames;
}

}  // namespace vb::wakevad
