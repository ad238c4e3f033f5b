// BackfillRing: the last seconds of audio.clean exactly as they were
// published (sample_index, rate, channels, pcm), kept so that a vb-session
// that crashed and restarted can get the speech it missed (BackfillRequest on
// session.backfill → AudioBackfill on audio.backfill). vb-wakevad already
// hears every audio.clean frame and outlives a session crash, so it holds the
// ring; the session, not this ring, decides whether the audio was something
// the dialog was listening to (it only asks then).
//
// Bounded by samples held; the oldest frames go first. A sample_index that
// goes backwards (vb-afe restarted its stream) empties the ring: indices of
// the old stream mean nothing to the new one. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

namespace vb::wakevad {

class BackfillRing {
 public:
  struct Frame {
    uint64_t sample_index = 0;  // of the first sample (per channel)
    uint32_t sample_rate = 0;
    uint32_t channels = 1;
    int64_t origin_ns = 0;  // publish time of the original frame
    std::string pcm;        // s16le, channels interleaved
    uint64_t samples() const { return pcm.size() / (2 * (channels ? channels : 1)); }
    uint64_t end() const { return sample_index + samples(); }
  };

  explicit BackfillRing(uint64_t capacity_samples) : capacity_(capacity_samples) {}
  void Append(Frame f);
  // Calls `emit` with the held audio from `from` on (the frame holding `from`
  // trimmed to start there), at most `max_samples` (0 = all), merged into
  // contiguous chunks of at most `chunk_samples` so a long answer is a few
  // messages, not hundreds (the stream plane's queue is small). Returns the
  // sample after the last one emitted (`from` if nothing was).
  uint64_t Since(uint64_t from, uint64_t max_samples, uint64_t chunk_samples,
                 const std::function<void(const Frame&)>& emit) const;
  uint64_t oldest() const { return frames_.empty() ? 0 : frames_.front().sample_index; }
  uint64_t newest_end() const { return frames_.empty() ? 0 : frames_.back().end(); }
  uint64_t held_samples() const { return held_; }
  uint64_t resets() const { return resets_; }

 private:
  uint64_t capacity_;
  std::deque<Frame> frames_;
  uint64_t held_ = 0;
  uint64_t resets_ = 0;
};

}  // namespace vb::wakevad
