// speexdsp backend: echo canceller followed by the preprocessor that knows
// the echo state (so its residual echo suppressor uses the filter's echo
// estimate).
#include "actors/afe/speex_processor.h"

#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

#include <cmath>
#include <cstring>

namespace vb::afe {
namespace {

int NoiseSuppressDb(const std::string& level) {
  if (level == "low") return -10;
  if (level == "high") return -25;
  if (level == "very_high") return -35;
  return -18;
}

// Residual echo attenuation (dB) when only the far end talks, and while the
// near end talks too (kept milder so double talk stays intelligible).
void EchoSuppressDb(const std::string& level, int* idle, int* active) {
  if (level == "low") {
    *idle = -30;
    *active = -10;
  } else if (level == "high") {
    *idle = -55;
    *active = -25;
  } else {
    *idle = -40;
    *active = -15;
  }
}

}  // namespace

SpeexProcessor::SpeexProcessor(const ProcessorConfig& config)
    : config_(config), block_(size_t(config.sample_rate / 100)), scratch_(block_) {
  Create();
}

SpeexProcessor::~SpeexProcessor() { Destroy(); }

void SpeexProcessor::Create() {
  int rate = config_.sample_rate;
  if (config_.aec) {
    int tail = rate * config_.tail_ms / 1000;
    echo_ = speex_echo_state_init(int(block_), tail);
    speex_echo_ctl(echo_, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
  }
  pre_ = speex_preprocess_state_init(int(block_), rate);
  int on = 1, off = 0;
  if (echo_) {
    speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_ECHO_STATE, echo_);
    int idle = 0, active = 0;
    EchoSuppressDb(config_.echo_suppression, &idle, &active);
    speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, &idle);
    speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, &active);
  }
  speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_DENOISE, config_.noise_suppression ? &on : &off);
  int ns_db = NoiseSuppressDb(config_.ns_level);
  speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &ns_db);
  speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_AGC, config_.agc ? &on : &off);
  if (config_.agc) {
    // The AGC level is an RMS in sample units.
    float level = float(32768.0 * std::pow(10.0, config_.agc_target_dbfs / 20.0));
    speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_AGC_LEVEL, &level);
    int gain = config_.agc_max_gain_db;
    speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_AGC_MAX_GAIN, &gain);
  }
  speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_DEREVERB, config_.dereverb ? &on : &off);
}

void SpeexProcessor::Destroy() {
  if (pre_) speex_preprocess_state_destroy(pre_);
  if (echo_) speex_echo_state_destroy(echo_);
  pre_ = nullptr;
  echo_ = nullptr;
}

void SpeexProcessor::Process(const int16_t* mic, const int16_t* ref, int16_t* out) {
  if (echo_) {
    speex_echo_cancellation(echo_, mic, ref, scratch_.data());
    std::memcpy(out, scratch_.data(), block_ * sizeof(int16_t));
  } else if (out != mic) {
    std::memcpy(out, mic, block_ * sizeof(int16_t));
  }
  speex_preprocess_run(pre_, out);
}

void SpeexProcessor::Reset() {
  Destroy();
  Create();
}

}  // namespace vb::afe
