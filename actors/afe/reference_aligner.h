// ReferenceAligner: pairs each microphone sample with the speaker sample that
// was playing when it was captured. audio.ref frames carry the time their
// first sample leaves the speaker; audio.mic frames the time their first
// sample was captured. Both are mapped onto one sample grid of
// CLOCK_MONOTONIC; the reference is kept in a ring indexed by grid position,
// and the mic block captured at t reads the reference at t − bulk_delay.
//
// Timestamps jitter (ALSA delay estimates move by a few ms). Within
// `tolerance` each stream is kept contiguous — what an adaptive filter needs
// — and only a larger disagreement (a dropped frame, an xrun, clock drift
// building up) re-anchors the stream on its stamp, counted as a jump.
// Reference that is missing where it is needed is read as silence; reference
// that arrives after its mic samples were processed is counted as late.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vb::afe {

struct AlignerConfig {
  int sample_rate = 16000;
  int capacity_ms = 2000;    // how far the reference may run ahead of the mic
  double bulk_delay_ms = 0;  // speaker → mic delay not in the stamps
  double tolerance_ms = 4;   // stamp jitter absorbed without a jump
};

struct AlignerCounters {
  uint64_t ref_samples = 0;       // reference samples received
  uint64_t ref_spans = 0;         // playing spans begun (first frame, or resumed after running dry)
  uint64_t ref_jumps = 0;         // reference re-anchored on its stamp inside a span
  uint64_t mic_jumps = 0;         // mic re-anchored on its stamp
  uint64_t ref_late = 0;          // reference samples that came after their mic samples
  uint64_t ref_gap = 0;           // mic samples with no reference inside a playing span (read as 0)
  uint64_t ref_overrun = 0;       // unread reference overwritten (ran ahead by > capacity)
  int64_t last_ref_error_us = 0;  // last reference stamp − expected position
  int64_t last_mic_error_us = 0;  // last mic stamp − expected position
  // How far the reference was ahead of the mic read at the last Fetch
  // (negative: the mic waited for reference that had not come).
  int64_t lead_us = 0;
};

class ReferenceAligner {
 public:
  explicit ReferenceAligner(const AlignerConfig& config);

  // A reference frame: `n` mono samples, the first leaving the speaker at play_ns.
  void Push(int64_t play_ns, const int16_t* pcm, size_t n);
  // The reference for `n` mic samples whose first was captured at capture_ns.
  void Fetch(int64_t capture_ns, size_t n, int16_t* out);
  // True if any reference sample in the last Fetch was non-silent data.
  bool last_fetch_had_reference() const { return last_had_ref_; }
  // Of the last Fetch, the index of the first sample whose reference is
  // unknown although the reference was live (its stream had reached within
  // `live_ms` of those samples): not arrived yet (late), or a hole inside a
  // playing span (lost) — not silence. n if none.
  size_t last_fetch_late_from(double live_ms) const;
  // Grid positions where the last Push wrote and the last Fetch read.
  int64_t last_push_pos() const { return last_push_pos_; }
  int64_t last_fetch_pos() const { return last_fetch_pos_; }

  // Whether the reference for `n` mic samples captured from capture_ns has
  // all arrived — or is not worth waiting for: nothing is playing (no
  // reference within `live_ms` before them).
  bool Covers(int64_t capture_ns, size_t n, double live_ms) const;

  // Moves the pairing (the delay estimator found the echo elsewhere); the
  // mic re-anchors on its next stamp without counting a jump.
  void SetBulkDelay(double ms);
  double bulk_delay_ms() const { return config_.bulk_delay_ms; }

  const AlignerCounters& counters() const { return counters_; }
  void Reset();

 private:
  int64_t GridPos(int64_t ns) const;
  int64_t Anchor(int64_t stamped, bool* have, int64_t* next, uint64_t* jumps, int64_t* error_us);

  AlignerConfig config_;
  int64_t tolerance_;  // samples
  int64_t bulk_ns_;
  std::vector<int16_t> ring_;
  std::vector<int64_t> tag_;  // grid position held by each slot (-1: none)
  bool have_ref_ = false, have_mic_ = false;
  int64_t ref_next_ = 0;               // where the next contiguous reference sample goes
  int64_t mic_next_ = 0;               // where the next contiguous mic read starts
  int64_t consumed_ = INT64_MIN;       // highest grid position read so far + 1
  int64_t ref_high_ = INT64_MIN;       // highest grid position written + 1
  int64_t span_start_ = INT64_MIN;     // first position of the current playing span
  int64_t prev_span_end_ = INT64_MIN;  // where the span before it ran dry
  bool last_had_ref_ = false;
  size_t last_fetch_n_ = 0;
  size_t last_fetch_hole_from_ = 0;  // first hole inside a playing span in the last Fetch
  size_t last_fetch_dry_from_ = 0;   // first sample between the last two spans in it
  int64_t last_push_pos_ = 0, last_fetch_pos_ = 0;
  AlignerCounters counters_;
};

}  // namespace vb::afe
