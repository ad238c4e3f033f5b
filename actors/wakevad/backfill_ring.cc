// BackfillRing (see backfill_ring.h).
#include "actors/wakevad/backfill_ring.h"

#include <algorithm>

namespace vb::wakevad {

void BackfillRing::Append(Frame f) {
  if (f.pcm.empty()) return;
  if (!frames_.empty() && f.sample_index < frames_.back().end()) {
    frames_.clear();  // a new stream (or a replay): the old indices are void
    held_ = 0;
    ++resets_;
  }
  held_ += f.samples();
  frames_.push_back(std::move(f));
  while (held_ > capacity_ && frames_.size() > 1) {
    held_ -= frames_.front().samples();
    frames_.pop_front();
  }
}

uint64_t BackfillRing::Since(uint64_t from, uint64_t max_samples, uint64_t chunk_samples,
                             const std::function<void(const Frame&)>& emit) const {
  uint64_t next = from;
  uint64_t budget = max_samples ? max_samples : UINT64_MAX;
  Frame chunk;
  auto flush = [&] {
    if (!chunk.pcm.empty()) emit(chunk);
    chunk.pcm.clear();
  };
  for (const Frame& f : frames_) {
    if (f.end() <= from || budget == 0) continue;
    const uint64_t bytes_per = 2 * uint64_t(f.channels ? f.channels : 1);
    const uint64_t start = std::max(f.sample_index, from);
    const uint64_t n = std::min(f.end() - start, budget);
    const bool joins = !chunk.pcm.empty() && chunk.end() == start && chunk.channels == f.channels &&
                       chunk.sample_rate == f.sample_rate && chunk.samples() + n <= chunk_samples;
    if (!joins) {
      flush();
      chunk.sample_index = start;
      chunk.sample_rate = f.sample_rate;
      chunk.channels = f.channels;
      chunk.origin_ns = f.origin_ns;
    }
    chunk.pcm.append(f.pcm, size_t((start - f.sample_index) * bytes_per), size_t(n * bytes_per));
    budget -= n;
    next = start + n;
  }
  flush();
  return next;
}

}  // namespace vb::wakevad
