// Hysteresis over frame decisions.
#include "actors/wakevad/vad_tracker.h"

#include "actors/wakevad/voice_detector.h"

namespace vb::wakevad {

void VadTracker::Reset() {
  in_speech_ = false;
  run_ms_ = 0;
  run_prob_sum_ = 0;
  run_frames_ = 0;
}

std::optional<VadDecision> VadTracker::End(uint64_t at_sample) {
  if (!in_speech_) return std::nullopt;
  Reset();
  return VadDecision{false, at_sample, at_sample, 0.0f};
}

std::optional<VadDecision> VadTracker::Push(uint64_t first_sample, int samples, float probability) {
  const int frame_ms = samples * 1000 / kSampleRate;
  const bool speech = probability >= opt_.threshold;
  const uint64_t frame_end = first_sample + uint64_t(samples);
  // A "run" is consecutive frames on the other side of the current state.
  const bool against_state = speech != in_speech_;
  if (!against_state) {
    run_ms_ = 0;
    run_prob_sum_ = 0;
    run_frames_ = 0;
    if (speech) last_speech_end_ = frame_end;
    return std::nullopt;
  }
  if (run_ms_ == 0) run_start_ = first_sample;
  run_ms_ += frame_ms;
  run_prob_sum_ += probability;
  ++run_frames_;
  const int needed = in_speech_ ? opt_.min_silence_ms : opt_.min_speech_ms;
  if (run_ms_ < needed) return std::nullopt;
  VadDecision d;
  d.start = !in_speech_;
  d.sample_index = d.start ? run_start_ : last_speech_end_;
  d.decided_at = frame_end;
  d.probability = float(run_prob_sum_ / run_frames_);
  in_speech_ = !in_speech_;
  if (in_speech_) last_speech_end_ = frame_end;
  run_ms_ = 0;
  run_prob_sum_ = 0;
  run_frames_ = 0;
  return d;
}

}  // namespace vb::wakevad
