// Launcher policy (see supervisor.h).
#include "tools/vb/supervisor.h"

#include <signal.h>

#include "bus/status.h"

namespace vb::launcher {

const char* ChildStateName(ChildState s) {
  switch (s) {
    case ChildState::kPending: return "pending";
    case ChildState::kStarting: return "starting";
    case ChildState::kUp: return "up";
    case ChildState::kWaitingRestart: return "waiting to restart";
    case ChildState::kConfigError: return "config error";
    case ChildState::kStopping: return "stopping";
    case ChildState::kStopped: return "stopped";
  }
  return "?";
}

Supervisor::Supervisor(ProcessOps& ops, SupervisorPolicy policy, std::function<void(const SupervisorEvent&)> on_event)
    : ops_(ops), policy_(policy), on_event_(std::move(on_event)) {}

void Supervisor::Add(ChildSpec spec) {
  ChildStatus c;
  c.spec = std::move(spec);
  // Only crash loops back off, and a run longer than crash_window ends one
  // (OnExit resets it), so the back-off itself never needs a time-based reset.
  c.backoff = Backoff(policy_.initial, policy_.max, Backoff::kNeverReset);
  // Silence is judged by the shared peer-health rule (3 missed 1 Hz beats
  // by default); restarts the launcher sees itself, through waitpid.
  c.peer = PeerHealth(PeerRule::FromTimeout(Ms(1000), policy_.heartbeat_timeout));
  children_.push_back(std::move(c));
}

ChildStatus* Supervisor::Find(const std::string& name) {
  for (auto& c : children_)
    if (c.spec.name == name) return &c;
  return nullptr;
}

void Supervisor::Emit(SupervisorEvent::Kind kind, const ChildStatus& c, int code, Ms delay) {
  if (on_event_) on_event_(SupervisorEvent{kind, c.spec.name, c.pid, code, delay});
}

void Supervisor::EmitBus(SupervisorEvent::Kind kind) {
  if (on_event_) on_event_(SupervisorEvent{kind, "bus", -1, 0, Ms(0)});
}

bool Supervisor::BusVerified(TimePoint now) const {
  return !broker_down_ && echo_seen_ && now - last_echo_ <= policy_.echo_timeout;
}

void Supervisor::NoteBusState(TimePoint now) {
  bool verified = BusVerified(now);
  if (verified == reported_verified_) return;
  reported_verified_ = verified;
  // The first verification at start-up is no news; a loss and its end are.
  if (!verified) EmitBus(SupervisorEvent::kBusLost);
  else if (ever_lost_) EmitBus(SupervisorEvent::kBusBack);
  if (!verified) ever_lost_ = true;
}

void Supervisor::Start(ChildStatus& c, TimePoint now) {
  c.pid = ops_.Spawn(c.spec);
  c.started = now;
  c.peer.Expect(now);
  c.killed_by_us = false;
  c.ever_up = !c.spec.heartbeats;
  if (c.pid < 0) {
    // Could not even start (fork failed, binary gone): retrying at once
    // cannot help, so this always backs off.
    Emit(SupervisorEvent::kSpawnFailed, c);
    ++c.quick_deaths;
    Ms d = c.backoff.Failed(Ms(0));
    c.state = ChildState::kWaitingRestart;
    c.restart_at = now + d;
    Emit(SupervisorEvent::kRestartScheduled, c, 0, d);
    return;
  }
  if (c.spec.is_broker) broker_down_ = false;  // up, but verified only by the next echo
  c.state = c.spec.heartbeats ? ChildState::kStarting : ChildState::kUp;
  Emit(SupervisorEvent::kStarted, c);
}

void Supervisor::StartAll(TimePoint now) {
  if (!any_started_) {
    any_started_ = true;
    first_start_ = now;
  }
  for (auto& c : children_)
    if (c.state == ChildState::kPending) Start(c, now);
}

void Supervisor::ScheduleRestart(ChildStatus& c, TimePoint now, Ms delay, int code) {
  Emit(SupervisorEvent::kRestartScheduled, c, code, delay);
  if (delay.count() == 0) {
    ++c.restarts;
    Start(c, now);
    return;
  }
  c.state = ChildState::kWaitingRestart;
  c.restart_at = now + delay;
}

void Supervisor::OnExit(int pid, int code, TimePoint now) {
  for (auto& c : children_) {
    if (c.pid != pid) continue;
    c.pid = -1;
    c.last_exit = code;
    if (c.spec.is_broker) {
      // Every heartbeat is lost until a new broker runs and our echo is back.
      broker_down_ = true;
      echo_seen_ = false;
    }
    if (stopping_ || c.state == ChildState::kStopping) {
      c.state = ChildState::kStopped;
      Emit(SupervisorEvent::kStopped, c, code);
      return;
    }
    Emit(SupervisorEvent::kExited, c, code);
    NoteBusState(now);
    if (code == kExitConfig) {
      c.state = ChildState::kConfigError;
      Emit(SupervisorEvent::kConfigError, c, code);
      return;
    }
    const bool outside_kill = code == -SIGKILL && !c.killed_by_us;
    const bool quick = now - c.started < policy_.crash_window || (c.killed_by_us && !c.ever_up);
    Ms delay(0);
    if (outside_kill || !quick) {
      c.quick_deaths = 0;
      c.backoff.Reset();
    } else if (++c.quick_deaths > 1) {
      delay = c.backoff.Failed(Ms(0));  // a crash loop: the second quick death on waits
    }
    ScheduleRestart(c, now, delay, code);
    return;
  }
}

void Supervisor::OnHeartbeat(const std::string& name, TimePoint now, int pid) {
  ChildStatus* c = Find(name);
  if (!c || c->pid < 0 || (pid != 0 && pid != c->pid)) return;
  c->peer.OnBeat(c->pid, 0, now);
  c->ever_up = true;
  if (c->state == ChildState::kStarting) {
    c->state = ChildState::kUp;
    Emit(SupervisorEvent::kUp, *c);
  }
}

void Supervisor::OnBusEcho(TimePoint now) {
  if (!BusVerified(now)) bus_ok_since_ = now;  // the bus is back: silence counts from here
  echo_seen_ = true;
  echo_ever_ = true;
  last_echo_ = now;
  NoteBusState(now);
}

TimePoint Supervisor::SilenceDeadline(const ChildStatus& c) const {
  // Silence counts from the later of the last beat and the bus's return.
  if (c.ever_up) return std::max(c.peer.StaleAt(), bus_ok_since_ + c.peer.rule().stale_after());
  return std::max(c.peer.last(), bus_ok_since_) + policy_.startup_timeout;
}

void Supervisor::Tick(TimePoint now) {
  if (stopping_) {
    if (now >= kill_at_)
      for (auto& c : children_)
        if (c.pid > 0) ops_.Signal(c.pid, SIGKILL);
    return;
  }
  NoteBusState(now);
  if (!echo_ever_ && !warned_no_echo_ && any_started_ && now >= first_start_ + policy_.startup_timeout) {
    warned_no_echo_ = true;  // our own bus link is broken: say why nobody is judged
    EmitBus(SupervisorEvent::kBusLost);
  }
  const bool verified = BusVerified(now);
  for (auto& c : children_) {
    if (c.state == ChildState::kWaitingRestart && now >= c.restart_at) {
      ++c.restarts;
      Start(c, now);
    } else if (verified && c.spec.heartbeats && c.pid > 0 && !c.killed_by_us &&
               (c.state == ChildState::kStarting || c.state == ChildState::kUp) && now >= SilenceDeadline(c)) {
      // Alive but silent while the bus demonstrably works: hung. Kill it;
      // OnExit restarts it.
      Emit(SupervisorEvent::kHung, c);
      ops_.Signal(c.pid, SIGKILL);
      c.killed_by_us = true;
    }
  }
}

std::optional<TimePoint> Supervisor::NextDeadline() const {
  std::optional<TimePoint> next;
  auto consider = [&](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  if (stopping_) {
    if (!AllStopped()) consider(kill_at_);
    return next;
  }
  for (const auto& c : children_)
    if (c.state == ChildState::kWaitingRestart) consider(c.restart_at);
  if (!echo_ever_ && !warned_no_echo_ && any_started_) consider(first_start_ + policy_.startup_timeout);
  if (!broker_down_ && echo_seen_) {
    // Silence is judged only while the echo is fresh; a deadline past that
    // waits for the next echo, which reschedules.
    const TimePoint fresh_until = last_echo_ + policy_.echo_timeout;
    for (const auto& c : children_) {
      if (!c.spec.heartbeats || c.pid <= 0 || c.killed_by_us) continue;
      if (c.state != ChildState::kStarting && c.state != ChildState::kUp) continue;
      TimePoint t = SilenceDeadline(c);
      if (t <= fresh_until) consider(t);
    }
    if (reported_verified_) consider(fresh_until + Ms(1));  // to report the loss
  }
  return next;
}

void Supervisor::StopAll(TimePoint now) {
  if (stopping_) return;
  stopping_ = true;
  kill_at_ = now + policy_.stop_grace;
  // Newest first: actors before the broker they talk through.
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    if (it->pid > 0) {
      it->state = ChildState::kStopping;
      ops_.Signal(it->pid, SIGTERM);
    } else if (it->state != ChildState::kConfigError) {
      it->state = ChildState::kStopped;
    }
  }
}

bool Supervisor::AllStopped() const {
  for (const auto& c : children_)
    if (c.pid > 0) return false;
  return true;
}

}  // namespace vb::launcher
