// Actor: the shape every voicebus process shares. A part subclasses Actor
// with its logic (plain classes underneath that know nothing of ZeroMQ) and
// the generated main() runs it:
//
//   DeclareConfig(section)   declare keys, defaults and docs; values filled in
//   Configure(ctx)           open devices, advertise topics, subscribe
//   Activate(ctx)            start publishing (publishes before are dropped)
//   … the event loop serves sockets, fds and timers …
//   Deactivate(ctx)          on SIGTERM/SIGINT or Context::Stop()
//
// The runtime publishes a heartbeat every bus.heartbeat_ms with the actor's
// state, counters, drops per publisher, handler timing percentiles, loop
// wake-ups, CPU and memory; OnHeartbeat() runs first and adds the actor's own
// figures (ctx.Set/Count, or hb.extra and hb.detail directly), and is
// the place to republish state topics for late joiners.
//
// Everything runs on the loop's thread. Handlers must not throw (a throw is
// caught, counted as an error, and logged).
#pragma once

#include <zmq.hpp>

#include <map>
#include <memory>
#include <string>

#include "bus/config.h"
#include "bus/heap.h"
#include "bus/loop.h"
#include "bus/node.h"
#include "bus/status.h"
#include "vb/v1/health.pb.h"

namespace vb::bus {

class Context {
 public:
  Context(std::string kind, std::string name, Loop& loop, Node& node);

  Loop& loop() { return loop_; }
  Node& bus() { return node_; }
  const std::string& kind() const { return kind_; }
  const std::string& name() const { return name_; }
  const std::string& device() const { return node_.device(); }
  // Every device of the config (devices.names; the first is the default).
  const std::vector<std::string>& devices() const { return devices_; }
  void SetDevices(std::vector<std::string> names) { devices_ = std::move(names); }

  // Actor-specific counters shown in the heartbeat's `extra` map.
  void Count(const std::string& counter, int64_t delta = 1) { extra_[counter] += delta; }
  void Set(const std::string& counter, int64_t value) { extra_[counter] = value; }
  int64_t Get(const std::string& counter) const;
  void CountError() { ++errors_; }

  // DEGRADED with a reason (e.g. "sound card gone") until Healthy().
  void Degraded(std::string detail) { detail_ = std::move(detail); }
  void Healthy() { detail_.clear(); }

  // Ends the loop; the process exits with `code` after Deactivate().
  void Stop(int code = 0);
  int exit_code() const { return exit_code_; }

  // Internal: the runtime fills and publishes heartbeats.
  void FillHeartbeat(v1::Heartbeat* hb, v1::Heartbeat::State state);

 private:
  std::string kind_, name_;
  std::vector<std::string> devices_;
  Loop& loop_;
  Node& node_;
  std::map<std::string, int64_t> extra_;
  uint64_t errors_ = 0;
  std::string detail_;
  int exit_code_ = 0;
  int64_t start_ns_;
  int64_t last_cpu_ns_ = 0, last_wall_ns_ = 0;
  HeapTrimmer heap_;  // heap given back after a burst (heartbeat extra heap_trims)
};

class Actor {
 public:
  virtual ~Actor() = default;
  virtual void DeclareConfig(config::Section& section) = 0;
  virtual Status Configure(Context& ctx) = 0;
  virtual Status Activate(Context& ctx) { return Status::Ok(); }
  virtual void Deactivate(Context& ctx) {}
  virtual void OnHeartbeat(Context& ctx, v1::Heartbeat& hb) {}
};

// Runs an actor inside this process on an existing context (tests host
// several actors over inproc://; the generated main() uses it too).
class ActorHost {
 public:
  ActorHost(zmq::context_t& zctx, std::unique_ptr<Actor> actor, std::string kind, std::string name, std::string device,
            BusConfig bus);
  // Configures from `section` (already declared by the caller or not).
  Status Start(config::Section& section);
  // Blocks until stopped (signal, Context::Stop, or Loop::Stop from another thread).
  int Run();
  Loop& loop() { return loop_; }
  Node& node() { return node_; }
  Context& context() { return ctx_; }
  Actor& actor() { return *actor_; }

 private:
  void Heartbeat(v1::Heartbeat::State state);
  Loop loop_;
  Node node_;
  Context ctx_;
  std::unique_ptr<Actor> actor_;
  Publisher<v1::Heartbeat> heartbeat_;
  int heartbeat_ms_;
};

}  // namespace vb::bus
