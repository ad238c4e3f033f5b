// Implementation of recognizer.h.
#include "tools/coze-sim/recognizer.h"

#include <pocketsphinx.h>

#include <cstdio>

namespace vb::cozesim {
namespace {
constexpr const char* kLmSearch = "lm";
constexpr const char* kGrammarSearch = "rules";
}  // namespace

std::unique_ptr<Recognizer> Recognizer::Create(const RecognizerOptions& opts, std::string* error) {
  std::string hmm = opts.model_dir + "/en-us";
  std::string dict = opts.model_dir + "/cmudict-en-us.dict";
  std::string lm = opts.model_dir + "/en-us.lm.bin";
  cmd_ln_t* config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", hmm.c_str(), "-dict", dict.c_str(),
                                 "-logfn", "/dev/null", nullptr);
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
  return r;
}

Recognizer::~Recognizer() {
  if (ps_) ps_free(ps_);
}

std::string Recognizer::Decode(const char* search, const std::vector<int16_t>& pcm, double* ascr,
                               int* frames) {
  *ascr = 0;
  *frames = 0;
  if (ps_set_search(ps_, search) != 0) return {};
  if (ps_start_utt(ps_) != 0) return {};
  ps_process_raw(ps_, pcm.data(), pcm.size(), FALSE, TRUE);
  ps_end_utt(ps_);
  int32 score = 0;
  const char* hyp = ps_get_hyp(ps_, &score);
  for (ps_seg_t* seg = ps_seg_iter(ps_); seg; seg = ps_seg_next(seg)) {
    int32 a = 0, l = 0, b = 0;
    ps_seg_prob(seg, &a, &l, &b);
    int sf = 0, ef = 0;
    ps_seg_frames(seg, &sf, &ef);
    *ascr += a;
    *frames += ef - sf + 1;
  }
  return hyp ? std::string(hyp) : std::string();
}

RecognitionResult Recognizer::Recognize(const std::vector<int16_t>& pcm) {
  RecognitionResult r;
  double lm_ascr = 0;
  int lm_frames = 0;
  r.lm_text = Decode(kLmSearch, pcm, &lm_ascr, &lm_frames);
  r.text = r.lm_text;
  if (!has_grammar_) return r;
  double g_ascr = 0;
  int g_frames = 0;
  r.grammar_text = Decode(kGrammarSearch, pcm, &g_ascr, &g_frames);
  int frames = std::max(1, std::max(lm_frames, g_frames));
  r.gap_per_frame = (lm_ascr - g_ascr) / frames;
  if (!r.grammar_text.empty() && r.gap_per_frame <= opts_.max_gap_per_frame) {
    r.text = r.grammar_text;
    r.used_grammar = true;
  }
  return r;
}

}  // namespace vb::cozesim
