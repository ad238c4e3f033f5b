// Implementation of recognizer.h.
#include "tools/coze-sim/recognizer.h"

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>

namespace vb::cozesim {
namespace {
constexpr const char* kLmSearch = "lm";
constexpr const char* kGrammarSearch = "rules";
}  // namespace

std::unique_ptr<Recognizer> Recognizer::Create(const RecognizerOptions& opts, std::string* error) {
  // pocketsphinx's set-up is not thread-safe: its log file is one process-wide
  // FILE* that every ps_init with -logfn opened anew and fclose()d the old one
  // of, so two recognizer threads loading at once could close the same FILE
  // twice or write to a closed one. That corrupted the heap and hung the
  // simulator now and then (a test's simulator never said `listening`, or
  // stopped answering REST). Logging is switched off once, here, for the
  // whole process, and the loading is done one recognizer at a time.
  static std::mutex init_mutex;
  std::lock_guard lock(init_mutex);
  err_set_logfp(nullptr);
  std::string hmm = opts.model_dir + "/en-us";
  std::string dict = opts.model_dir + "/cmudict-en-us.dict";
  std::string lm = opts.model_dir + "/en-us.lm.bin";
  // One forward pass only (no fwdflat/bestpath rescoring): about half the
  // CPU per utterance, which bounds how many sessions one machine serves;
  // the grammar, not the LM's exact words, decides most turns.
  // Dither: audio that went through a noise suppressor has runs of exact
  // zeros and razor-thin spectra; without it, sample-level differences of
  // the same question flipped "what time is it" to "hi" (measured on the
  // e2e wake-word test's received audio: 6 of 8 right with, 4 of 8 without).
  cmd_ln_t* config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", hmm.c_str(), "-dict", dict.c_str(), "-fwdflat", "no",
                                 "-bestpath", "no", "-maxhmmpf", "5000", "-dither", "yes", "-seed", "7", nullptr);
  if (!config) {
    *error = "pocketsphinx: bad configuration (model under " + opts.model_dir + "?)";
    return nullptr;
  }
  ps_decoder_t* ps = ps_init(config);
  cmd_ln_free_r(config);
  if (!ps) {
    *error = "pocketsphinx: cannot load the acoustic model from " + hmm;
    return nullptr;
  }
  std::unique_ptr<Recognizer> r(new Recognizer());
  r->opts_ = opts;
  r->ps_ = ps;
  if (ps_set_lm_file(ps, kLmSearch, lm.c_str()) != 0) {
    *error = "pocketsphinx: cannot load " + lm;
    return nullptr;
  }
  if (!opts.jsgf.empty()) {
    if (ps_set_jsgf_string(ps, kGrammarSearch, opts.jsgf.c_str()) != 0) {
      *error = "pocketsphinx: the agent's grammar does not compile (unknown words?)";
      return nullptr;
    }
    r->has_grammar_ = true;
  }
  static_assert(sizeof(mfcc_t) == sizeof(float), "floating-point sphinxbase expected");
  cmn_t* cmn = ps_get_feat(ps)->cmn_struct;
  r->initial_cmn_.resize(size_t(cmn->veclen));
  cmn_live_get(cmn, reinterpret_cast<mfcc_t*>(r->initial_cmn_.data()));
  return r;
}

Recognizer::~Recognizer() {
  if (ps_) ps_free(ps_);
}

std::string Recognizer::Decode(const char* search, const std::vector<int16_t>& pcm, double* ascr, int* frames) {
  *ascr = 0;
  *frames = 0;
  if (ps_set_search(ps_, search) != 0) return {};
  cmn_live_set(ps_get_feat(ps_)->cmn_struct, reinterpret_cast<const mfcc_t*>(initial_cmn_.data()));
  if (ps_start_utt(ps_) != 0) return {};
  // full_utt=FALSE on purpose: in batch mode (TRUE) the grammar search lost
  // whole phrases of espeak-ng speech ("what time is it" → no hypothesis).
  ps_process_raw(ps_, pcm.data(), pcm.size(), FALSE, FALSE);
  ps_end_utt(ps_);
  int32 score = 0;
  const char* hyp = ps_get_hyp(ps_, &score);
  *ascr = score;  // best path score (log base 1.0001)
  *frames = ps_get_n_frames(ps_);
  return hyp ? std::string(hyp) : std::string();
}

// Seconds of voiced audio: 10 ms frames louder than a tenth of the loud end
// of the utterance. Inter-word gaps are not counted.
double SpeechSeconds(const std::vector<int16_t>& pcm) {
  std::vector<double> rms;
  for (size_t i = 0; i + 160 <= pcm.size(); i += 160) {
    double s = 0;
    for (size_t k = 0; k < 160; ++k) s += double(pcm[i + k]) * pcm[i + k];
    rms.push_back(std::sqrt(s / 160));
  }
  if (rms.empty()) return 0;
  std::vector<double> sorted = rms;
  std::sort(sorted.begin(), sorted.end());
  double loud = sorted[sorted.size() * 95 / 100];
  double thr = std::max(100.0, loud / 10);
  size_t n = 0;
  for (double r : rms) n += r > thr;
  return double(n) / 100.0;
}

size_t Words(const std::string& t) {
  size_t n = 0;
  bool in = false;
  for (char c : t) {
    if (c != ' ' && !in) ++n;
    in = c != ' ';
  }
  return n;
}

RecognitionResult Recognizer::Recognize(const std::vector<int16_t>& pcm) {
  RecognitionResult r;
  double score = 0;
  int frames = 0;
  r.speech_seconds = SpeechSeconds(pcm);
  if (has_grammar_) {
    r.grammar_text = Decode(kGrammarSearch, pcm, &score, &frames);
    r.gap_per_frame = score / std::max(1, frames);
    r.used_grammar = !r.grammar_text.empty() &&
                     double(Words(r.grammar_text)) >= opts_.min_words_per_speech_second * r.speech_seconds;
  }
  const bool lm_check = opts_.min_grammar_gain > 0 || opts_.max_lm_extra_words > 0;
  if (!r.used_grammar || opts_.always_lm || lm_check) {
    r.lm_text = Decode(kLmSearch, pcm, &score, &frames);
    r.lm_per_frame = score / std::max(1, frames);
  }
  if (r.used_grammar && lm_check) {
    const bool forced = opts_.min_grammar_gain > 0 && r.gap_per_frame - r.lm_per_frame < opts_.min_grammar_gain;
    const bool more_words =
        opts_.max_lm_extra_words > 0 && Words(r.lm_text) >= Words(r.grammar_text) + size_t(opts_.max_lm_extra_words);
    if (forced || more_words) {
      r.used_grammar = false;
      r.rejected_by_lm = true;
    }
  }
  r.text = r.used_grammar ? r.grammar_text : r.lm_text;
  return r;
}

}  // namespace vb::cozesim
