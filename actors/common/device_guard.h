// DeviceGuard: the life of a sound device inside an actor's loop, shared by
// capture and playback. Opens it; when it cannot be opened or fails later
// (unplugged, sound server stopped), reports it once — one log line, counter
// `device_lost`, heartbeat DEGRADED, the owner's on_lost hook — and retries
// with a doubling back-off; when it opens again, one line, `device_back`,
// healthy, on_back. The owner keeps the device itself and its poll group.
//
// Loop thread only.
#pragma once

#include <functional>
#include <string>

#include "bus/actor.h"

namespace vb::audio {

class DeviceGuard {
 public:
  struct Hooks {
    std::function<Status()> open;                       // (re)opens the device
    std::function<void()> on_open;                      // opened: join the loop, reset state
    std::function<void(const std::string& why)> on_lost;  // reported once per outage
    std::function<void(int64_t outage_ms)> on_back;
  };
  DeviceGuard(std::string what, int reopen_min_ms, int reopen_max_ms) 
      : what_(std::move(what)), min_ms_(reopen_min_ms), max_ms_(reopen_max_ms), next_ms_(reopen_min_ms) {}

  void Start(bus::Context& ctx, Hooks hooks);
  // The device failed: the owner has closed it; reopen later.
  void Lost(const Status& why);
  bool lost() const { return lost_; }

 private:
  void TryOpen();
  void MarkLost(const std::string& line, const std::string& why);

  std::string what_;
  int min_ms_, max_ms_, next_ms_;
  bus::Context* ctx_ = nullptr;
  Hooks hooks_;
  bool lost_ = false;
  bool retry_pending_ = false;
  int64_t lost_since_ns_ = 0;
};

}  // namespace vb::audio
