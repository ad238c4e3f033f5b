// The three frame detectors and the factory that picks one by name.
#include "actors/wakevad/voice_detector.h"

#include <speex/speex_preprocess.h>
#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

#include <algorithm>
#include <cmath>

namespace vb::wakevad {
namespace {

constexpr double kPi = 3.14159265358979323846;

// speexdsp's preprocessor with its VAD on. Its speech probability is computed
// by the noise estimator, so denoising must stay on (without it every frame
// looks like speech); the processed audio is discarded.
class SpeexDetector : public VoiceDetector {
 public:
  explicit SpeexDetector(const DetectorOptions& o) : opt_(o) { Reset(); }
  ~SpeexDetector() override {
    if (st_) speex_preprocess_state_destroy(st_);
  }
  std::string_view name() const override { return "speex"; }
  bool ok() const { return st_ != nullptr; }
  float Process(std::span<const int16_t> frame) override {
    std::copy(frame.begin(), frame.end(), buf_);
    int voiced = speex_preprocess_run(st_, buf_);
    int prob = 0;  // percent
    speex_preprocess_ctl(st_, SPEEX_PREPROCESS_GET_PROB, &prob);
    // The preprocessor's own decision (with its start/continue hysteresis)
    // decides the side of 0.5; the probability grades it.
    float p = std::clamp(prob / 100.0f, 0.0f, 1.0f);
    return voiced ? std::max(p, 0.51f) : std::min(p, 0.49f);
  }
  void Reset() override {
    if (st_) speex_preprocess_state_destroy(st_);
    st_ = speex_preprocess_state_init(kFrameSamples, kSampleRate);
    if (!st_) return;
    int on = 1, off = 0;
    speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_VAD, &on);
    speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_DENOISE, &on);
    speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_AGC, &off);
    int start = opt_.speex_prob_start, cont = opt_.speex_prob_continue;
    speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_PROB_START, &start);
    speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_PROB_CONTINUE, &cont);
  }

 private:
  DetectorOptions opt_;
  SpeexPreprocessState* st_ = nullptr;
  spx_int16_t buf_[kFrameSamples];
};

// WebRTC's VAD (the GMM one) as webrtc-audio-processing 0.3 exposes it:
// AudioProcessing with every component off but voice_detection(). It works on
// 10 ms frames; a 20 ms frame is two decisions and the probability is the
// fraction of them that found voice.
class WebRtcDetector : public VoiceDetector {
 public:
  explicit WebRtcDetector(const DetectorOptions& o) : opt_(o) { Reset(); }
  std::string_view name() const override { return "webrtc"; }
  bool ok() const { return apm_ != nullptr; }
  float Process(std::span<const int16_t> frame) override {
    int voiced = 0;
    for (size_t off = 0; off + kSub <= frame.size(); off += kSub) {
      af_.UpdateFrame(0, 0, frame.data() + off, kSub, kSampleRate, webrtc::AudioFrame::kNormalSpeech,
                      webrtc::AudioFrame::kVadUnknown, 1);
      if (apm_->ProcessStream(&af_) != webrtc::AudioProcessing::kNoError) continue;
      voiced += apm_->voice_detection()->stream_has_voice() ? 1 : 0;
    }
    return float(voiced) / float(frame.size() / kSub);
  }
  void Reset() override {
    apm_.reset(webrtc::AudioProcessing::Create());
    if (!apm_) return;
    auto* vd = apm_->voice_detection();
    vd->Enable(true);
    vd->set_frame_size_ms(10);
    static constexpr webrtc::VoiceDetection::Likelihood kLevels[] = {
        webrtc::VoiceDetection::kVeryLowLikelihood, webrtc::VoiceDetection::kLowLikelihood,
        webrtc::VoiceDetection::kModerateLikelihood, webrtc::VoiceDetection::kHighLikelihood};
    vd->set_likelihood(kLevels[std::clamp(opt_.webrtc_likelihood, 0, 3)]);
  }

 private:
  static constexpr size_t kSub = kSampleRate / 100;
  DetectorOptions opt_;
  std::unique_ptr<webrtc::AudioProcessing> apm_;
  webrtc::AudioFrame af_;
};

}  // namespace

EnergyDetector::EnergyDetector(const DetectorOptions& options) : opt_(options) { Reset(); }

void EnergyDetector::Reset() {
  hp_x1_ = hp_y1_ = lp_y1_ = 0;
  floor_db_ = -90;
  last_db_ = -100;
  primed_ = false;
}

float EnergyDetector::Process(std::span<const int16_t> frame) {
  // One-pole filters: cheap, and the band edges need not be sharp.
  static const double kHp = std::exp(-2 * kPi * 100.0 / kSampleRate);
  static const double kLp = 1 - std::exp(-2 * kPi * 4000.0 / kSampleRate);
  double sum = 0;
  for (int16_t s : frame) {
    double x = s / 32768.0;
    double hp = kHp * (hp_y1_ + x - hp_x1_);
    hp_x1_ = x;
    hp_y1_ = hp;
    lp_y1_ += kLp * (hp - lp_y1_);
    sum += lp_y1_ * lp_y1_;
  }
  double db = 10 * std::log10(sum / std::max<size_t>(frame.size(), 1) + 1e-10);
  last_db_ = db;
  if (!primed_) {
    floor_db_ = std::max(db, -90.0);
    primed_ = true;
  } else if (db < floor_db_) {
    floor_db_ = std::max(0.5 * floor_db_ + 0.5 * db, -90.0);
  } else {
    floor_db_ += opt_.energy_floor_rise_db_s * kFrameSamples / kSampleRate;
  }
  if (db < opt_.energy_min_dbfs) return 0.0f;
  double z = (db - floor_db_ - opt_.energy_margin_db) / std::max(opt_.energy_slope_db, 0.1);
  return float(1 / (1 + std::exp(-z)));
}

std::vector<std::string> DetectorNames() { return {"energy", "speex", "webrtc"}; }

Status MakeDetector(std::string_view name, const DetectorOptions& options, std::unique_ptr<VoiceDetector>* out) {
  if (name == "energy") {
    *out = std::make_unique<EnergyDetector>(options);
  } else if (name == "speex") {
    auto d = std::make_unique<SpeexDetector>(options);
    if (!d->ok()) return Status::Unavailable("speexdsp preprocessor did not start");
    *out = std::move(d);
  } else if (name == "webrtc") {
    auto d = std::make_unique<WebRtcDetector>(options);
    if (!d->ok()) return Status::Unavailable("webrtc AudioProcessing did not start");
    *out = std::move(d);
  } else {
    return Status::Invalid("unknown voice detector '" + std::string(name) + "'");
  }
  return Status::Ok();
}

}  // namespace vb::wakevad
