// Supervisor: the launcher's policy, apart from processes and clocks.
// It keeps each child (broker, simulator, actors) running: starts them in
// order, restarts a crashed one with back-off (1 s doubling to 32 s, reset
// after a healthy minute), never restarts one that exited with 78 (config
// error), kills and restarts an actor whose heartbeats stop (3 missed), and
// stops everything in reverse order on request.
//
// Processes go through ProcessOps and events come in with the time, so the
// whole policy runs in unit tests with fakes. Not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bus/backoff.h"

namespace vb::launcher {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Ms = std::chrono::milliseconds;

struct ChildSpec {
  std::string name;               // instance name, as in heartbeats
  std::vector<std::string> argv;  // argv[0] is the program path
  bool heartbeats = true;         // actors do; broker and simulator do not
};

class ProcessOps {
 public:
  virtual ~ProcessOps() = default;
  // Starts the child; returns its pid, or -1 (and errno) if it could not start.
  virtual int Spawn(const ChildSpec& spec) = 0;
  virtual void Signal(int pid, int signal) = 0;
};

enum class ChildState { kPending, kStarting, kUp, kWaitingRestart, kConfigError, kStopping, kStopped };
const char* ChildStateName(ChildState s);

struct ChildStatus {
  ChildSpec spec;
  ChildState state = ChildState::kPending;
  int pid = -1;
  TimePoint started{}, last_heartbeat{}, restart_at{};
  int restarts = 0;
  int last_exit = 0;  // exit code, or -signal
  bus::Backoff backoff;
};

// What happened, for the display (and tests).
struct SupervisorEvent {
  enum Kind { kStarted, kUp, kExited, kRestartScheduled, kConfigError, kHung, kSpawnFailed, kStopped } kind;
  std::string name;
  int pid = -1;
  int code = 0;       // exit code or -signal (kExited, kConfigError)
  Ms delay{0};        // kRestartScheduled
};

struct SupervisorPolicy {
  Ms initial{1000}, max{32000}, healthy_reset{60000};
  Ms heartbeat_timeout{3000};  // 3 missed 1 Hz heartbeats
  Ms stop_grace{2000};         // SIGTERM → SIGKILL
};

class Supervisor {
 public:
  Supervisor(ProcessOps& ops, SupervisorPolicy policy, std::function<void(const SupervisorEvent&)> on_event);

  void Add(ChildSpec spec);
  void StartAll(TimePoint now);
  // A child exited (from waitpid): code ≥ 0 exit status, < 0 killed by signal.
  void OnExit(int pid, int code, TimePoint now);
  void OnHeartbeat(const std::string& name, TimePoint now);
  // Due restarts, heartbeat timeouts, stop escalation.
  void Tick(TimePoint now);
  // When Tick() next has something to do.
  std::optional<TimePoint> NextDeadline() const;
  // SIGTERM to every child, newest first; SIGKILL after the grace period.
  void StopAll(TimePoint now);
  bool stopping() const { return stopping_; }
  bool AllStopped() const;
  const std::vector<ChildStatus>& children() const { return children_; }
  ChildStatus* Find(const std::string& name);

 private:
  void Start(ChildStatus& c, TimePoint now);
  void Emit(SupervisorEvent::Kind kind, const ChildStatus& c, int code = 0, Ms delay = Ms(0));

  ProcessOps& ops_;
  SupervisorPolicy policy_;
  std::function<void(const SupervisorEvent&)> on_event_;
  std::vector<ChildStatus> children_;
  bool stopping_ = false;
  TimePoint kill_at_{};
};

}  // namespace vb::launcher
