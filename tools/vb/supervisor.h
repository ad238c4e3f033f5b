// Supervisor: the launcher's policy, apart from processes and clocks.
// It keeps each child (broker, simulator, actors) running: starts them in
// order, restarts a crashed one, never restarts one that exited with 78
// (config error), kills and restarts an actor whose heartbeats stop, and
// stops everything in reverse order on request.
//
// Restarts. A crash costs the user a deaf or mute assistant, so a child that
// dies is restarted at once. Back-off (1 s doubling to 32 s, the shared
// vb::Backoff) applies only to a crash loop: the second and later deaths in
// a row that each came within `crash_window` of the child's start (it cannot
// get going: bad device, port taken, crash at start). A kill -9 from outside
// (SIGKILL that we did not send: an operator, the OOM killer, a chaos test)
// says nothing about the child, so it never counts toward a crash loop. The
// broker holds no state and, being a SIGKILL target like any other, is
// restarted at once every time it is killed.
//
// Liveness without blaming the broker. Heartbeats travel through the broker,
// so an actor's silence is evidence against the actor only while the bus is
// known to carry heartbeats. The launcher publishes its own heartbeat and
// hears it come back (OnBusEcho); the bus is "verified" while that echo is
// fresh and the broker we run is up. Silence is counted only from the later
// of the actor's last heartbeat and the moment the bus was last verified
// again (bus_ok_since), so during a broker outage, a frozen broker, or a
// broker restart nobody is killed, and after it every actor has the whole
// heartbeat timeout to reconnect and beat (actors beat again the moment they
// see a subscriber). If the echo never comes (our own bus link is broken),
// silence is never held against anyone; the launcher says so.
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
#include "bus/peer_health.h"

namespace vb::launcher {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Ms = std::chrono::milliseconds;

struct ChildSpec {
  std::string name;               // instance name, as in heartbeats
  std::vector<std::string> argv;  // argv[0] is the program path
  bool heartbeats = true;         // actors do; broker and simulator do not
  std::string kind;               // binary role (vb-KIND): decides which secrets it may see
  bool is_broker = false;         // its death takes the bus (and every heartbeat) down
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
  TimePoint started{}, restart_at{};
  int restarts = 0;
  int last_exit = 0;          // exit code, or -signal
  int quick_deaths = 0;       // deaths in a row within crash_window of start
  bool killed_by_us = false;  // we sent SIGKILL (hung): its death is its fault
  bool ever_up = false;       // heartbeated since its last start
  Backoff backoff;
  PeerHealth peer;  // its heartbeats since its last start
};

// What happened, for the display (and tests).
struct SupervisorEvent {
  enum Kind {
    kStarted,
    kUp,
    kExited,
    kRestartScheduled,
    kConfigError,
    kHung,
    kSpawnFailed,
    kStopped,
    kBusLost,  // the bus stopped carrying our own heartbeat (or the broker died): silence is not judged
    kBusBack,  // it carries it again: actors get a full heartbeat timeout from now
  } kind;
  std::string name;
  int pid = -1;
  int code = 0;  // exit code or -signal (kExited, kConfigError)
  Ms delay{0};   // kRestartScheduled
};

struct SupervisorPolicy {
  Ms initial{1000}, max{32000};  // crash-loop back-off
  Ms crash_window{3000};         // a death this soon after start is part of a crash loop
  Ms heartbeat_timeout{3000};    // 3 missed 1 Hz heartbeats, counted while the bus is verified
  Ms startup_timeout{9000};      // a started actor must beat within this (bus verified)
  Ms echo_timeout{1500};         // our own echo older than this: the bus is not verified
  Ms stop_grace{2000};           // SIGTERM → SIGKILL
};

class Supervisor {
 public:
  Supervisor(ProcessOps& ops, SupervisorPolicy policy, std::function<void(const SupervisorEvent&)> on_event);

  void Add(ChildSpec spec);
  void StartAll(TimePoint now);
  // A child exited (from waitpid): code ≥ 0 exit status, < 0 killed by signal.
  void OnExit(int pid, int code, TimePoint now);
  // A heartbeat from `name`; with `pid` ≠ 0, one from an earlier incarnation
  // (still in flight when it was restarted) is ignored.
  void OnHeartbeat(const std::string& name, TimePoint now, int pid = 0);
  // The launcher's own heartbeat came back through the broker.
  void OnBusEcho(TimePoint now);
  // Due restarts, heartbeat timeouts, stop escalation.
  void Tick(TimePoint now);
  // When Tick() next has something to do.
  std::optional<TimePoint> NextDeadline() const;
  // SIGTERM to every child, newest first; SIGKILL after the grace period.
  void StopAll(TimePoint now);
  bool stopping() const { return stopping_; }
  bool AllStopped() const;
  // True while heartbeats are known to get through (see the file comment).
  bool BusVerified(TimePoint now) const;
  const std::vector<ChildStatus>& children() const { return children_; }
  ChildStatus* Find(const std::string& name);

 private:
  void Start(ChildStatus& c, TimePoint now);
  void ScheduleRestart(ChildStatus& c, TimePoint now, Ms delay, int code);
  // When an actor's silence has lasted too long (meaningful only while the bus is verified).
  TimePoint SilenceDeadline(const ChildStatus& c) const;
  void NoteBusState(TimePoint now);
  void Emit(SupervisorEvent::Kind kind, const ChildStatus& c, int code = 0, Ms delay = Ms(0));
  void EmitBus(SupervisorEvent::Kind kind);

  ProcessOps& ops_;
  SupervisorPolicy policy_;
  std::function<void(const SupervisorEvent&)> on_event_;
  std::vector<ChildStatus> children_;
  bool stopping_ = false;
  TimePoint kill_at_{};
  // Bus evidence: our own echo, and whether the broker we run is up.
  bool echo_seen_ = false;  // an echo since the bus was last known broken
  TimePoint last_echo_{};
  TimePoint bus_ok_since_{};  // silence before this is not the actors' fault
  bool broker_down_ = false;
  bool reported_verified_ = false;  // last state shown (kBusLost/kBusBack)
  bool ever_lost_ = false;
  bool echo_ever_ = false;  // any echo at all since start
  bool warned_no_echo_ = false;
  bool any_started_ = false;
  TimePoint first_start_{};
};

}  // namespace vb::launcher
