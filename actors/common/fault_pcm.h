// Fault-injecting fakes of PcmSource and PcmSink (pcm_io.h): devices that
// keep time by a clock they are given (the test's) and misbehave on cue, so
// the PcmPump's device-loss and recovery paths, and the actors above it, are
// tested without a sound card or a sound server.
//
//   Vanish()       the device is gone: Read/Avail/Write fail, Open fails
//                  until Return() (an unplugged card, a stopped server)
//   ShortIo(n)     at most n frames per Read/Write (0: no limit)
//   Xrun()         the next call finds an overrun (source: what was queued
//                  is lost) or an underrun (sink: the queue ran dry)
//   Stall(on)      open and without error, but no samples flow (source) or
//                  nothing is taken (sink): only a watchdog can tell
// Or a script: steps applied as the clock passes their time.
//
// The source produces a ramp (frame k has value k mod 32768 on every
// channel), so a test sees exactly what was lost; the sink keeps everything
// written. Clocked, no poll descriptors: the pump serves them from a timer.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "actors/common/pcm_io.h"

namespace vb::audio {

struct FaultStep {
  enum Kind { kVanish, kReturn, kShortIo, kXrun, kStallOn, kStallOff };
  int64_t at_ns;  // on the fake's clock
  Kind kind;
  size_t frames = 0;  // kShortIo
};

class FaultDevice {
 public:
  using Clock = std::function<int64_t()>;
  FaultDevice(PcmFormat format, Clock clock, size_t buffer_frames)
      : format_(format), clock_(std::move(clock)), buffer_frames_(buffer_frames) {}

  void Vanish() { vanished_ = true; }
  void Return() { vanished_ = false; }
  void ShortIo(size_t max_frames) { short_io_ = max_frames; }
  void Xrun() { xrun_pending_ = true; }
  void Stall(bool on) { stalled_ = on; }
  void Script(std::vector<FaultStep> steps) { script_ = std::move(steps); }

  bool vanished() const { return vanished_; }
  uint64_t opens() const { return opens_; }
  uint64_t failed_opens() const { return failed_opens_; }

 protected:
  void ApplyScript();
  // Opens unless vanished; `what` names the fake in the error.
  Status OpenDevice(const char* what);
  int64_t Frames(int64_t ns) const { return ns * int64_t(format_.sample_rate) / 1'000'000'000; }

  PcmFormat format_;
  Clock clock_;
  size_t buffer_frames_;
  bool vanished_ = false, stalled_ = false, xrun_pending_ = false, open_ = false;
  size_t short_io_ = 0;
  uint64_t xruns_ = 0, opens_ = 0, failed_opens_ = 0;
  std::vector<FaultStep> script_;
  size_t next_step_ = 0;
};

class FaultSource : public PcmSource, public FaultDevice {
 public:
  FaultSource(PcmFormat format, Clock clock, size_t buffer_frames = 1600)
      : FaultDevice(format, std::move(clock), buffer_frames) {}
  Status Open() override;
  void Close() override { open_ = false; }
  bool is_open() const override { return open_; }
  PcmFormat format() const override { return format_; }
  Status Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) override;
  bool clocked() const override { return true; }
  uint64_t xruns() const override { return xruns_; }
  // Frames produced by the device clock since the first open (ramp index).
  uint64_t produced() const { return produced_; }

 private:
  void Advance();
  int64_t anchor_ns_ = 0;  // clock of `produced_` frames
  uint64_t produced_ = 0;  // ramp index of the next frame the device makes
  uint64_t queued_ = 0;    // made and not yet read
};

class FaultSink : public PcmSink, public FaultDevice {
 public:
  FaultSink(PcmFormat format, Clock clock, size_t buffer_frames = 640)
      : FaultDevice(format, std::move(clock), buffer_frames) {}
  Status Open() override;
  void Close() override { open_ = false; }
  bool is_open() const override { return open_; }
  PcmFormat format() const override { return format_; }
  Status Avail(size_t* frames, int64_t* delay_frames = nullptr) override;
  Status Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) override;
  Status Drop() override;
  // A rewritable queue (as PulseAudio's): Rewind() takes back what is queued
  // beyond the first margin_frames, and written() loses it.
  void EnableRewind(size_t margin_frames) { rewind_margin_ = int64_t(margin_frames); }
  Status Rewind(size_t max_frames, size_t* frames) override;
  bool rewindable() const override { return rewind_margin_ >= 0; }
  bool clocked() const override { return true; }
  uint64_t xruns() const override { return xruns_; }
  // Everything written, interleaved, in order (what a rewind took back is
  // gone: what plays).
  const std::vector<int16_t>& written() const { return written_; }
  uint64_t queued() const { return queued_; }

 private:
  void Advance();
  int64_t anchor_ns_ = 0;
  uint64_t queued_ = 0;  // written and not yet played
  bool running_ = false;
  int64_t rewind_margin_ = -1;
  std::vector<int16_t> written_;
};

}  // namespace vb::audio
