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
  c.backoff = bus::Backoff(policy_.initial, policy_.max, policy_.healthy_reset);
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

void Supervisor::Start(ChildStatus& c, TimePoint now) {
  c.pid = ops_.Spawn(c.spec);
  c.started = now;
  c.last_heartbeat = now;
  if (c.pid < 0) {
    // Could not even start (binary missing?): treat like a crash, with back-off.
    Emit(SupervisorEvent::kSpawnFailed, c);
    Ms d = c.backoff.Failed(Ms(0));
    c.state = ChildState::kWaitingRestart;
    c.restart_at = now + d;
    Emit(SupervisorEvent::kRestartScheduled, c, 0, d);
    return;
  }
  c.state = c.spec.heartbeats ? ChildState::kStarting : ChildState::kUp;
  Emit(SupervisorEvent::kStarted, c);
}

void Supervisor::StartAll(TimePoint now) {
  for (auto& c : children_)
    if (c.state == ChildState::kPending) Start(c, now);
}

void Supervisor::OnExit(int pid, int code, TimePoint now) {
  for (auto& c : children_) {
    if (c.pid != pid) continue;
    c.pid = -1;
    c.last_exit = code;
    if (stopping_ || c.state == ChildState::kStopping) {
      c.state = ChildState::kStopped;
      Emit(SupervisorEvent::kStopped, c, code);
      return;
    }
    Emit(SupervisorEvent::kExited, c, code);
    if (code == kExitConfig) {
      c.state = ChildState::kConfigError;
      Emit(SupervisorEvent::kConfigError, c, code);
      return;
    }
    Ms d = c.backoff.Failed(std::chrono::duration_cast<Ms>(now - c.started));
    c.state = ChildState::kWaitingRestart;
    c.restart_at = now + d;
    Emit(SupervisorEvent::kRestartScheduled, c, code, d);
    return;
  }
}

void Supervisor::OnHeartbeat(const std::string& name, TimePoint now) {
  ChildStatus* c = Find(name);
  if (!c || c->pid < 0) return;
  c->last_heartbeat = now;
  if (c->state == ChildState::kStarting) {
    c->state = ChildState::kUp;
    Emit(SupervisorEvent::kUp, *c);
  }
}

void Supervisor::Tick(TimePoint now) {
  if (stopping_) {
    if (now >= kill_at_)
      for (auto& c : children_)
        if (c.pid > 0) ops_.Signal(c.pid, SIGKILL);
    return;
  }
  for (auto& c : children_) {
    if (c.state == ChildState::kWaitingRestart && now >= c.restart_at) {
      ++c.restarts;
      Start(c, now);
    } else if (c.spec.heartbeats && c.pid > 0 && now - c.last_heartbeat >= policy_.heartbeat_timeout &&
               (c.state == ChildState::kUp || now - c.started >= 3 * policy_.heartbeat_timeout)) {
      // Alive but silent (hung, or never came up): kill it; OnExit restarts it.
      Emit(SupervisorEvent::kHung, c);
      ops_.Signal(c.pid, SIGKILL);
      c.last_heartbeat = now;  // one kill per timeout
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
  for (const auto& c : children_) {
    if (c.state == ChildState::kWaitingRestart) consider(c.restart_at);
    if (c.spec.heartbeats && c.pid > 0) consider(c.last_heartbeat + policy_.heartbeat_timeout);
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
