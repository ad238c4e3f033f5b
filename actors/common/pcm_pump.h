// PcmPump: moves PCM between one device and the actor's logic at the
// device's pace, and keeps the device alive. Shared by capture (a PcmSource:
// samples go to the logic) and playback (a PcmSink: the logic renders what
// the device takes next).
//
// Pacing:
//   - a clocked device (ALSA, the fault fakes) is served when its poll
//     descriptors say so, or every device_period_ms if it has none;
//   - a file or silence is paced by a timer at `speed` × real time (0: a
//     source is read as fast as the loop goes; a sink waits for RenderNow()).
// Device life (clocked devices): opened at Start(); when it cannot be opened
// or fails later (an error from Read/Avail/Write, or the watchdog: an open
// device that moves nothing for stall_ns) it is closed and reported once —
// one log line, counter device_lost, the `lost` hook — and reopened with a
// doubling back-off (reopen_min_ms … reopen_max_ms, bus/backoff.h); when it
// opens again, one line, device_back, the `back` hook. While a sink is lost,
// the timer keeps rendering into nothing so what plays still ends on time.
// Xruns are counted, logged (rate-limited) and reported as discontinuities.
// Parking (sink): while nothing plays, Park() stops the device (its queue of
// silence dropped, its descriptors left) so it costs no wake-ups; the
// watchdog only probes it; Resume() serves it again at once.
//
// No bus, no ZeroMQ: the loop is a PumpLoop. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/common/pcm_io.h"
#include "actors/common/pump_loop.h"
#include "bus/backoff.h"
#include "bus/log.h"

namespace vb::audio {

struct PumpConfig {
  std::string what = "device";     // "capture device": names it in log lines
  std::string xrun_line = "xrun";  // "capture overrun (N in total): <xrun_effect>"
  std::string xrun_effect = "recovered";
  uint32_t period_ms = 10;         // paced timer period at speed 1 (playback: the render block)
  uint32_t device_period_ms = 10;  // a clocked device without descriptors is served this often
  int reopen_min_ms = 250, reopen_max_ms = 2000;
  uint32_t watchdog_ms = 250;
  int64_t stall_ns = 2'000'000'000;       // an open device moving nothing this long is lost…
  int64_t first_data_ns = 2'000'000'000;  // …right after an open (a sound server may be slow to start)
  bool park_idle = false;     // source: readable descriptors with nothing to read → leave the poll one period
  size_t history_frames = 0;  // sink: last frames written, kept for DropDeviceQueue()/RewindDeviceQueue()
};

struct PumpCounters {
  uint64_t device_lost = 0, device_back = 0;
  uint64_t xruns = 0;   // new xruns seen (the device's total: PcmPump::xruns_total())
  uint64_t stalls = 0;  // losses found by the watchdog
  uint64_t idle_wakeups_parked = 0;
  uint64_t queue_drops = 0;   // sink: DropDeviceQueue() that dropped
  uint64_t rewinds = 0;       // sink: RewindDeviceQueue() that took frames back
  uint64_t parks = 0;         // sink: Park() that stopped the device
  uint64_t frames = 0;        // frames read from / written to the device
  uint64_t write_errors = 0;  // sink without a clock (a file) that refused a write
};

class PcmPump {
 public:
  struct Hooks {
    // Samples were lost (xrun, device lost or reopened, queue dropped).
    std::function<void()> discontinuity;
    // The device (re)opened; not ok = it cannot serve this configuration:
    // the pump stops for good and calls `fatal`.
    std::function<Status()> opened;
    std::function<void(const Status&)> fatal;
    std::function<void(const std::string& why)> lost;  // once per outage
    std::function<void(int64_t outage_ms)> back;
    std::function<void(const std::string& what)> error;  // a file sink refused a write
  };
  // Source: n frames (interleaved, format()) read at now_ns; delay_frames
  // captured after the last of them are still in the device.
  using Samples =
      std::function<void(const int16_t* pcm, size_t n, int64_t now_ns, int64_t delay_frames, bool synthetic)>;
  // Source: a finite source ended. Return a source to go on with (paced in
  // real time from here), or nullptr to stop pumping.
  using Ended = std::function<std::unique_ptr<PcmSource>()>;
  // Sink: fill `out` with n mono frames whose first leaves the speaker at
  // play_ns. False: do not write them (a file keeps only what was heard).
  using Render = std::function<bool(int16_t* out, size_t n, int64_t now_ns, int64_t play_ns)>;
  // Sink: n frames went to the device (or the file), the first at play_ns.
  using Played = std::function<void(const int16_t* pcm, size_t n, int64_t play_ns)>;

