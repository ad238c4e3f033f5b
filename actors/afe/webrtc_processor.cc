// webrtc-audio-processing 0.3 backend. The reverse (speaker) stream is fed
// block by block just before the matching capture block, with a stream delay
// of 0: the caller has already aligned the two by their timestamps, and the
// delay-agnostic AEC tracks whatever is left.
#include "actors/afe/webrtc_processor.h"

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

#include <cstring>

namespace vb::afe {

struct WebrtcProcessor::Impl {
  std::unique_ptr<webrtc::AudioProcessing> apm;
  webrtc::AudioFrame near, far;
};

namespace {

webrtc::NoiseSuppression::Level NsLevel(const std::string& level) {
  if (level == "low") return webrtc::NoiseSuppression::kLow;
  if (level == "high") return webrtc::NoiseSuppression::kHigh;
  if (level == "very_high") return webrtc::NoiseSuppression::kVeryHigh;
  return webrtc::NoiseSuppression::kModerate;
}

webrtc::EchoCancellation::SuppressionLevel EchoLevel(const std::string& level) {
  if (level == "low") return webrtc::EchoCancellation::kLowSuppression;
  if (level == "high") return webrtc::EchoCancellation::kHighSuppression;
  return webrtc::EchoCancellation::kModerateSuppression;
}

void Prepare(webrtc::AudioFrame* f, int rate, size_t samples) {
  f->sample_rate_hz_ = rate;
  f->num_channels_ = 1;
  f->samples_per_channel_ = samples;
}

}  // namespace

WebrtcProcessor::WebrtcProcessor(const ProcessorConfig& config)
    : config_(config), block_(size_t(config.sample_rate / 100)) {}

WebrtcProcessor::~WebrtcProcessor() = default;

Status WebrtcProcessor::Create(const ProcessorConfig& config, std::unique_ptr<EchoProcessor>* out) {
  std::unique_ptr<WebrtcProcessor> p(new WebrtcProcessor(config));
  if (Status s = p->Init(); !s.ok()) return s;
  *out = std::move(p);
  return Status::Ok();
}

Status WebrtcProcessor::Init() {
  webrtc::Config cfg;
  cfg.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(true));
  cfg.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(true));
  // The experimental AGC drives an analog mic volume we do not control.
  cfg.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
  auto impl = std::make_unique<Impl>();
  impl->apm.reset(webrtc::AudioProcessing::Create(cfg));
  if (!impl->apm) return Status::Internal("webrtc: AudioProcessing::Create failed");
  auto* apm = impl->apm.get();
  int rate = config_.sample_rate;
  if (apm->Initialize(rate, rate, rate, webrtc::AudioProcessing::kMono, webrtc::AudioProcessing::kMono,
                      webrtc::AudioProcessing::kMono) != 0)
    return Status::Internal("webrtc: Initialize failed");
  bool ok = true;
  ok &= apm->high_pass_filter()->Enable(config_.high_pass) == 0;
  if (config_.aec) {
    ok &= apm->echo_cancellation()->set_suppression_level(EchoLevel(config_.echo_suppression)) == 0;
    ok &= apm->echo_cancellation()->enable_drift_compensation(false) == 0;
    ok &= apm->echo_cancellation()->enable_metrics(true) == 0;
    ok &= apm->echo_cancellation()->enable_delay_logging(true) == 0;
  }
  ok &= apm->echo_cancellation()->Enable(config_.aec) == 0;
  ok &= apm->noise_suppression()->set_level(NsLevel(config_.ns_level)) == 0;
  ok &= apm->noise_suppression()->Enable(config_.noise_suppression) == 0;
  if (config_.agc) {
    ok &= apm->gain_control()->set_mode(webrtc::GainControl::kAdaptiveDigital) == 0;
    ok &= apm->gain_control()->set_target_level_dbfs(-config_.agc_target_dbfs) == 0;
    ok &= apm->gain_control()->set_compression_gain_db(config_.agc_max_gain_db) == 0;
    ok &= apm->gain_control()->enable_limiter(true) == 0;
  }
  ok &= apm->gain_control()->Enable(config_.agc) == 0;
  if (!ok) return Status::Invalid("webrtc: a setting was refused (agc_max_gain_db ≤ 90?)");
  Prepare(&impl->near, rate, block_);
  Prepare(&impl->far, rate, block_);
  impl_ = std::move(impl);
  return Status::Ok();
}

void WebrtcProcessor::Process(const int16_t* mic, const int16_t* ref, int16_t* out) {
  if (!impl_) {  // only after a failed Reset()
    if (out != mic) std::memcpy(out, mic, block_ * sizeof(int16_t));
    return;
  }
  auto& im = *impl_;
  if (config_.aec) {
    std::memcpy(im.far.data_, ref, block_ * sizeof(int16_t));
    im.apm->ProcessReverseStream(&im.far);
    im.apm->set_stream_delay_ms(0);
  }
  std::memcpy(im.near.data_, mic, block_ * sizeof(int16_t));
  im.apm->ProcessStream(&im.near);
  std::memcpy(out, im.near.data_, block_ * sizeof(int16_t));
}

void WebrtcProcessor::Reset() {
  // The library has no reset of the learnt state short of a new instance.
  impl_.reset();
  (void)Init();  // succeeded once with the same config; Process() copes if not
}

}  // namespace vb::afe
