// speexdsp backend: echo canceller followed by the preprocessor that knows
// the echo state (so its residual echo suppressor uses the filter's echo
// estimate).
#include "actors/afe/speex_processor.h"

#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

#include <algorithm>
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
    : config_(config),
      block_(size_t(config.sample_rate * config.block_ms / 1000)),
      scratch_(block_),
      zeros_(block_, 0),
      replay_(kReplayBlocks * block_, 0),
      tail_samples_(size_t(config.sample_rate) * size_t(config.tail_ms) / 1000) {
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
  silent_ref_ = idle_run_ = replay_at_ = 0;
  linked_ = echo_ != nullptr;
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
    const bool silent = std::all_of(ref, ref + block_, [](int16_t s) { return s == 0; });
    const float mic_end = mic[block_ - 1];  // out may alias mic
    silent_ref_ = silent ? silent_ref_ + block_ : 0;
    // Idle once the whole tail and the block before it (the canceller's
    // overlap) held nothing but silence, and its last echo estimate was zero.
    if (silent_ref_ > tail_samples_ + 2 * block_) {
      if (linked_) {
        speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_ECHO_STATE, nullptr);
        linked_ = false;
        // Carry on from where the canceller's output left off: no step.
        dc_x_ = last_mic_;
        dc_y_ = last_out_;
      }
      ++idle_blocks_;
      ++idle_run_;
      std::memcpy(&replay_[replay_at_ * block_], mic, block_ * sizeof(int16_t));
      replay_at_ = (replay_at_ + 1) % kReplayBlocks;
      RemoveDc(mic, out);
    } else {
      if (!linked_) {
        // The speaker starts again. While it was silent the canceller would
        // have seen the mic against silence: its near-end statistics (the
        // two filters' comparison that shields the filter in double talk,
        // the DC and pre-emphasis memories) follow the mic within a few
        // blocks. Replaying the last idle blocks brings them up to date;
        // without it the filter was less protected when the user talked
        // over the reply (bench/afe: 3-4 dB less ERLE after double talk).
        const size_t n = std::min(idle_run_, kReplayBlocks);
        for (size_t k = kReplayBlocks - n; k < kReplayBlocks; ++k) {
          const int16_t* m = &replay_[((replay_at_ + k) % kReplayBlocks) * block_];
          speex_echo_cancellation(echo_, m, zeros_.data(), scratch_.data());
        }
        speex_preprocess_ctl(pre_, SPEEX_PREPROCESS_SET_ECHO_STATE, echo_);
        linked_ = true;
        idle_run_ = 0;
      }
      speex_echo_cancellation(echo_, mic, ref, scratch_.data());
      std::memcpy(out, scratch_.data(), block_ * sizeof(int16_t));
      last_out_ = scratch_[block_ - 1];
    }
    last_mic_ = mic_end;
  } else if (out != mic) {
    std::memcpy(out, mic, block_ * sizeof(int16_t));
  }
  speex_preprocess_run(pre_, out);
}

void SpeexProcessor::RemoveDc(const int16_t* mic, int16_t* out) {
  // y[n] = x[n] - x[n-1] + r y[n-1]: a zero at DC, a pole just inside it
  // (-3 dB near 45 Hz at 16 kHz), like the canceller's own input filter.
  const float r = 1.0f - float(2.0 * M_PI * 45.0 / config_.sample_rate);
  for (size_t i = 0; i < block_; ++i) {
    const float x = mic[i];
    dc_y_ = x - dc_x_ + r * dc_y_;
    dc_x_ = x;
    out[i] = int16_t(std::lround(std::clamp(dc_y_, -32768.0f, 32767.0f)));
  }
}

void SpeexProcessor::Reset() {
  Destroy();
  Create();
}

}  // namespace vb::afe
