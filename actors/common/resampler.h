// Resampler: a small wrapper around speexdsp's resampler for interleaved s16
// streams, used wherever audio changes rate (capture to 16 kHz, decoder to the
// playback rate, playback's reference to 16 kHz). Streaming: state carries
// across calls. Identity when the rates are equal (no speexdsp involved).
//
// Not thread-safe; one instance per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bus/status.h"

struct SpeexResamplerState_;

namespace vb::audio {

class Resampler {
 public:
  Resampler() = default;
  ~Resampler();
  Resampler(Resampler&&) noexcept;
  Resampler& operator=(Resampler&&) noexcept;
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  // quality 0 (fast) … 10 (best); 5 is speexdsp's VoIP default.
  Status Init(uint32_t in_rate, uint32_t out_rate, uint32_t channels, int quality = 5);
  // Appends the resampled frames of `frames` input frames to *out.
  void Process(const int16_t* in, size_t frames, std::vector<int16_t>* out);
  // Forgets the history (after a gap in the input).
  void Reset();

  bool identity() const { return in_rate_ == out_rate_; }
  uint32_t in_rate() const { return in_rate_; }
  uint32_t out_rate() const { return out_rate_; }
  uint32_t channels() const { return channels_; }

 private:
  SpeexResamplerState_* state_ = nullptr;
  uint32_t in_rate_ = 0, out_rate_ = 0, channels_ = 1;
};

// Channel helpers for interleaved s16.
// Mean of channels [first, first+count) of each frame → mono.
void MixToMono(const int16_t* in, size_t frames, uint32_t channels, uint32_t first, uint32_t count,
               std::vector<int16_t>* out);

}  // namespace vb::audio
