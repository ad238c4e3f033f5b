// speexdsp resampler wrapper and channel helpers (see resampler.h).
#include "actors/common/resampler.h"

#include <speex/speex_resampler.h>

#include <string>
#include <utility>

namespace vb::audio {

Resampler::~Resampler() {
  if (state_) speex_resampler_destroy(state_);
}

Resampler::Resampler(Resampler&& o) noexcept { *this = std::move(o); }

Resampler& Resampler::operator=(Resampler&& o) noexcept {
  if (this != &o) {
    if (state_) speex_resampler_destroy(state_);
    state_ = std::exchange(o.state_, nullptr);
    in_rate_ = o.in_rate_;
    out_rate_ = o.out_rate_;
    channels_ = o.channels_;
  }
  return *this;
}

Status Resampler::Init(uint32_t in_rate, uint32_t out_rate, uint32_t channels, int quality) {
  if (state_) speex_resampler_destroy(state_);
  state_ = nullptr;
  if (in_rate == 0 || out_rate == 0 || channels == 0)
    return Status::Invalid("resampler: rate and channels must be positive");
  in_rate_ = in_rate;
  out_rate_ = out_rate;
  channels_ = channels;
  if (in_rate == out_rate) return Status::Ok();
  int err = 0;
  state_ = speex_resampler_init(channels, in_rate, out_rate, quality, &err);
  if (!state_ || err != RESAMPLER_ERR_SUCCESS)
    return Status::Internal(std::string("speex_resampler_init: ") + speex_resampler_strerror(err));
  speex_resampler_skip_zeros(state_);
  return Status::Ok();
}

void Resampler::Process(const int16_t* in, size_t frames, std::vector<int16_t>* out) {
  if (identity() || !state_) {
    out->insert(out->end(), in, in + frames * channels_);
    return;
  }
  // Room for the output plus the filter's rounding.
  size_t cap = size_t(uint64_t(frames) * out_rate_ / in_rate_) + 16;
  size_t at = out->size();
  out->resize(at + cap * channels_);
  spx_uint32_t in_len = spx_uint32_t(frames), out_len = spx_uint32_t(cap);
  speex_resampler_process_interleaved_int(state_, in, &in_len, out->data() + at, &out_len);
  out->resize(at + size_t(out_len) * channels_);
}

void Resampler::Reset() {
  if (state_) {
    speex_resampler_reset_mem(state_);
    speex_resampler_skip_zeros(state_);
  }
}

void MixToMono(const int16_t* in, size_t frames, uint32_t channels, uint32_t first, uint32_t count,
               std::vector<int16_t>* out) {
  size_t at = out->size();
  out->resize(at + frames);
  if (count == 0 || first + count > channels) count = 0;
  for (size_t i = 0; i < frames; ++i) {
    int32_t sum = 0;
    for (uint32_t c = 0; c < count; ++c) sum += in[i * channels + first + c];
    (*out)[at + i] = count ? int16_t(sum / int32_t(count)) : 0;
  }
}

}  // namespace vb::audio
