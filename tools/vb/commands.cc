// `vb` subcommands other than demo (see commands.h).
#include "tools/vb/commands.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

#include "bus/actor_main.h"
#include "bus/devices.h"
#include "bus/peer_health.h"
#include "bus/signals.h"
#include "tools/vb/dialog_view.h"
#include "tools/vb/first_run.h"
#include "tools/vb/help.h"
#include "tools/vb/launcher.h"
#include "tools/vb/sd_notify.h"

namespace vb::cli {

namespace {

void Say(const std::string& line) {
  std::string l = "vb: " + line + "\n";
  fwrite(l.data(), 1, l.size(), stdout);
  fflush(stdout);
}

// `vb run` leaves the config it runs in the runtime folder (run.PID) while
// it runs, so `vb say`, `vb status`… without --config reach the assistant
// that is going, whatever config started it.
constexpr const char* kRunMarkPrefix = "run.";

class RunMark {
 public:
  explicit RunMark(const std::string& run_dir, const std::string& config)
      : path_(run_dir + "/" + kRunMarkPrefix + std::to_string(getpid())) {
    std::ofstream out(path_);
    out << config << "\n";
    if (!out) path_.clear();
  }
  ~RunMark() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  RunMark(const RunMark&) = delete;
  RunMark& operator=(const RunMark&) = delete;

 private:
  std::string path_;
};

Status LoadBusOnly(std::string path, bus::BusConfig* bus, std::string* device) {
  if (path.empty())
    if (Status st = RunningConfig(&path); !st.ok()) return st;
  // The same runtime folder as `vb run` (a config's ${VB_RUN_DIR}): `vb say
  // --config config/demo.yaml …` reaches the `vb run config/demo.yaml` going.
  std::string run_dir;
  if (!path.empty()) {
    if (Status st = RuntimeDir(&run_dir); !st.ok()) return st;
    ExportConfigDir(path);
  }
  bus::DevicesConfig devices;
  if (Status st = bus::LoadBusSections(path, bus, &devices); !st.ok()) return st;
  if (device->empty() && !devices.names.empty()) *device = devices.names.front();
  return Status::Ok();
}

}  // namespace

// The config of the one `vb run` going in the runtime folder; "" when none
// is (the built-in default bus is used). Several: an error naming them.
Status RunningConfig(std::string* config) {
  config->clear();
  std::string run_dir;
  if (Status st = RuntimeDir(&run_dir); !st.ok()) return st;
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kRunMarkPrefix, 0) != 0) continue;
    const int pid = std::atoi(name.c_str() + std::strlen(kRunMarkPrefix));
    if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {  // left by a `vb run` that was killed
      std::filesystem::remove(e.path(), ec);
      continue;
    }
    std::ifstream in(e.path());
    std::string line;
    if (std::getline(in, line) && !line.empty()) found.push_back(line);
  }
  if (found.size() > 1) {
    std::string list;
    for (const auto& f : found) list += "\n  " + f;
    return Status::Config("several `vb run` are going; pass --config with one of:" + list);
  }
  if (!found.empty()) *config = found.front();
  return Status::Ok();
}

