// pocketsphinx keyphrase spotting behind WakeSpotter.
#include "actors/wakevad/wake_spotter.h"

#include <pocketsphinx.h>
#include <sphinxbase/ckd_alloc.h>
#include <sphinxbase/err.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "actors/wakevad/voice_detector.h"

namespace vb::wakevad {
namespace {
constexpr int kSamplesPerPsFrame = kSampleRate / 100;  // pocketsphinx: 100 frames/s
constexpr const char* kSearch = "wake";
constexpr int kFrontEndLagFrames = 5;
}  // namespace

Status AddPronunciations(ps_decoder_s* ps, const std::vector<std::string>& lines) {
  for (const auto& line : lines) {
    std::istringstream in(line);
    std::string word, phone, phones;
    in >> word;
    while (in >> phone) phones += (phones.empty() ? "" : " ") + phone;
    if (word.empty() || phones.empty()) return Status::Invalid("pronunciation '" + line + "' is not 'WORD PH ON ES'");
    if (ps_add_word(ps, word.c_str(), phones.c_str(), FALSE) < 0)
      return Status::Invalid("pronunciation '" + line + "' has unknown phones");
  }
  return Status::Ok();
}

WakeSpotter::WakeSpotter() = default;

WakeSpotter::~WakeSpotter() {
  if (ps_) {
    if (utt_open_) ps_end_utt(ps_);
    ps_free(ps_);
  }
}

Status WakeSpotter::Init(const WakeOptions& options) {
  opt_ = options;
  // pocketsphinx logs every utterance to stderr; our own log says enough.
  err_set_logfp(nullptr);
  char threshold[32], plp[32], delay[16];
  std::snprintf(threshold, sizeof threshold, "%g", opt_.threshold);
  std::snprintf(plp, sizeof plp, "%g", opt_.phone_loop);
  std::snprintf(delay, sizeof delay, "%d", opt_.kws_delay_frames);
  cmd_ln_t* config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", opt_.model_dir.c_str(), "-dict", opt_.dict.c_str(),
                                 "-kws_threshold", threshold, "-kws_plp", plp, "-kws_delay", delay, "-remove_silence",
                                 "no", "-logfn", "/dev/null", nullptr);
  if (!config) return Status::Invalid("pocketsphinx rejected its configuration");
  ps_ = ps_init(config);
  cmd_ln_free_r(config);
  if (!ps_) return Status::Unavailable("pocketsphinx model did not load from " + opt_.model_dir);
  if (Status s = AddPronunciations(ps_, opt_.pronunciations); !s.ok()) return s;
  std::istringstream words(opt_.phrase);
  std::string w;
  int count = 0;
  while (words >> w) {
    ++count;
    char* pron = ps_lookup_word(ps_, w.c_str());
    if (!pron) return Status::Invalid("wake phrase word '" + w + "' has no pronunciation (add one)");
    ckd_free(pron);
  }
  if (count == 0) return Status::Invalid("empty wake phrase");
  if (ps_set_keyphrase(ps_, kSearch, opt_.phrase.c_str()) < 0 || ps_set_search(ps_, kSearch) < 0)
    return Status::Invalid("pocketsphinx rejected the wake phrase '" + opt_.phrase + "'");
  Restart(0);
  return Status::Ok();
}

void WakeSpotter::Restart(uint64_t next_sample) {
  if (utt_open_) {
    ps_end_utt(ps_);
  }
  reported_ = 0;
  ps_start_utt(ps_);
  utt_open_ = true;
  utt_start_ = next_sample;
  next_ = next_sample;
  ++utterances_;
}

void WakeSpotter::Reset(uint64_t next_sample) {
  if (ps_) Restart(next_sample);
  last_detection_.reset();
}

std::optional<WakeDetection> WakeSpotter::Process(uint64_t first_sample, std::span<const int16_t> samples,
                                                  bool in_speech) {
  if (!ps_) return std::nullopt;
  if (first_sample != next_) Restart(first_sample);
  const uint64_t utt_len = first_sample - utt_start_;
  const uint64_t max_len = uint64_t(opt_.max_utterance_s) * kSampleRate;
  if (utt_len > 2 * max_len || (utt_len > max_len && !in_speech)) Restart(first_sample);

  const int16_t* feed = samples.data();
  if (opt_.comfort_noise_dbfs < 0) {
    // Uniform noise of the requested RMS (uniform on ±a has RMS a/√3).
    const double a = 32768.0 * std::pow(10.0, opt_.comfort_noise_dbfs / 20) * std::sqrt(3.0);
    buf_.resize(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      noise_state_ = noise_state_ * 1664525u + 1013904223u;  // LCG: cheap, deterministic
      double n = (double(noise_state_ >> 8) / double(1u << 24) * 2 - 1) * a;
      buf_[i] = int16_t(std::clamp(samples[i] + n, -32768.0, 32767.0));
    }
    feed = buf_.data();
  }
  ps_process_raw(ps_, feed, samples.size(), FALSE, FALSE);
  next_ = first_sample + samples.size();
  int32 score = 0;
  const char* hyp = ps_get_hyp(ps_, &score);
  if (!hyp || !*hyp) return std::nullopt;
  // The kws search lists every detection of the utterance, newest first.
  // Restarting the utterance after each one would lose the next phrase for a
  // while, so the utterance goes on and only a longer list is news.
  int count = 0, sf = 0, ef = 0;
  int32 prob = 0;
  for (ps_seg_t* seg = ps_seg_iter(ps_); seg; seg = ps_seg_next(seg)) {
    if (count++ == 0) {
      ps_seg_frames(seg, &sf, &ef);
      int32 ascr = 0, lscr = 0, lback = 0;
      prob = ps_seg_prob(seg, &ascr, &lscr, &lback);
    }
  }
  if (count <= reported_) return std::nullopt;
  reported_ = count;
  // Positions come from the detection time, not from the frame numbers:
  // 0.8+5prealpha's kws frame numbers do not restart with ps_start_utt and
  // drift from the stream by a few frames per utterance. A detection is
  // reported kws_delay frames after the phrase's last frame, plus the
  // front end's lag (measured: 5 frames); the phrase length is ef - sf.
  WakeDetection d;
  d.phrase = opt_.phrase;
  d.score = prob != 0 ? prob : score;
  d.detected_at = next_;
  const uint64_t lag = uint64_t(opt_.kws_delay_frames + kFrontEndLagFrames) * kSamplesPerPsFrame;
  const uint64_t len = uint64_t(std::max(ef - sf + 1, 1)) * kSamplesPerPsFrame;
  d.end_sample = next_ - std::min(next_, lag);
  d.start_sample = d.end_sample - std::min(d.end_sample, len);
  const uint64_t refractory = uint64_t(opt_.refractory_ms) * kSampleRate / 1000;
  if (last_detection_ && d.end_sample < *last_detection_ + refractory) return std::nullopt;
  last_detection_ = d.end_sample;
  return d;
}

}  // namespace vb::wakevad
