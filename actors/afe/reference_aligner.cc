// The time-indexed reference ring. Grid positions are absolute sample counts
// of CLOCK_MONOTONIC at the stream rate, so both streams meet on the same
// grid without any shared start.
#include "actors/afe/reference_aligner.h"

#include <algorithm>
#include <cstdlib>

namespace vb::afe {

ReferenceAligner::ReferenceAligner(const AlignerConfig& config) : config_(config) {
  size_t cap = size_t(std::max(1, config.sample_rate * std::max(config.capacity_ms, 100) / 1000));
  ring_.assign(cap, 0);
  tag_.assign(cap, -1);
  tolerance_ = int64_t(config.tolerance_ms * config.sample_rate / 1000.0 + 0.5);
  bulk_ns_ = int64_t(config.bulk_delay_ms * 1e6);
}

void ReferenceAligner::Reset() {
  std::fill(tag_.begin(), tag_.end(), -1);
  have_ref_ = have_mic_ = false;
  consumed_ = ref_high_ = span_start_ = prev_span_end_ = INT64_MIN;
  counters_ = {};
}

bool ReferenceAligner::Covers(int64_t capture_ns, size_t n, double live_ms) const {
  if (ref_high_ == INT64_MIN) return true;
  // Where the Fetch would read (contiguous when within tolerance).
  int64_t pos = GridPos(capture_ns - bulk_ns_);
  if (have_mic_ && std::llabs(pos - mic_next_) <= tolerance_) pos = mic_next_;
  int64_t end = pos + int64_t(n);
  if (ref_high_ >= end) return true;
  return ref_high_ < pos - int64_t(live_ms * config_.sample_rate / 1000.0);
}

void ReferenceAligner::SetBulkDelay(double ms) {
  config_.bulk_delay_ms = ms;
  bulk_ns_ = int64_t(ms * 1e6);
  have_mic_ = false;
}

int64_t ReferenceAligner::GridPos(int64_t ns) const {
  // Rounded to the nearest sample; __int128 keeps ns × rate from overflowing.
  __int128 num = __int128(ns) * config_.sample_rate;
  __int128 pos = (num + (num >= 0 ? 500'000'000 : -500'000'000)) / 1'000'000'000;
  return int64_t(pos);
}

int64_t ReferenceAligner::Anchor(int64_t stamped, bool* have, int64_t* next, uint64_t* jumps, int64_t* error_us) {
  if (*have) {
    int64_t err = stamped - *next;
    *error_us = err * 1'000'000 / config_.sample_rate;
    if (std::llabs(err) <= tolerance_) return *next;
    ++*jumps;
  }
  *have = true;
  return stamped;
}

void ReferenceAligner::Push(int64_t play_ns, const int16_t* pcm, size_t n) {
  int64_t stamped = GridPos(play_ns);
  int64_t pos;
  if (!have_ref_ || (ref_next_ <= consumed_ && stamped > ref_next_)) {
    // First frame, or playback resuming after it ran dry: a new span, not a
    // misalignment.
    if (have_ref_) prev_span_end_ = ref_next_;
    have_ref_ = true;
    pos = stamped;
    span_start_ = pos;
    ++counters_.ref_spans;
  } else {
    pos = Anchor(stamped, &have_ref_, &ref_next_, &counters_.ref_jumps, &counters_.last_ref_error_us);
    span_start_ = std::min(span_start_, pos);
  }
  const int64_t cap = int64_t(ring_.size());
  for (size_t i = 0; i < n; ++i) {
    int64_t p = pos + int64_t(i);
    if (p < consumed_) {
      ++counters_.ref_late;
      continue;
    }
    size_t slot = size_t(((p % cap) + cap) % cap);
    if (tag_[slot] >= consumed_ && tag_[slot] != p && tag_[slot] >= 0) ++counters_.ref_overrun;
    ring_[slot] = pcm[i];
    tag_[slot] = p;
  }
  counters_.ref_samples += n;
  last_push_pos_ = pos;
  ref_next_ = pos + int64_t(n);
  ref_high_ = std::max(ref_high_, ref_next_);
}

void ReferenceAligner::Fetch(int64_t capture_ns, size_t n, int16_t* out) {
  int64_t pos = Anchor(GridPos(capture_ns - bulk_ns_), &have_mic_, &mic_next_, &counters_.mic_jumps,
                       &counters_.last_mic_error_us);
  const int64_t cap = int64_t(ring_.size());
  last_had_ref_ = false;
  last_fetch_hole_from_ = last_fetch_dry_from_ = n;
  for (size_t i = 0; i < n; ++i) {
    int64_t p = pos + int64_t(i);
    size_t slot = size_t(((p % cap) + cap) % cap);
    if (tag_[slot] == p) {
      out[i] = ring_[slot];
      last_had_ref_ = true;
    } else {
      out[i] = 0;
      // Silence is expected while nothing plays; a hole inside a span the
      // reference has already covered (or is about to) means lost frames.
      if (p >= span_start_ && p < ref_high_) {
        ++counters_.ref_gap;
        last_fetch_hole_from_ = std::min(last_fetch_hole_from_, i);
      } else if (p >= prev_span_end_ && p < span_start_) {
        last_fetch_dry_from_ = std::min(last_fetch_dry_from_, i);
      }
    }
  }
  last_fetch_pos_ = pos;
  last_fetch_n_ = n;
  mic_next_ = pos + int64_t(n);
  consumed_ = std::max(consumed_, mic_next_);
  if (ref_high_ != INT64_MIN) counters_.lead_us = (ref_high_ - mic_next_) * 1'000'000 / config_.sample_rate;
}

size_t ReferenceAligner::last_fetch_late_from(double live_ms) const {
  if (ref_high_ == INT64_MIN) return last_fetch_n_;
  const int64_t live = int64_t(live_ms * config_.sample_rate / 1000.0);
  if (ref_high_ < last_fetch_pos_ - live) return last_fetch_n_;  // playback stopped: silence
  // A hole inside the playing span: the speaker played something there that
  // never reached us (lost frames, a jump of its stamps). A dry stretch
  // between two spans shorter than `live` is the same: playback publishes
  // silence too, so its stream does not pause for that short.
  size_t unknown = last_fetch_hole_from_;
  if (prev_span_end_ != INT64_MIN && span_start_ - prev_span_end_ <= live)
    unknown = std::min(unknown, last_fetch_dry_from_);
  if (ref_high_ >= last_fetch_pos_ + int64_t(last_fetch_n_)) return unknown;
  return std::min(unknown, size_t(std::max<int64_t>(ref_high_ - last_fetch_pos_, 0)));
}

}  // namespace vb::afe