int Run(const Args& in) {
  if (WantsHelp(in)) return PrintHelp("run");
  // First: NOTIFY_SOCKET and WATCHDOG_* are ours alone, not the children's.
  SdNotifier notifier;
  std::map<std::string, std::string> opt;
  Args rest;
  std::string error;
  if (!ParseArgs(in, {{"--quiet", false}, {"--config", true}, {"--role", true}, {"--device", true}}, &opt, &rest,
                 &error))
    return UsageError("run", error);
  if (opt.count("--config")) rest.insert(rest.begin(), opt["--config"]);
  if (rest.size() > 1) return UsageError("run", "one CONFIG only ('" + rest[1] + "' is one too many)");
  const bool quiet = opt.count("--quiet") > 0;
  std::string config, run_dir;
  if (Status st = ResolveConfig(rest.empty() ? "config/demo.yaml" : rest[0], &config); !st.ok()) {
    std::cerr << "vb: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  if (Status st = RuntimeDir(&run_dir); !st.ok()) {
    std::cerr << "vb: " << st.message() << "\n";
    return kExitConfig;
  }
  ExportConfigDir(config);
  bus::BusConfig bus;
  launcher::LauncherConfig lc;
  if (Status st = launcher::LoadLaunchConfig(config, &bus, &lc, opt["--role"], opt["--device"]); !st.ok()) {
    std::cerr << "vb: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  if (lc.role != "all")
    Say("role " + lc.role + (lc.role == "satellite" ? " (device " + lc.device + "), its bus " + bus.endpoint : ""));
  // Everything missing, in one list, before anything starts.
  std::vector<std::string> made, missing;
  if (Status st = PrepareSimulatorFiles(config, lc, run_dir, &made); !st.ok()) missing.push_back(st.message());
  for (const auto& m : made) Say(m);
  for (auto& m : Preflight(config, lc)) missing.push_back(std::move(m));
  if (!missing.empty()) {
    std::string text = "vb: cannot start " + config + ": " + std::to_string(missing.size()) +
                       (missing.size() == 1 ? " thing is" : " things are") + " missing:\n";
    for (const auto& m : missing) text += "  - " + m + "\n";
    std::cerr << text << "Nothing was started (exit 78). `vb help config` explains the file.\n";
    return kExitConfig;
  }
  SetLogIdentity("vb");
  const RunMark mark(run_dir, config);
  StopSignals signals;
  const bool live = !quiet && isatty(STDOUT_FILENO);
  Say("runtime folder " + run_dir + (lc.log_dir.empty() ? "" : "; actor logs in " + lc.log_dir));
  if (Dashboard d = FindDashboard(config, lc); !d.url.empty())
    Say("dashboard " + d.url + " (its token: " + d.token_file + ")");
  zmq::context_t zctx(1);
  int rc = 0;
  {
    bus::Loop loop;
    bus::Node node(zctx, loop, "vb-" + std::to_string(getpid()), "-", bus);
    launcher::Launcher launcher(loop, node, config, lc, Say);
    // systemd (Type=notify): READY once every actor has beaten once, STATUS
    // with the progress and then the dialog state, WATCHDOG from this loop.
    std::set<std::string> actors, up;
    for (const auto& a : launcher::ParseActors(lc.actors)) actors.insert(a.name);
    bool ready = false;
    std::string dialog = "waiting for the dialog state";
    auto status = [&] {
      if (!notifier.enabled()) return;
      if (!ready) {
        std::string waiting;
        for (const auto& a : actors)
          if (!up.count(a)) waiting += (waiting.empty() ? "" : " ") + a;
        notifier.Notify("STATUS=starting: " + std::to_string(up.size()) + " of " + std::to_string(actors.size()) +
                        " actors up; waiting for " + waiting);
      } else {
        notifier.Notify("STATUS=" + std::to_string(actors.size()) + " actors up; dialog " + dialog);
      }
    };
    bool stopping = false;
    auto stop = [&](const std::string& why) {
      if (stopping) return;
      stopping = true;
      Say(why);
      notifier.Notify("STOPPING=1\nSTATUS=" + why);
      launcher.Stop([&] {
        Say("all stopped");
        loop.Stop();
      });
    };
    launcher.OnEvent([&](const launcher::SupervisorEvent& e) {
      // Under systemd a start that cannot complete fails at once (exit 78,
      // not restarted: RestartPreventExitStatus) instead of waiting for
      // TimeoutStartSec; on a terminal the run goes on without the actor.
      if (e.kind == launcher::SupervisorEvent::kConfigError && notifier.enabled() && !ready) {
        stop("stopping: " + e.name + " has a config error, the assistant cannot start (see its log)");
        return;
      }
      if (e.kind != launcher::SupervisorEvent::kUp || !actors.count(e.name) || !up.insert(e.name).second) return;
      if (!ready && up.size() == actors.size()) {
        ready = true;
        Say("all " + std::to_string(actors.size()) + " actors up");
        notifier.Notify("READY=1");
      }
      status();
    });
    DialogView view(
        node, live,
        [](const std::string& l) {
          const std::string text = l + "\n";
          fwrite(text.data(), 1, text.size(), stdout);
          fflush(stdout);
        },
        [&](const std::string& state) {
          dialog = state;
          if (ready) status();
        });
    if (notifier.watchdog().count() > 0)
      loop.AddTimer(std::chrono::duration_cast<std::chrono::nanoseconds>(notifier.watchdog() / 2),
                    [&] { notifier.Notify("WATCHDOG=1"); });
    if (Status st = node.Connect(); !st.ok()) {
      std::cerr << "vb: " << st.message() << "\n";
      return 1;
    }
    loop.AddFd(signals.fd(), POLLIN, [&](short) {
      if (signals.Take()) stop("stopping…");
    });
    status();
    if (Status st = launcher.Start(); !st.ok()) {
      std::cerr << "vb: " << st.message() << "\n";
      rc = 1;
    } else {
      loop.Run();
      // The run went on without that actor; its exit says it was incomplete.
      if (launcher.config_failed()) rc = kExitConfig;
    }
  }
  zctx.shutdown();
  return rc;
}

int Keygen(const Args& in) {
  // An option is never taken for the file name (`vb keygen --help` wrote a
  // secret key to a file named --help).
  if (WantsHelp(in)) return PrintHelp("keygen");
  std::map<std::string, std::string> opt;
  Args args;
  std::string error;
  if (!ParseArgs(in, {}, &opt, &args, &error)) return UsageError("keygen", error);
  if (args.size() != 1) return UsageError("keygen", "needs exactly one FILE");
  bus::KeyPair kp;
  if (Status st = bus::GenerateKeyPair(&kp); !st.ok()) {
    std::cerr << "vb: " << st.message() << "\n";
    return 1;
  }
  umask(077);
  std::ofstream out(args[0]);
  out << "# voicebus CURVE key pair — keep the secret key private\npublic: \"" << kp.public_key << "\"\nsecret: \""
      << kp.secret_key << "\"\n";
  if (!out) {
    std::cerr << "vb: cannot write " << args[0] << "\n";
    return 1;
  }
  std::cout << kp.public_key << "\n";
  return 0;
}

int ShowStatus(const Args& in) {
  if (WantsHelp(in)) return PrintHelp("status");
  std::map<std::string, std::string> opt;
  Args rest;
  std::string error;
  if (!ParseArgs(in, {{"--config", true}, {"--duration", true}}, &opt, &rest, &error))
    return UsageError("status", error);
  if (!rest.empty()) return UsageError("status", "unexpected argument '" + rest[0] + "'");
  std::string path = opt["--config"];
  if (!path.empty()) {
    if (Status st = ResolveConfig(path, &path); !st.ok()) {
      std::cerr << "vb: config error:\n" << st.message() << "\n";
      return kExitConfig;
    }
  }
  const double seconds = std::atof(opt.count("--duration") ? opt["--duration"].c_str() : "1.5");
  if (!(seconds > 0 && seconds <= 3600)) return UsageError("status", "--duration must be seconds in (0, 3600]");
  bus::BusConfig bus;
  std::string device;
  if (Status st = LoadBusOnly(path, &bus, &device); !st.ok()) {
    std::cerr << "vb: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  zmq::context_t zctx(1);
  // Judged by the same rule as the launcher, vb-control and the dashboard:
  // stale after 3 missed heartbeats (seen with a --duration longer than
  // that), a restart when the pid changes or the uptime goes back.
  struct Seen {
    v1::Heartbeat hb;
    PeerHealth peer;
  };
  std::map<std::string, Seen> seen;
  const PeerRule rule{std::chrono::milliseconds(bus.heartbeat_ms), 3};
  {
    bus::Loop loop;
    bus::Node node(zctx, loop, "vb-status", "-", bus);
    node.Subscribe<v1::Heartbeat>(
        bus::topics::kHeartbeat,
        [&](const auto& m) {
          if (seen.size() >= 256 && !seen.count(m.msg.actor())) return;  // a flood of invented names
          Seen& s = seen.try_emplace(m.msg.actor(), Seen{{}, PeerHealth(rule)}).first->second;
          s.hb = m.msg;
          s.peer.OnBeat(m.msg.pid(), m.msg.uptime_ms(), PeerHealth::Clock::now());
        },
        "*");
    if (Status st = node.Connect(); !st.ok()) {
      std::cerr << "vb: " << st.message() << "\n";
      return 1;
    }
    loop.AddOneShot(std::chrono::nanoseconds(int64_t(seconds * 1e9)), [&] { loop.Stop(); });
    loop.Run();
  }
  if (seen.empty()) {
    std::cout << "no actor heartbeats on " << bus.endpoint << " (is `vb run` going?)\n";
    return 1;
  }
  printf("%-12s %-9s %7s %8s %8s %6s %6s %6s %7s %s\n", "actor", "state", "pid", "in", "out", "drops", "bad", "cpu%",
         "rss MB", "detail");
  const auto end = PeerHealth::Clock::now();
  for (const auto& [name, s] : seen) {
    const v1::Heartbeat& hb = s.hb;
    std::string detail = hb.detail();
    if (s.peer.restarts()) detail = "restarted while watched" + (detail.empty() ? "" : "; " + detail);
    printf("%-12s %-9s %7d %8lu %8lu %6lu %6lu %6.1f %7.1f %s\n", name.c_str(),
           s.peer.Silent(end) ? "STALE" : v1::Heartbeat::State_Name(hb.state()).c_str(), hb.pid(),
           (unsigned long)hb.counters().msgs_in(), (unsigned long)hb.counters().msgs_out(),
           (unsigned long)hb.counters().drops(), (unsigned long)hb.counters().malformed(), hb.cpu_percent(),
           double(hb.rss_kb()) / 1024.0, detail.c_str());
  }
  return 0;
}

namespace {

// Who answers a command (dialog.proto, CommandAck): the session takes text,
// vb-control the rest.
std::string Receiver(const v1::DialogRequest& cmd) {
  return cmd.has_text_input() || cmd.has_speak() || cmd.has_new_conversation() ? "vb-session" : "vb-control";
}

// Exit codes of `vb ptt/say/mode/interrupt`.
constexpr int kExitRefused = 1;        // the receiver answered REFUSED
constexpr int kExitNotDelivered = 69;  // EX_UNAVAILABLE: nobody listens, or no answer in time

}  // namespace

int SendCommand(const std::string& verb, const Args& in) {
  if (WantsHelp(in)) return PrintHelp(verb);
  std::map<std::string, std::string> opt;
  Args args;
  std::string error;
  if (!ParseArgs(in, {{"--config", true}, {"--device", true}, {"--timeout", true}}, &opt, &args, &error))
    return UsageError(verb, error);
  std::string path = opt["--config"];
  if (!path.empty()) {
    if (Status st = ResolveConfig(path, &path); !st.ok()) {
      std::cerr << "vb: config error:\n" << st.message() << "\n";
      return kExitConfig;
    }
  }
  std::string device = opt["--device"];
  const double timeout_s = std::atof(opt.count("--timeout") ? opt["--timeout"].c_str() : "3");
  v1::DialogRequest cmd;
  if (verb == "ptt" && args.size() == 1 && (args[0] == "down" || args[0] == "up")) {
    cmd.mutable_push_to_talk()->set_down(args[0] == "down");
  } else if (verb == "say" && !args.empty()) {
    std::string text;
    for (const auto& a : args) text += (text.empty() ? "" : " ") + a;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return UsageError("say", "TEXT is empty");
    cmd.mutable_text_input()->set_text(text);
    cmd.mutable_text_input()->set_request_id("vb-" + std::to_string(getpid()));
  } else if (verb == "speak" && !args.empty()) {
    std::string text;
    for (const auto& a : args) text += (text.empty() ? "" : " ") + a;
    cmd.mutable_speak()->set_text(text);
  } else if (verb == "new-conversation" && args.empty()) {
    cmd.mutable_new_conversation();
  } else if (verb == "mode" && args.size() == 1) {
    v1::DialogMode m;
    if (args[0] == "continuous") m = v1::MODE_CONTINUOUS;
    else if (args[0] == "wake_word") m = v1::MODE_WAKE_WORD;
    else if (args[0] == "push_to_talk") m = v1::MODE_PUSH_TO_TALK;
    else {
      return UsageError("mode", "MODE must be continuous, wake_word or push_to_talk");
    }
    cmd.mutable_set_mode()->set_mode(m);
  } else if (verb == "interrupt" && args.empty()) {
    cmd.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
  } else {
    return UsageError(verb, args.empty() ? "missing argument" : "unexpected argument '" + args.back() + "'");
  }
  if (!(timeout_s > 0 && timeout_s <= 600)) {
    return UsageError(verb, "--timeout must be a number of seconds in (0, 600]");
  }
  bus::BusConfig bus;
  if (Status st = LoadBusOnly(path, &bus, &device); !st.ok()) {
    std::cerr << "vb: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  // The receiver answers on dialog.ack with this id (a sender may reuse
  // neither: pid + time).
  const std::string id = "vb-" + std::to_string(getpid()) + "-" + std::to_string(bus::MonoNs());
  const std::string probe = id + "-probe";
  cmd.set_command_id(id);
  const auto timeout = std::chrono::nanoseconds(int64_t(timeout_s * 1e9));
  const std::string receiver = Receiver(cmd);
  zmq::context_t zctx(1);
  bool sent = false, listening = false;
  std::optional<v1::CommandAck> ack;
  {
    bus::Loop loop;
    bus::Node node(zctx, loop, "vb-cli", device, bus);
    node.Subscribe<v1::CommandAck>(
        bus::topics::kDialogAck,
        [&](const auto& m) {
          if (m.msg.command_id() == probe) listening = true;
          else if (m.msg.command_id() == id) ack = m.msg;
        },
        "*");
    if (Status st = node.Connect(); !st.ok()) {
      std::cerr << "vb: " << st.message() << "\n";
      return 1;
    }
    node.SetActive(true);
    auto pub = node.Advertise(bus::topics::kDialogRequest);
    auto acks = node.Advertise(bus::topics::kDialogAck);
    // Send as soon as someone listens (subscriptions are visible on XPUB)
    // and our own dialog.ack subscription has reached the broker (a probe
    // ack comes back to us), so the answer cannot pass us by.
    auto deadline = bus::Clock::now() + timeout;
    bus::Clock::time_point next_probe{};
    while (!sent && bus::Clock::now() < deadline) {
      if (!listening && bus::Clock::now() >= next_probe) {
        v1::CommandAck p;
        p.set_command_id(probe);
        p.set_receiver("vb-cli");
        acks.Publish(p);
        next_probe = bus::Clock::now() + std::chrono::milliseconds(20);
      }
      if (listening && node.HasSubscriber(pub)) {
        sent = pub.Publish(cmd);
        break;
      }
      loop.RunOnce(std::chrono::milliseconds(10));
    }
    deadline = bus::Clock::now() + timeout;
    // A text goes again (same command id: vb-session takes it once) each
    // second without an answer: a vb-session killed as it arrived is back
    // within that, and the question is not lost for a restart.
    auto resend_at = bus::Clock::now() + std::chrono::seconds(1);
    while (sent && !ack && bus::Clock::now() < deadline) {
      loop.RunOnce(std::chrono::milliseconds(50));
      if (!ack && cmd.has_text_input() && bus::Clock::now() >= resend_at) {
        if (node.HasSubscriber(pub)) pub.Publish(cmd);
        resend_at = bus::Clock::now() + std::chrono::seconds(1);
      }
    }
  }
  zctx.shutdown();  // linger: the message is flushed before the context ends
  char secs[32];
  snprintf(secs, sizeof secs, "%g", timeout_s);
  if (!sent) {
    std::cerr << "vb: not delivered: nobody listens to dialog.request on " << bus.endpoint << " (is `vb run` going?)\n";
    return kExitNotDelivered;
  }
  if (!ack) {
    std::cerr << "vb: not delivered: no answer from " << receiver << " within " << secs << " s\n";
    return kExitNotDelivered;
  }
  const std::string who = ack->receiver().empty() ? receiver : ack->receiver();
  const std::string why = ack->reason().empty() ? "" : ": " + ack->reason();
  switch (ack->result()) {
    case v1::CommandAck::ACCEPTED: std::cout << "vb: accepted by " << who << why << "\n"; return 0;
    case v1::CommandAck::QUEUED: std::cout << "vb: queued by " << who << why << "\n"; return 0;
    default:
      std::cerr << "vb: refused by " << who << (why.empty() ? ": no reason given" : why) << "\n";
      return kExitRefused;
  }
}

int PrintDefaultConfig(const std::string& config_arg) {
  auto report = config::DescribeReport();
  {
    config::Section s(report, "bus", YAML::Node());
    bus::BusConfig b;
    b.Declare(s);
  }
  {
    config::Section s(report, "devices", YAML::Node());
    std::vector<std::string> names;
    bus::DeclareDevices(s, &names);
  }
  {
    config::Section s(report, "launcher", YAML::Node());
    launcher::LauncherConfig l;
    l.Declare(s);
  }
  std::cout << "# voicebus — default configuration, every key documented\n" << report->described;
  std::cout.flush();
  // Each actor documents its own section.
  std::string bin = launcher::BinDir();
  // The build lists its actors (cmake: vb_write_actor_list); other vb-*
  // binaries are tools and benches with command lines of their own.
  std::vector<std::string> actors;
  std::ifstream list(bin + "/vb-actors.list");
  if (!list) {
    std::cerr << "vb: " << bin << "/vb-actors.list not found: cannot list the actors' sections\n";
    return 1;
  }
  for (std::string n; std::getline(list, n);)
    if (!n.empty()) actors.push_back(n);
  std::sort(actors.begin(), actors.end());
  for (const auto& a : actors) {
    std::cout << "\n";
    std::cout.flush();
    std::string cmd = "'" + bin + "/" + a + "' --print-default-config";
    if (system(cmd.c_str()) != 0) std::cerr << "vb: " << a << " could not print its section\n";
  }
  if (!config_arg.empty()) return PrintCommandSections(config_arg);
  return 0;
}

}  // namespace vb::cli
