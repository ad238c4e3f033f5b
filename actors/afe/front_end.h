// FrontEnd: the whole acoustic front end for one microphone, without the bus.
// Reference frames (what left the speaker, stamped) go into the aligner; each
// microphone frame is split into the backend's blocks (10 ms; speex may use
// 20, unless a mic frame is not a multiple of it), paired with its aligned
// reference — or with a hardware reference channel carried in the mic frame
// itself — and run through the configured backend. The actor, the tests and
// the bench all drive this class.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/afe/delay_estimator.h"
#include "actors/afe/echo_processor.h"
#include "actors/afe/low_band.h"
#include "actors/afe/reference_aligner.h"
#include "bus/status.h"

namespace vb::afe {

struct FrontEndConfig {
  std::string backend = "speex";  // chosen by measurement: see README
  // Where the reference comes from: "auto" (the mic frame's hardware
  // reference channel if it has one, else audio.ref), "bus" (always
  // audio.ref), "channel" (only the hardware channel; none = no AEC input).
  std::string reference = "auto";
  ProcessorConfig processor;
  AlignerConfig aligner;
  // Measure where the echo really is and move the bulk delay to put it
  // delay_guard_ms inside the canceller's tail (bus reference only).
  bool delay_estimation = true;
  double delay_guard_ms = 10;
  DelayEstimatorConfig estimator;
  // Residual echo gate, after the backend: while the speaker is audible
  // (the aligned reference's envelope, decaying 2 dB per 10 ms, above
  // gate_far_dbfs), a block whose output is gate_erle_db or more below what
  // the mic heard lately (its envelope, decaying alike) is echo residue — it is attenuated by
  // gate_depth_db (gain ramped over the block, no click). Near-end speech
  // over the echo is not cancelled, so it stays within gate_erle_db of the
  // mic and passes. Against the first reply on a fresh device: before the
  // canceller converges its residue (-45…-65 dBFS) reads as speech to a
  // server's VAD, and the agent interrupts itself. After the delay
  // estimator moves the bulk delay the canceller starts afresh and passes
  // the echo nearly whole, so its output is no guide: for the next 2.5 s of
  // far end (as long as it takes speex to converge) a block with the
  // speaker audible is residue unless the near end talks over it. The same
  // for a canceller new or reset (the first reply on a fresh device).
  bool echo_gate = true;
  double gate_erle_db = 10;
  double gate_depth_db = 30;
  double gate_far_dbfs = -55;
};

struct FrontEndCounters {
  uint64_t mic_frames = 0;
  uint64_t ref_frames = 0;
  uint64_t bad_mic = 0;  // wrong rate/size/channels: dropped
  uint64_t bad_ref = 0;
  uint64_t blocks = 0;
  uint64_t blocks_with_ref = 0;           // blocks that had some reference signal
  uint64_t delay_changes = 0;             // bulk delay moved by the estimator
  uint64_t gated_blocks = 0;              // blocks attenuated by the residual echo gate
  uint64_t late_ref_gated_blocks = 0;     // of those: the speaker played, its reference came too late
  uint64_t reconverge_gated_blocks = 0;   // of those: the canceller was (re)converging (new, reset, delay change)
  uint64_t invented_gated_blocks = 0;     // of those: louder than the mic heard (the canceller's own echo estimate)
  uint64_t low_band_near_end_blocks = 0;  // speaker audible, let through as the near end by the low band alone
  uint64_t block_fallbacks = 0;           // a mic frame not a multiple of the backend's 20 ms block: now 10 ms
};

// One frame of interleaved s16.
struct PcmView {
  const int16_t* samples = nullptr;
  size_t frames = 0;  // per channel
  int channels = 1;
  int sample_rate = 16000;
};

class FrontEnd {
 public:
  static Status Create(const FrontEndConfig& config, std::unique_ptr<FrontEnd>* out);

  // A reference frame whose first sample leaves the speaker at play_ns
  // (several channels are mixed down). Invalid = wrong format, dropped.
  Status PushReference(const PcmView& ref, int64_t play_ns);
  // A microphone frame captured from capture_ns; `reference_channel` is the
  // index of a hardware loopback channel in it or -1. Writes the cleaned mono
  // frame (same length) to *out. Invalid = wrong format, nothing written.
  Status ProcessMic(const PcmView& mic, int reference_channel, int64_t capture_ns, std::vector<int16_t>* out);
  void Reset();
  // False while the reference for this mic frame is still expected (it is
  // playing, but playback has not published it yet): a caller may hold the
  // frame a little. Always true for a hardware reference channel.
  bool ReferenceReady(const PcmView& mic, int reference_channel, int64_t capture_ns) const;

  const char* backend() const { return processor_->name(); }
  // The backend's block in ms (20, or 10 for webrtc or after a fallback).
  int processor_block_ms() const { return int(proc_block_ * 1000 / size_t(config_.processor.sample_rate)); }
  // Blocks of the backend's that skipped the echo canceller (reference silent for longer than the tail).
  uint64_t canceller_idle_blocks() const { return processor_->idle_blocks(); }
  const FrontEndCounters& counters() const { return counters_; }
  const AlignerCounters& aligner() const { return aligner_.counters(); }
  // The bulk delay in force (configured, or as moved by the estimator).
  double bulk_delay_ms() const { return aligner_.bulk_delay_ms(); }
  const DelayEstimator& estimator() const { return estimator_; }

 private:
  FrontEnd(const FrontEndConfig& config, std::unique_ptr<EchoProcessor> p);
  void Estimate();
  // The canceller's output is no guide for the next 2.5 s of far end.
  void Reconverge();
  void FallBackTo10Ms();
  // The residual echo gate on one block (see FrontEndConfig::echo_gate).
  // ref_next: the next block's reference (null at the end of the frame).
  // ref_late: this block's reference had not arrived (the canceller saw silence).
  void Gate(const int16_t* mic, const int16_t* ref, const int16_t* ref_next, bool ref_late, int16_t* out);
  // Reference this close before a mic frame means playback is live.
  static constexpr double kLiveReferenceMs = 500;
  FrontEndConfig config_;
  std::unique_ptr<EchoProcessor> processor_;
  ReferenceAligner aligner_;
  DelayEstimator estimator_;
  bool uses_reference_;  // an echo canceller that reads the bus reference
  bool estimate_;
  bool gate_;          // echo_gate with an echo canceller
  float gate_floor_;   // gain of a residue block (gate_depth_db)
  size_t block_;       // 10 ms: the gate's and the counters' block
  size_t proc_block_;  // the backend's (10 or 20 ms)
  std::vector<int16_t> mono_, ref_, scratch_;
  double ref_env_db_ = -120;  // decaying peak of the reference level
  double mic_env_db_ = -120;  // … and of the mic level
  double erl_db_ = 20;        // learned echo return: mic - reference while the far end plays
  float gate_gain_ = 1;       // gain at the end of the last block
  // The near-end test in a voice's low band (100-700 Hz), where a cue
  // (the wake chime) has nothing: the last block of mic and reference, and
  // their decaying peaks in the band (-120: not measured lately).
  LowBand low_band_;
  std::vector<int16_t> prev_mic_, prev_ref_;
  double ref_low_env_db_ = -120, mic_low_env_db_ = -120;
  double mic_floor_db_ = 0;    // the mic's recent minimum block level (the room's noise)
  double far_peak_db_ = -120;  // the speaker's recent peak level (slow decay), for blocks with late reference
  // After a delay change: far-end blocks left until the gate trusts the
  // canceller's output again.
  int reconverge_far_blocks_ = 0;
  FrontEndCounters counters_;
};

}  // namespace vb::afe
