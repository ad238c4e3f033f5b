// Conversion, framing and timestamps of device audio (see pcm_framer.h).
#include "actors/common/pcm_framer.h"

#include <algorithm>

namespace vb::audio {

Status PcmFramer::Init(const PcmFormat& in, const FramerConfig& config, Emit emit) {
  if (in.channels == 0 || in.sample_rate == 0) return Status::Invalid("capture format has no channels or rate");
  if (config.reference_channel >= int(in.channels))
    return Status::Invalid("reference_channel " + std::to_string(config.reference_channel) + " but the device has " +
                           std::to_string(in.channels) + " channel(s)");
  if (config.mic_channel >= int(in.channels))
    return Status::Invalid("mic_channel " + std::to_string(config.mic_channel) + " but the device has " +
                           std::to_string(in.channels) + " channel(s)");
  if (config.reference_channel >= 0 && in.channels < 2)
    return Status::Invalid("a reference channel needs a device with at least 2 channels");
  in_ = in;
  config_ = config;
  emit_ = std::move(emit);
  frame_samples_ = size_t(config.out_rate) * config.frame_ms / 1000;
  pending_.clear();
  anchored_ = false;
  return resampler_.Init(in.sample_rate, config.out_rate, out_channels(), config.resample_quality);
}

void PcmFramer::Discontinuity() {
  pending_.clear();
  real_until_ = 0;
  anchored_ = false;
  resampler_.Reset();
}

void PcmFramer::Push(const int16_t* in, size_t n, int64_t now_ns, int64_t delay_frames, bool synthetic_silence) {
  if (n == 0) return;
  const double ns_per_in = 1e9 / in_.sample_rate;
  const double ns_per_out = 1e9 / config_.out_rate;
  const int64_t first_ns = now_ns - int64_t(double(int64_t(n) + delay_frames) * ns_per_in);
  if (!anchored_) {
    if (frames_out_ > 0 || out_index_ > 0) {
      // Re-anchor after a loss: the index jumps by the time that passed.
      int64_t expected = int64_t(anchor_out_) + int64_t(double(first_ns - base_ns_) / ns_per_out);
      if (expected > int64_t(out_index_)) {
        samples_skipped_ += uint64_t(expected) - out_index_;
        out_index_ = uint64_t(expected);
      }
    }
    anchored_ = true;
    base_ns_ = first_ns;
    window_min_[0] = window_min_[1] = first_ns;
    window_start_ns_ = now_ns;
    dev_count_ = 0;
    anchor_out_ = out_index_;
  } else {
    // Earliest measure of the last 1–2 s: late wake-ups only make a measure
    // later, and a transient overestimate of the delay (a sound server
    // settling its latency) ages out instead of biasing every stamp.
    int64_t measured = first_ns - int64_t(double(dev_count_) * ns_per_in);
    if (now_ns - window_start_ns_ >= 1'000'000'000) {
      window_min_[0] = window_min_[1];
      window_min_[1] = measured;
      window_start_ns_ = now_ns;
    }
    window_min_[1] = std::min(window_min_[1], measured);
    base_ns_ = std::min(window_min_[0], window_min_[1]);
  }
  dev_count_ += n;

  // Channels: mic (mixed or picked) and, if any, the reference.
  const uint32_t ch = in_.channels;
  const uint32_t oc = out_channels();
  converted_.resize(n * oc);
  for (size_t i = 0; i < n; ++i) {
    const int16_t* f = in + i * ch;
    int32_t mic;
    if (config_.mic_channel >= 0) {
      mic = f[config_.mic_channel];
    } else {
      int32_t sum = 0, count = 0;
      for (uint32_t c = 0; c < ch; ++c)
        if (int(c) != config_.reference_channel) sum += f[c], ++count;
      mic = count ? sum / count : 0;
    }
    converted_[i * oc] = int16_t(mic);
    if (oc == 2) converted_[i * oc + 1] = f[config_.reference_channel];
  }
  resampler_.Process(converted_.data(), n, &pending_);
  // A frame is synthetic only if none of its samples came from real input.
  if (!synthetic_silence) real_until_ = out_index_ + pending_.size() / oc;

  const size_t frame_values = frame_samples_ * oc;
  size_t at = 0;
  while (pending_.size() - at >= frame_values) {
    frame_.Clear();
    frame_.set_sample_rate(config_.out_rate);
    frame_.set_channels(oc);
    frame_.set_sample_index(out_index_);
    frame_.set_reference_channel(oc == 2 ? 1 : -1);
    frame_.set_synthetic_silence(synthetic_silence && out_index_ >= real_until_);
    int64_t origin = base_ns_ + int64_t(double(out_index_ - anchor_out_) * ns_per_out);
    frame_.set_play_ns(origin);
    frame_.mutable_pcm()->assign(reinterpret_cast<const char*>(pending_.data() + at), frame_values * 2);
    at += frame_values;
    out_index_ += frame_samples_;
    ++frames_out_;
    emit_(frame_, origin);
  }
  pending_.erase(pending_.begin(), pending_.begin() + ptrdiff_t(at));
}

}  // namespace vb::audio
