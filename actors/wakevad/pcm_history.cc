// Ring buffer of recent samples by absolute index.
#include "actors/wakevad/pcm_history.h"

#include <algorithm>
#include <cstring>

namespace vb::wakevad {

PcmHistory::PcmHistory(size_t capacity_samples) : ring_(std::max<size_t>(capacity_samples, 1)) {}

void PcmHistory::Reset(uint64_t start_index) {
  end_ = start_index;
  held_ = 0;
}

void PcmHistory::Append(std::span<const int16_t> samples) {
  const size_t cap = ring_.size();
  if (samples.size() > cap) {
    end_ += samples.size() - cap;
    samples = samples.last(cap);
  }
  for (int16_t s : samples) {
    ring_[end_ % cap] = s;
    ++end_;
  }
  held_ = std::min(cap, held_ + samples.size());
}

uint64_t PcmHistory::CopySince(uint64_t from, std::string* out) const {
  out->clear();
  from = std::clamp(from, begin_index(), end_);
  out->resize((end_ - from) * 2);
  const size_t cap = ring_.size();
  char* dst = out->data();
  for (uint64_t i = from; i < end_; ++i, dst += 2) {
    int16_t s = ring_[i % cap];
    // s16le on the wire regardless of host order.
    dst[0] = char(uint16_t(s) & 0xff);
    dst[1] = char(uint16_t(s) >> 8);
  }
  return from;
}

}  // namespace vb::wakevad
