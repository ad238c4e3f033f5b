// PumpLoop: the event loop as a PcmPump (pcm_pump.h) sees it — a clock,
// timers, poll groups and posted work. The actor's adapter implements it over
// its bus::Loop (bus_pump_loop.h); tests implement it over a clock they
// advance by hand (tests/unit/audio_io/manual_loop.h), so pacing, watchdog
// and device recovery run without ZeroMQ, sockets or real time.
//
// Loop thread only.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace vb::audio {

class PumpLoop {
 public:
  using Id = uint64_t;  // 0 = none
  using PollFn = std::function<void(std::span<const pollfd>)>;
  virtual ~PumpLoop() = default;
  // CLOCK_MONOTONIC ns (or the test's clock).
  virtual int64_t NowNs() = 0;
  // A periodic timer (keeps its phase; missed periods are skipped, not burst).
  virtual Id Every(int64_t period_ns, std::function<void()> fn) = 0;
  virtual Id After(int64_t delay_ns, std::function<void()> fn) = 0;
  virtual void Cancel(Id timer) = 0;
  // `fn` gets the descriptors with revents when any of them is ready.
  virtual Id Watch(std::vector<pollfd> fds, PollFn fn) = 0;
  virtual void Unwatch(Id group) = 0;
  // Runs fn soon on the loop thread.
  virtual void Post(std::function<void()> fn) = 0;
  virtual bool stopped() const = 0;
};

}  // namespace vb::audio
