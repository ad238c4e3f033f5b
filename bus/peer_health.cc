// PeerHealth (see peer_health.h).
#include "bus/peer_health.h"

#include <algorithm>

namespace vb {

PeerRule PeerRule::FromTimeout(std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  PeerRule r;
  r.interval = std::max(interval, std::chrono::milliseconds(1));
  r.missed_beats = int(std::max<int64_t>(1, timeout.count() / r.interval.count()));
  // A timeout that is not a whole number of beats keeps its exact length.
  if (r.stale_after() != timeout) {
    r.interval = timeout;
    r.missed_beats = 1;
  }
  return r;
}

PeerHealth::Beat PeerHealth::OnBeat(int32_t pid, int64_t uptime_ms, TimePoint now) {
  Beat b = Beat::kAlive;
  if (!heard_) {
    b = Beat::kFirst;
  } else if (pid != pid_ || uptime_ms < uptime_ms_) {
    b = Beat::kRestarted;
    ++restarts_;
  } else if (stale_) {
    b = Beat::kBack;
  }
  heard_ = true;
  stale_ = false;
  pid_ = pid;
  uptime_ms_ = uptime_ms;
  last_ = now;
  return b;
}

bool PeerHealth::MarkStaleIfSilent(TimePoint now, std::chrono::milliseconds stale_after) {
  if (stale_ || !Silent(now, stale_after)) return false;
  stale_ = true;
  return true;
}

}  // namespace vb
