// Launcher: runs the Supervisor with real processes on an event loop.
// Children are forked into their own process group (so a Ctrl-C at the
// terminal reaches only `vb`, which then stops them in order), exits arrive
// through a SIGCHLD signalfd. The simulator, when configured, is started
// first on a free loopback port; actors start once it has printed that it
// listens, and see the port as ${VB_SIM_PORT}.
//
// The bus never runs on the caller's loop. Heartbeats are received (and the
// launcher's own heartbeat published and heard back, the Supervisor's
// evidence that the bus works) by a BusWatch thread with its own ZeroMQ
// context; it hands the latest beat per known child to the caller's loop,
// coalesced into one posted callback. So whatever the bus does — floods,
// malformed frames, a frozen broker — the caller's loop keeps serving
// signals, child exits and supervision timers, each with bounded work per
// wake-up, and `vb run` answers SIGTERM.
//
// Children see only the secrets they need: COZE_API_TOKEN reaches vb-session
// alone, VB_GATEWAY_TOKENS vb-gateway alone (see ChildEnvironment).
//
// Threading: construct, use and destroy on the caller's loop thread; the
// caller must block SIGINT/SIGTERM before constructing (the BusWatch thread
// inherits the mask, so signals reach only the caller's signalfd).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/actor_main.h"
#include "bus/loop.h"
#include "bus/node.h"
#include "tools/vb/supervisor.h"

namespace vb::launcher {

// The `launcher` config section.
struct LauncherConfig {
  std::vector<std::string> actors;  // "name" or "name:kind"; after LoadLaunchConfig also KIND@DEVICE:KIND
  bool broker = true;
  // Issue 16: hub and satellites. all = everything on this host (the
  // satellites' own buses too); hub = broker, launcher.actors and the
  // actors of devices that are not satellites; satellite = the bus of
  // `device`'s host (vb-broker --satellite) and that device's actors.
  std::string role = "all";
  std::string device;                // role satellite: which one
  std::vector<std::string> bridges;  // devices whose bus this host runs (vb-broker --satellite D)
  bool simulator = false;
  std::vector<std::string> simulator_args;
  std::string log_dir;  // empty: children inherit our stderr
  int restart_initial_ms = 1000, restart_max_ms = 32000, crash_window_ms = 3000, heartbeat_timeout_ms = 3000;
  // NAME → the program that runs that actor instead of BinDir()/vb-KIND
  // (the actor section's `command` key, issue 15): any language, the same
  // supervision. Filled by LoadLaunchConfig; argv[0] resolved (PATH, or the
  // config's folder for a relative path).
  std::map<std::string, std::vector<std::string>> commands;
  // Declares the keys; also checks that every actor's kind has a binary
  // (BinDir()/vb-KIND) and that instance names are unique.
  void Declare(config::Section& s);
};

struct ActorEntry {
  std::string name, kind;
};
std::vector<ActorEntry> ParseActors(const std::vector<std::string>& list);

// The argv that runs actor `a`: its `command` if it has one, else
// BinDir()/vb-KIND; then --config PATH --name NAME.
std::vector<std::string> ActorArgv(const LauncherConfig& c, const ActorEntry& a, const std::string& config_path);

// Loads a config file: bus, devices and launcher sections plus a check that
// every other top-level section is a listed actor. Returns a config Status
// with every error (file:line:col: key). `role`/`device` (`vb run --role`,
// `--device`) override launcher.role/device; the actors of the role's
// devices (devices.actors × devices.list) are added to launcher->actors,
// and on a satellite `bus` is its host's own bus.
Status LoadLaunchConfig(const std::string& path, bus::BusConfig* bus, LauncherConfig* launcher,
                        const std::string& role = "", const std::string& device = "");

// Directory of the running executable (where the other binaries are).
std::string BinDir();

// A TCP port free on 127.0.0.1 right now (0 if none).
int FreeLoopbackPort();

// The environment for a child of binary role `kind`: `env` (NAME=VALUE
// entries) without the secrets that kind does not need.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& env, const std::string& kind);

// The last config error an actor wrote to its log (the lines from its last
// "config error" on), at most `max_lines` lines; empty if none.
std::string LastConfigError(const std::string& log_path, size_t max_lines = 12);

class BusWatch;

class Launcher {
 public:
  using Display = std::function<void(const std::string& line)>;
  // `node` is the caller's bus node; the launcher does not subscribe on it
  // (see the file comment) and uses its bus config for its own thread.
  Launcher(bus::Loop& loop, bus::Node& node, std::string config_path, LauncherConfig config, Display display);
  ~Launcher();

  // Starts the broker (and simulator) and then the actors. `ready` runs once
  // every child has been spawned (after the simulator listens).
  Status Start(std::function<void()> ready = nullptr);
  // Orderly stop; `done` runs when every child has exited.
  void Stop(std::function<void()> done);
  Supervisor& supervisor() { return *supervisor_; }
  int sim_port() const { return sim_port_; }
  // True if any actor ended with a config error (the run cannot succeed).
  bool config_failed() const { return config_failed_; }
  // Hears every supervisor event after it is displayed (e.g. `vb run`
  // counts first heartbeats for systemd's READY=1).
  void OnEvent(std::function<void(const SupervisorEvent&)> observer) { observer_ = std::move(observer); }

 private:
  class Ops;
  void OnSignal();
  void OnBusNews();
  void Reschedule();
  void StartActors();
  void OnSimOutput();
  void Show(const SupervisorEvent& e);
  void Print(const SupervisorEvent& e);

  bus::Loop& loop_;
  std::string config_path_;
  LauncherConfig config_;
  Display display_;
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<BusWatch> watch_;
  int sigchld_fd_ = -1;
  bus::Loop::TimerId tick_timer_ = 0;
  int sim_port_ = 0;
  int sim_out_fd_ = -1;
  bus::Loop::GroupId sim_out_group_ = 0;
  std::string sim_out_;
  bool actors_started_ = false;
  bool config_failed_ = false;
  std::function<void()> ready_, done_;
  std::function<void(const SupervisorEvent&)> observer_;
};

}  // namespace vb::launcher