  PcmPump(PumpLoop& loop, PumpConfig config, std::unique_ptr<PcmSource> source, Samples samples, Ended ended,
          Hooks hooks);
  PcmPump(PumpLoop& loop, PumpConfig config, std::unique_ptr<PcmSink> sink, Render render, Played played, Hooks hooks);
  ~PcmPump();
  PcmPump(const PcmPump&) = delete;
  PcmPump& operator=(const PcmPump&) = delete;

  // Clocked: opens the device (with back-off) and watches it. Otherwise
  // (already open) paces it at `speed`.
  void Start(double speed = 1.0);
  void Stop();  // cancels everything and closes the device

  // Serves a clocked device now (e.g. after a flush, so the fade goes out).
  void Service();
  // Sink, offline: renders n frames now and writes them.
  void RenderNow(size_t n);
  // Sink: discards the device's queue; *unplayed gets what it held (the
  // last frames written, as far as the device's delay says) if any of it is
  // audible. False (nothing dropped) if the sink cannot or nothing audible.
  bool DropDeviceQueue(std::vector<int16_t>* unplayed);
  // Sink with a rewritable queue: takes back what is queued and not yet
  // about to play (at most the last max_frames written, and no more than
  // history_frames); *unplayed gets it (exactly the frames taken back), the
  // next frames rendered go in their place, and `played` reports them from
  // there again (after a `discontinuity`). False if nothing was taken.
  bool RewindDeviceQueue(std::vector<int16_t>* unplayed, size_t max_frames = SIZE_MAX);
  bool rewindable() const { return sink_ && sink_->rewindable(); }
  // The device failed (the pump's own errors call it too).
  void Lost(const Status& why);
  // Sink, clocked and open: stops the device while nothing plays (what it
  // holds is dropped: call it once that is silence) and stops serving it, so
  // it costs no wake-ups; the watchdog still probes it for loss. No-op for
  // sinks that cannot drop their queue.
  void Park();
  // Serves a parked sink again at once (the stream restarts with its first
  // writes). No-op if not parked.
  void Resume();
  bool parked() const { return parked_; }

  bool is_open() const;
  bool lost() const { return lost_; }
  bool ended() const { return ended_; }
  bool clocked() const;
  PcmFormat format() const;
  uint64_t xruns_total() const;
  const PumpCounters& counters() const { return counters_; }
  // Heartbeat figures: xruns_total, device_open, and the counted events
  // (xruns, device_lost, device_back, idle_wakeups_parked,
  // device_queue_drops, device_parks) once they happen.
  void Figures(std::map<std::string, int64_t>* out) const;
  PcmSource* source() { return source_.get(); }
  PcmSink* sink() { return sink_.get(); }

 private:
  void TryOpen();
  void MarkLost(const std::string& line, const std::string& why);
  void OnOpened();
  void WatchDevice();
  void Unwatch();
  void OnReady(std::span<const pollfd> fds);
  void Watchdog();
  void CheckXruns();
  void DrainSource();
  void ServeSink();
  bool WritePending();
  void StartPacing(double speed);
  void StopPacing();
  void PacedTick();
  void Burst();
  void SourceEnded(size_t missing, int64_t stamp_ns);
  void RenderBlock(size_t n, int64_t now, int64_t play_ns);
  void Close();

  PumpLoop& loop_;
  PumpConfig config_;
  std::unique_ptr<PcmSource> source_;
  std::unique_ptr<PcmSink> sink_;
  Samples samples_;
  Ended ended_fn_;
  Render render_;
  Played played_;
  Hooks hooks_;
  Backoff backoff_;

  bool started_ = false, stopped_ = false, lost_ = false, ended_ = false, parked_ = false;
  int64_t lost_since_ns_ = 0;
  PumpLoop::Id group_ = 0, pace_timer_ = 0, watchdog_ = 0, retry_ = 0, device_timer_ = 0;
  int64_t last_progress_ns_ = 0;
  bool got_data_ = false;
  int idle_wakeups_ = 0;
  uint64_t xruns_seen_ = 0;
  double speed_ = 1.0;
  int64_t pace_start_ns_ = 0;
  uint64_t paced_frames_ = 0;
  std::vector<int16_t> buf_, wide_;
  std::vector<int16_t> history_;  // sink: last frames written (mono)
  std::vector<int16_t> pending_;  // sink: the block being written (mono); a short write leaves a rest
  size_t pending_off_ = 0;
  int64_t pending_play_ns_ = 0;
  PumpCounters counters_;
  RateLimit xrun_log_;
};

}  // namespace vb::audio
