// VoicePipeline: the whole of vb-wakevad's logic for one audio stream. It
// cuts incoming PCM (any chunk size) into 20 ms frames, runs the chosen voice
// detector and the hysteresis, spots the wake phrase, keeps the recent audio,
// and reports VAD and wake events carrying their pre-roll / context audio.
// The actor adapter maps AudioFrames to Feed() and events to the bus; the
// evaluation tool and the benchmark drive it straight from WAV files.
//
// Discontinuities: a gap of up to max_gap_ms is filled with silence (the
// detectors keep their state); a larger gap or a rewind restarts the stream
// (an open speech segment is ended where the audio stopped).
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "actors/wakevad/pcm_history.h"
#include "actors/wakevad/vad_tracker.h"
#include "actors/wakevad/voice_detector.h"
#include "actors/wakevad/wake_spotter.h"
#include "actors/wakevad/wake_verifier.h"
#include "bus/status.h"

namespace vb::wakevad {

struct PipelineOptions {
  std::string detector = "energy";
  DetectorOptions detector_options;
  VadOptions vad;
  bool wake_enabled = true;
  WakeOptions wake;
  int context_ms = 2500;      // wake context: at least this much audio up to the detection
  int context_lead_ms = 500;  // … and at least this much before the phrase began
  int max_gap_ms = 1000;      // gaps up to this are filled with silence
  // The spotter can fire before the phrase has ended (seen: 60 ms into the
  // final "s" of "bus") and its end estimate runs early, so the phrase's
  // tail would open the question. The wake is held until end_quiet_ms of
  // non-speech frames follow the estimated end (the phrase end is then where
  // that quiet began), or for at most end_settle_ms after the detection
  // (someone running straight into the question). 0 = report at once.
  // The verifier decodes up to verify_pad_ms after the end, so it waits
  // within this bound too: with a 300 ms bound and a 100 ms pad, 4 of 72
  // real phrases at 10 dB were cut before their last word and turned down;
  // with 300 and 300, 1 (measured, README).
  int wake_end_settle_ms = 600;
  // The spotter decodes only around speech: from spot_lead_ms before a
  // frame whose speech probability reaches spot_threshold (below the VAD's
  // threshold: in loud noise speech barely rises above the floor) until
  // spot_hangover_ms after the last one. Silence — and
  // the agent's echo, once cancelled — costs no decoding. 0 = decode all.
  double spot_threshold = 0.05;  // detector probability that keeps the spotter decoding
  int spot_lead_ms = 400;
  int spot_hangover_ms = 600;
  bool spot_all = false;
  int wake_end_quiet_ms = 60;
  // Also hand rejected detections to on_wake (verified = false): for the
  // evaluation, which sweeps the margin over one run.
  bool report_rejected = false;
};

struct VadOutput {
  VadDecision decision;
  std::string_view detector;
  std::string preroll_pcm;  // SPEECH_START only: s16le from preroll_start
  uint64_t preroll_start = 0;
};

struct WakeOutput {
  WakeDetection detection;  // end_sample refined, see wake_end_settle_ms
  bool verified = true;     // false: the verifier turned it down (only reported with report_rejected)
  std::string context_pcm;  // s16le from context_start to the report (≥ the detection)
  uint64_t context_start = 0;
};

struct PipelineCounters {
  uint64_t frames = 0;
  uint64_t gap_fills = 0;            // gaps filled with silence
  uint64_t resyncs = 0;              // discontinuities that restarted the stream
  uint64_t vad_ns = 0;               // time in the detector + hysteresis
  uint64_t wake_ns = 0;              // time in the wake spotter and verifier
  uint64_t wakes_rejected = 0;       // spotter detections the verifier turned down
  uint64_t wake_ends_moved = 0;      // wakes whose phrase end was moved later by the quiet search
  uint64_t wake_ends_unsettled = 0;  // wakes reported at end_settle_ms without a quiet run
  uint64_t spot_frames = 0;          // frames the spotter decoded (lead-ins included)
};

class VoicePipeline {
 public:
  using VadFn = std::function<void(const VadOutput&)>;
  using WakeFn = std::function<void(const WakeOutput&)>;

  VoicePipeline();
  Status Init(const PipelineOptions& options, VadFn on_vad, WakeFn on_wake);
  // Mono 16 kHz samples whose first one has stream index `first_sample`.
  void Feed(uint64_t first_sample, std::span<const int16_t> pcm);
  // Flushes nothing: partial frames wait for more audio. Ends open speech
  // (end of a file, the actor stopping).
  void Finish();

  const PipelineCounters& counters() const { return counters_; }
  bool in_speech() const { return tracker_ && tracker_->in_speech(); }
  const PipelineOptions& options() const { return opt_; }

 private:
  void Resync(uint64_t first_sample);
  void ProcessFrame(uint64_t first_sample, std::span<const int16_t> frame);
  // Reports the held wake if its phrase has ended (or `force`).
  void SettleWake(bool force);
  // Runs the verifier on the audio around *d; sets verify_score.
  bool Verify(WakeDetection* d);

  PipelineOptions opt_;
  VadFn on_vad_;
  WakeFn on_wake_;
  std::unique_ptr<VoiceDetector> detector_;
  std::unique_ptr<VadTracker> tracker_;
  std::unique_ptr<WakeSpotter> spotter_;
  std::unique_ptr<WakeVerifier> verifier_;  // null unless wake.verify
  std::unique_ptr<PcmHistory> history_;
  struct FrameVoice {
    uint64_t first_sample;
    bool speech;
  };
  std::vector<FrameVoice> recent_;       // per-frame speech decisions, the last ~2 s
  std::optional<WakeOutput> held_wake_;  // detected, waiting for the phrase to end
  uint64_t spot_until_ = 0;              // decode up to this sample (hangover after speech)
  bool spotting_ = false;                // the spotter is following the stream
  std::vector<int16_t> pending_;         // < one frame, waiting for more
  uint64_t pending_start_ = 0;
  bool started_ = false;
  PipelineCounters counters_;
};

}  // namespace vb::wakevad
