// VadTracker: turns per-frame speech probabilities into SPEECH_START and
// SPEECH_END decisions with hysteresis. Speech starts after min_speech_ms of
// consecutive speech frames (a click or a door is shorter) and ends after
// min_silence_ms of consecutive non-speech (a pause between words is
// shorter). START is backdated to the first frame of the run; the consumer
// gets preroll_ms more before that, so the first word is never cut.
//
// Pure logic on sample indices; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>

namespace vb::wakevad {

struct VadOptions {
  double threshold = 0.5;    // probability at or above which a frame is speech
  int min_speech_ms = 40;    // consecutive speech before SPEECH_START
  int min_silence_ms = 500;  // consecutive non-speech before SPEECH_END
  int preroll_ms = 300;      // audio kept before the backdated start
};

struct VadDecision {
  bool start = false;     // true: SPEECH_START, false: SPEECH_END
  uint64_t sample_index;  // backdated start, or end of the last speech frame
  uint64_t decided_at;    // end of the frame that triggered the decision
  float probability;      // mean probability over the deciding run
};

class VadTracker {
 public:
  explicit VadTracker(const VadOptions& options) : opt_(options) {}
  // One frame [first_sample, first_sample + samples) with its probability.
  std::optional<VadDecision> Push(uint64_t first_sample, int samples, float probability);
  bool in_speech() const { return in_speech_; }
  // Forget the current run; if in speech, the caller ends it (see End()).
  void Reset();
  // Ends a speech segment now (stream discontinuity), if one is open.
  std::optional<VadDecision> End(uint64_t at_sample);
  const VadOptions& options() const { return opt_; }

 private:
  VadOptions opt_;
  bool in_speech_ = false;
  uint64_t run_start_ = 0;  // first sample of the current run
  uint64_t last_speech_end_ = 0;
  int run_ms_ = 0;
  double run_prob_sum_ = 0;
  int run_frames_ = 0;
};

}  // namespace vb::wakevad
