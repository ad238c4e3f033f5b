// PcmFramer: a device's samples → fixed-length bus AudioFrames. Converts
// whatever the device gives (any rate, any channel count) to 16 kHz mono with
// speexdsp, optionally keeping a hardware reference channel as a second
// channel, cuts fixed-length frames and stamps each with the time of its
// first sample and its sample index. Capture uses it for audio.mic (time =
// capture time, ALSA delay accounted); playback for audio.ref (time = when
// the sample leaves the speaker: pass now = play time of the first sample +
// n/rate and delay 0).
//
// Time: the framer keeps the time of the first device sample since the last
// anchor; each Push measures it again as now − (samples so far + delay) and
// uses the earliest measure of the last 1–2 s (a late wake-up only makes a
// measure later; a window lets drift and transient delay errors age out). After a Discontinuity() (xrun,
// device lost) the next Push re-anchors and sample_index jumps by the time
// that passed, so receivers see the loss.
//
// Knows nothing of the bus. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "actors/common/pcm_io.h"
#include "actors/common/resampler.h"
#include "vb/v1/audio.pb.h"

namespace vb::audio {

struct FramerConfig {
  uint32_t out_rate = 16000;
  uint32_t frame_ms = 20;
  int mic_channel = -1;        // device channel used as the mic; -1 = mean of all but the reference
  int reference_channel = -1;  // device channel carrying a hardware loopback, -1 = none
  int resample_quality = 5;
};

class PcmFramer {
 public:
  // The frame and its origin (capture time of sample 0, CLOCK_MONOTONIC ns).
  using Emit = std::function<void(const v1::AudioFrame& frame, int64_t origin_ns)>;

  Status Init(const PcmFormat& in, const FramerConfig& config, Emit emit);
  // n device frames (interleaved) read at now_ns, with delay_frames captured
  // after the last of them still waiting in the device.
  void Push(const int16_t* in, size_t n, int64_t now_ns, int64_t delay_frames, bool synthetic_silence = false);
  // Samples were lost: drop the partial frame and re-anchor on the next Push.
  void Discontinuity();

  uint64_t frames_out() const { return frames_out_; }
  uint64_t samples_skipped() const { return samples_skipped_; }  // index jumps, at out_rate
  uint32_t out_channels() const { return config_.reference_channel >= 0 ? 2 : 1; }
  size_t frame_samples() const { return frame_samples_; }

 private:
  PcmFormat in_;
  FramerConfig config_;
  Emit emit_;
  size_t frame_samples_ = 320;
  Resampler resampler_;
  std::vector<int16_t> converted_, resampled_, pending_;  // pending_: out_channels interleaved
  bool anchored_ = false;
  int64_t base_ns_ = 0;             // time of device sample 0 since the anchor
  int64_t window_min_[2] = {0, 0};  // earliest base measured: previous and current second
  int64_t window_start_ns_ = 0;
  uint64_t dev_count_ = 0;   // device frames since the anchor
  uint64_t anchor_out_ = 0;  // output index at the anchor
  uint64_t out_index_ = 0;   // output index of pending_[0]
  uint64_t real_until_ = 0;  // output index after the last sample of real (not synthetic) input
  uint64_t frames_out_ = 0, samples_skipped_ = 0;
  v1::AudioFrame frame_;
};

}  // namespace vb::audio
