// PcmHistory: the last few seconds of a mono stream, addressed by absolute
// sample index, so a detection can hand over the audio that led to it (the
// VAD pre-roll, the wake word's context) without copying every frame twice.
// Fixed capacity: older samples are overwritten.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vb::wakevad {

class PcmHistory {
 public:
  explicit PcmHistory(size_t capacity_samples);
  // Appends samples; the first appended sample after Reset(start) has index start.
  void Append(std::span<const int16_t> samples);
  void Reset(uint64_t start_index);
  // Index one past the newest sample.
  uint64_t end_index() const { return end_; }
  // Oldest index still held.
  uint64_t begin_index() const { return end_ - held_; }
  // Copies [from, end_index()) as s16le bytes, clipped to what is held;
  // returns the index of the first sample actually copied.
  uint64_t CopySince(uint64_t from, std::string* out) const;

 private:
  std::vector<int16_t> ring_;
  uint64_t end_ = 0;
  size_t held_ = 0;
};

}  // namespace vb::wakevad
