// Arbiter: which device answers when several heard the same wake word (or,
// in continuous mode, the start of speech) — chosen by the signal each
// reports, never by which report arrived first (issue 16 item 3).
//
// The first report opens a window (`window`, default 200 ms). The decision
// comes when every known device has reported, or when the window ends: a
// wake heard by a single device is delayed by at most the window (by
// nothing when the config knows one device only). Reports from other
// devices within `window` after a decision are late copies of the same
// utterance: they stand down too.
//
// The signal: how far the speech stands above that device's own noise
// floor (SNR, dB), in the speech band (above 250 Hz), measured on the
// audio the report carries at the voice's onset, against the noise just
// before it (the AFE's gain control has not yet turned the voice down
// there): WakeEvent context_pcm around start_sample, VadEvent preroll_pcm
// around sample_index. Within `tie_db` of each other, the higher wake score wins,
// then the louder speech; arrival order decides nothing unless all else is
// equal.
//
// Plain C++, no bus; inputs carry the time. Not thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "vb/v1/voice.pb.h"

namespace vb::control {

// Level of 16 kHz s16le speech over its own noise floor.
struct Signal {
  double level_db = -120;  // the voice's onset: its 5 loudest 10 ms blocks less the noise, dBFS
  double floor_db = -120;  // the quieter half of the 400 ms before the onset, dBFS
  double snr_db() const { return level_db - floor_db; }
};
// `pcm` starts at sample `pcm_start`; speech is [speech_begin, speech_end).
Signal MeasureSignal(const std::string& pcm, uint64_t pcm_start, uint64_t speech_begin, uint64_t speech_end);
Signal MeasureWake(const v1::WakeEvent& w);
Signal MeasureVad(const v1::VadEvent& v);

struct ArbiterOptions {
  std::chrono::milliseconds window{200};
  double tie_db = 1.0;
  size_t devices = 1;  // how many devices may report (decide early once all have)
};

struct Report {
  std::string device;
  bool wake = false;  // a wake word (else a speech start)
  double score = 0;   // wake score (higher = more certain)
  Signal signal;
  std::chrono::steady_clock::time_point at;
  v1::WakeEvent wake_event;  // the report itself, for the dialog
  v1::VadEvent vad_event;
};

struct Decision {
  Report chosen;
  std::vector<Report> stood_down;
  std::chrono::milliseconds waited{0};  // first report → decision
  std::string why;                      // for people
};

class Arbiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Arbiter(ArbiterOptions options) : options_(options) {}

  // A report. Returns a decision at once if this completes the set (every
  // device reported, or only one device exists); otherwise nullopt and the
  // caller calls Tick at NextDeadline(). A late copy after a decision is
  // counted in late() and returns nullopt.
  std::optional<Decision> Offer(Report r, Clock::time_point now);
  std::optional<Decision> Tick(Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const;
  uint64_t decisions() const { return decisions_; }
  uint64_t late() const { return late_; }
  const ArbiterOptions& options() const { return options_; }

 private:
  Decision Decide(Clock::time_point now);

  ArbiterOptions options_;
  std::vector<Report> open_;
  std::optional<Clock::time_point> deadline_;
  std::string last_chosen_;
  std::optional<Clock::time_point> late_until_;
  uint64_t decisions_ = 0, late_ = 0;
};

}  // namespace vb::control
