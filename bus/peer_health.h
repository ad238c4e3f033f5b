// PeerHealth: the one rule by which voicebus judges another process from its
// heartbeats (czmq's Paranoid Pirate): a peer is stale once it has missed
// `missed_beats` heartbeat intervals in a row (silent for longer than
// missed_beats × interval), and a heartbeat from a new process under the
// same name — another pid, or an uptime that went backwards (a container
// restarts its actor as pid 1 again) — is a restart. The launcher (kill a
// hung actor), vb-control (an actor is down), the dashboard (STALE, the
// actor event log) and `vb status` all judge by it.
//
// Part of vb_base (no ZeroMQ). Times are passed in: unit-testable without
// clocks. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace vb {

struct PeerRule {
  std::chrono::milliseconds interval{1000};  // the heartbeat period (bus.heartbeat_ms)
  int missed_beats = 3;
  // Silent longer than this = stale.
  std::chrono::milliseconds stale_after() const { return interval * missed_beats; }
  // A rule from a configured silence (launcher.heartbeat_timeout_ms,
  // control.health.timeout_ms): the whole beats it covers.
  static PeerRule FromTimeout(std::chrono::milliseconds interval, std::chrono::milliseconds timeout);
};

class PeerHealth {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  // What a heartbeat says about the peer.
  enum class Beat {
    kFirst,      // never heard of before
    kAlive,      // the same process, beating on
    kRestarted,  // a new process under the same name (pid changed or uptime went back)
    kBack,       // the same process beats again after it was stale
  };

  explicit PeerHealth(PeerRule rule = {}) : rule_(rule) {}

  // A heartbeat from the peer: pid and uptime_ms as it reports them.
  Beat OnBeat(int32_t pid, int64_t uptime_ms, TimePoint now);
  // Counts as a beat for timing only (e.g. watching starts: the peer gets
  // the whole silence allowance before it is judged).
  void Expect(TimePoint now) { last_ = now; }

  // Silent for longer than the rule (or than `stale_after`, when a caller
  // needs a shorter allowance for a while, e.g. vb-control mid-turn).
  bool Silent(TimePoint now) const { return Silent(now, rule_.stale_after()); }
  bool Silent(TimePoint now, std::chrono::milliseconds stale_after) const { return now - last_ > stale_after; }
  // True once, when the peer turns stale (Silent and not yet marked).
  bool MarkStaleIfSilent(TimePoint now) { return MarkStaleIfSilent(now, rule_.stale_after()); }
  bool MarkStaleIfSilent(TimePoint now, std::chrono::milliseconds stale_after);
  // When it turns stale if nothing comes.
  TimePoint StaleAt() const { return last_ + rule_.stale_after(); }

  bool stale() const { return stale_; }
  bool heard() const { return heard_; }
  TimePoint last() const { return last_; }
  int32_t pid() const { return pid_; }
  int64_t uptime_ms() const { return uptime_ms_; }
  uint64_t restarts() const { return restarts_; }
  const PeerRule& rule() const { return rule_; }

 private:
  PeerRule rule_;
  TimePoint last_{};
  bool heard_ = false, stale_ = false;
  int32_t pid_ = 0;
  int64_t uptime_ms_ = 0;
  uint64_t restarts_ = 0;
};

}  // namespace vb
