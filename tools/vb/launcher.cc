// Real processes for the Supervisor, the bus watch thread, and the
// launcher's config checks (see launcher.h).
#include "tools/vb/launcher.h"

#include "bus/devices.h"
#include "bus/heap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>

extern char** environ;

namespace vb::launcher {

void LauncherConfig::Declare(config::Section& s) {
  s.Key("actors", &actors, {},
        "actor instances to run, in start order: NAME or NAME:KIND (binary vb-KIND); the devices' own "
        "actors (devices.actors, KIND@DEVICE) are added after them");
  s.Choice("role", &role, "all", {"all", "hub", "satellite"},
           "what this host runs: all (everything, satellites' buses too), hub (broker, these actors, devices "
           "that are not satellites) or satellite (one device's bus and actors; `vb run --role`)");
  s.Key("device", &device, std::string(""),
        "role satellite: the device this host is (devices.list; empty = the only satellite); `vb run --device`");
  s.Key("broker", &broker, true, "start vb-broker (false: use a broker running elsewhere)");
  s.Key("simulator", &simulator, false,
        "start vb-cozesim on a free 127.0.0.1 port first; actors see it as ${VB_SIM_PORT}");
  s.Key("simulator_args", &simulator_args, {}, "extra vb-cozesim arguments");
  s.Key("log_dir", &log_dir, std::string(""), "write each child's log to DIR/NAME.log (empty: this terminal)");
  s.Key("restart_initial_ms", &restart_initial_ms, 1000, {100, 60000},
        "crash loop: delay before the second quick restart (the first is at once)");
  s.Key("restart_max_ms", &restart_max_ms, 32000, {100, 600000}, "crash loop: the delay doubles up to this");
  s.Key("crash_window_ms", &crash_window_ms, 3000, {100, 600000},
        "a child that dies this soon after its start is crash-looping; one that ran longer (or was "
        "kill -9'd from outside) is restarted at once");
  s.Key("heartbeat_timeout_ms", &heartbeat_timeout_ms, 3000, {500, 60000},
        "an actor silent this long while the bus works is killed and restarted");
  s.Finish();
  if (restart_max_ms < restart_initial_ms) s.Error("restart_max_ms", "must be ≥ restart_initial_ms");
}

namespace {
// argv[0] of a `command`: a bare name is looked up in PATH, a relative path
// is taken from the config file's folder; "" if it is not executable.
std::string ResolveProgram(const std::string& prog, const std::string& config_dir) {
  if (prog.find('/') != std::string::npos) {
    std::string p = prog[0] == '/' ? prog : config_dir + "/" + prog;
    return access(p.c_str(), X_OK) == 0 ? p : "";
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t b = 0; b <= dirs.size();) {
    size_t e = dirs.find(':', b);
    if (e == std::string::npos) e = dirs.size();
    std::string p = dirs.substr(b, e - b) + "/" + prog;
    if (e > b && access(p.c_str(), X_OK) == 0) return p;
    b = e + 1;
  }
  return "";
}

// The checks of launcher.actors that need the actors' sections: a kind
// needs a binary unless the actor's section gives a `command`.
void CheckActors(const config::File& file, const std::shared_ptr<config::Report>& report, config::Section& s,
                 LauncherConfig* c) {
  std::string dir = file.path();
  dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, std::max<size_t>(1, dir.rfind('/')));
  const std::string bin = BinDir();
  std::set<std::string> names;
  auto entries = ParseActors(c->actors);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& a = entries[i];
    if (a.name.empty() || a.kind.empty()) {
      s.Error("actors", "'" + c->actors[i] + "': expected NAME or NAME:KIND", int(i));
      continue;
    }
    if (!names.insert(a.name).second) s.Error("actors", "actor name '" + a.name + "' is listed twice", int(i));
    // Only `command` is read here; the actor validates the rest of its section.
    auto section = file.Get(a.name, report);
    std::vector<std::string> cmd;
    section.Key("command", &cmd, {}, "");
    if (!cmd.empty()) {
      std::string prog = ResolveProgram(cmd[0], dir);
      if (prog.empty()) section.Error("command", "'" + cmd[0] + "' is not an executable program", 0);
      cmd[0] = prog;
      c->commands[a.name] = cmd;
    } else if (access((bin + "/vb-" + a.kind).c_str(), X_OK) != 0) {
      // An unknown kind would exit 127 at every restart: refuse it now, where it is written.
      s.Error("actors",
              "unknown actor kind '" + a.kind + "' (no " + bin + "/vb-" + a.kind + ", and no " + a.name + ".command)",
              int(i));
    }
  }
}
}  // namespace

std::vector<std::string> ActorArgv(const LauncherConfig& c, const ActorEntry& a, const std::string& config_path) {
  std::vector<std::string> argv;
  if (auto it = c.commands.find(a.name); it != c.commands.end()) argv = it->second;
  else argv = {BinDir() + "/vb-" + a.kind};
  argv.insert(argv.end(), {"--config", config_path, "--name", a.name});
  return argv;
}

std::vector<ActorEntry> ParseActors(const std::vector<std::string>& list) {
  std::vector<ActorEntry> out;
  for (const auto& a : list) {
    auto colon = a.find(':');
    if (colon == std::string::npos) out.push_back({a, a});
    else out.push_back({a.substr(0, colon), a.substr(colon + 1)});
  }
  return out;
}

namespace {
// The role's share of the devices: their actors, the satellite buses to run,
// and on a satellite its own bus for the launcher.
void ApplyRole(const bus::DevicesConfig& devices, config::Section& s, bus::BusConfig* bus, LauncherConfig* c) {
  if (c->role == "satellite") {
    if (c->device.empty()) {
      for (const auto& e : devices.list)
        if (e.satellite) {
          if (!c->device.empty()) {
            s.Error("device", "several devices are satellites: say which one this host is (--device NAME)");
            return;
          }
          c->device = e.name;
        }
    }
    const bus::DeviceEntry* e = devices.Find(c->device);
    if (!e || !e->satellite) {
      s.Error("device", c->device.empty() ? "role satellite needs a device declared with satellite: true"
                                          : "'" + c->device + "' is not a device with satellite: true in devices.list");
      return;
    }
    c->broker = false;
    c->simulator = false;
    c->actors.clear();  // the hub's
    c->bridges = {e->name};
    bus->endpoint = bus::SatelliteEndpoint(bus->satellite_endpoint, bus->endpoint, e->name);
  } else {
    for (const auto& e : devices.list)
      if (e.satellite && c->role == "all") c->bridges.push_back(e.name);
  }
  for (const auto& e : devices.list) {
    const bool here = c->role == "all" || (c->role == "hub" && !e.satellite) || e.name == c->device;
    if (!here) continue;
    for (const auto& kind : devices.actors) c->actors.push_back(bus::DeviceInstance(kind, e.name) + ":" + kind);
  }
}
}  // namespace

Status LoadLaunchConfig(const std::string& path, bus::BusConfig* bus, LauncherConfig* launcher, const std::string& role,
                        const std::string& device) {
  config::File file;
  if (Status st = file.Load(path); !st.ok()) return st;
  auto report = file.NewReport();
  bus::DevicesConfig devices;
  bus::ReadBusSections(file, report, bus, &devices);
  std::vector<std::string> declared;
  {
    auto s = file.Get("launcher", report);
    launcher->Declare(s);
    if (!role.empty()) {
      if (role != "all" && role != "hub" && role != "satellite")
        report->errors.push_back("--role: '" + role + "' is not one of all|hub|satellite");
      launcher->role = role;
    }
    if (!device.empty()) launcher->device = device;
    declared = launcher->actors;  // a satellite does not run them, but the file still has their sections
    if (report->errors.empty()) ApplyRole(devices, s, bus, launcher);
    CheckActors(file, report, s, launcher);
  }
  std::vector<std::string> known = {"bus", "devices", "launcher", "simulator"};
  for (const auto& a : ParseActors(launcher->actors)) known.push_back(a.name);
  for (const auto& kind : devices.actors) known.push_back(kind);
  for (const auto& a : ParseActors(declared)) known.push_back(a.name);
  file.CheckTopLevel(known, report.get());
  return config::ToStatus(*report);
}

std::string BinDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, size_t(n));
  return p.substr(0, p.rfind('/'));
}

int FreeLoopbackPort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}

namespace {

// Secrets and the one binary role that needs each. The simulator reads its
// own token from a file (--token-file), so it gets none.
struct Secret {
  const char* name;
  const char* kind;
};
constexpr Secret kSecrets[] = {{"COZE_API_TOKEN", "session"}, {"VB_GATEWAY_TOKENS", "gateway"}};

}  // namespace

std::vector<std::string> ChildEnvironment(const std::vector<std::string>& env, const std::string& kind) {
  std::vector<std::string> out;
  for (const auto& e : env) {
    bool keep = true;
    for (const auto& s : kSecrets) {
      const size_t n = strlen(s.name);
      if (e.size() > n && e.compare(0, n, s.name) == 0 && e[n] == '=') keep = kind == s.kind;
    }
    if (keep) out.push_back(e);
  }
  return out;
}

std::string LastConfigError(const std::string& log_path, size_t max_lines) {
  std::ifstream in(log_path, std::ios::binary);
  if (!in) return "";
  // Only the tail: the log holds every earlier run of the child too.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 8192);
  in.seekg(from);
  std::string tail(size_t(size - from), '\0');
  in.read(tail.data(), std::streamsize(tail.size()));
  size_t at = tail.rfind("config error");
  if (at == std::string::npos) return "";
  at = tail.rfind('\n', at);
  at = at == std::string::npos ? 0 : at + 1;
  std::string out;
  size_t lines = 0;
  while (at < tail.size() && lines < max_lines) {
    size_t nl = tail.find('\n', at);
    if (nl == std::string::npos) nl = tail.size();
    if (nl > at) {
      out += (out.empty() ? "" : "\n") + tail.substr(at, nl - at);
      ++lines;
    }
    at = nl + 1;
  }
  return out;
}

// BusWatch: the launcher's bus, on a thread of its own (see launcher.h).
// It publishes the launcher's heartbeat (actor "vb", on a satellite
// "vb@DEVICE" so the hub tells its hosts apart; kind "launcher") every
// kEchoPeriod and reports hearing it back; it keeps the latest heartbeat
// time of each known child (names outside that set are ignored, so a hostile
// publisher cannot grow it) and pokes the owner's loop once per batch.
class BusWatch {
 public:
  static constexpr auto kEchoPeriod = std::chrono::milliseconds(500);
  struct Beat {
    TimePoint at;
    int pid;
  };
  struct News {
    std::map<std::string, Beat> beats;
    std::optional<TimePoint> echo;
  };

  BusWatch(bus::BusConfig config, std::string name, bus::Loop& owner, std::function<void()> on_news)
      : config_(std::move(config)), name_(std::move(name)), owner_(owner), on_news_(std::move(on_news)) {}
  ~BusWatch() {
    loop_.Stop();
    // A healthy thread ends at once; one stuck in a ZeroMQ call is released
    // by shutting its context down (calls then fail with ETERM).
    if (done_.valid() && done_.wait_for(std::chrono::milliseconds(300)) != std::future_status::ready) ctx_.shutdown();
    if (thread_.joinable()) thread_.join();
  }

  void Start() {
    std::promise<void> done;
    done_ = done.get_future();
    thread_ = std::thread([this, done = std::move(done)]() mutable {
      Run();
      done.set_value();
    });
  }
  void Know(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    known_.insert(name);
  }
  News Take() {
    std::lock_guard<std::mutex> lock(mu_);
    News n;
    n.beats.swap(news_.beats);
    n.echo = news_.echo;
    news_.echo.reset();
    poked_ = false;
    return n;
  }

 private:
  void Run() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are the owner's
    const int pid = getpid();
    try {
      bus::Node node(ctx_, loop_, name_, "-", config_);
      node.Subscribe<v1::Heartbeat>(
          bus::topics::kHeartbeat,
          [&](const bus::Received<v1::Heartbeat>& m) {
            if (m.msg.state() == v1::Heartbeat::STOPPING) return;
            const TimePoint now = Clock::now();
            std::lock_guard<std::mutex> lock(mu_);
            if (m.msg.actor() == name_ && m.msg.pid() == pid) news_.echo = now;
            else if (known_.count(m.msg.actor())) news_.beats[m.msg.actor()] = Beat{now, m.msg.pid()};
            else return;
            if (!poked_) poked_ = owner_.Post(on_news_);
          },
          "*");
      if (Status st = node.Connect(); !st.ok()) {
        VB_LOG(kError) << "launcher bus watch: " << st.message();
        return;
      }
      node.SetActive(true);
      auto pub = node.Advertise(bus::topics::kHeartbeat);
      const auto started = Clock::now();
      // A flood of (fake) heartbeats queued here and drained leaves its heap
      // resident: given back at the next beat (bus/heap.h).
      HeapTrimmer heap;
      auto beat = [&] {
        heap.AfterBurst();
        v1::Heartbeat hb;
        hb.set_actor(name_);
        hb.set_kind("launcher");
        hb.set_state(v1::Heartbeat::ACTIVE);
        hb.set_pid(pid);
        hb.set_uptime_ms(std::chrono::duration_cast<Ms>(Clock::now() - started).count());
        pub.Publish(hb);
      };
      loop_.AddTimer(kEchoPeriod, beat);
      // Beat as soon as our subscription reaches the broker (a publisher with
      // no subscriber yet drops), so the first echo comes without a period's wait.
      node.OnNewSubscriber([&](const std::string& prefix) {
        if (pub.topic().rfind(prefix, 0) == 0) beat();
      });
      loop_.Run();
    } catch (const std::exception& e) {
      // Only at shutdown (ETERM) or on a bus library failure: the owner
      // keeps supervising without heartbeats, and judges no silence.
      VB_LOG(kWarn) << "launcher bus watch stopped: " << e.what();
    }
  }

  bus::BusConfig config_;
  std::string name_;  // "vb", on a satellite "vb@DEVICE"
  bus::Loop& owner_;
  std::function<void()> on_news_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::thread thread_;
  std::future<void> done_;
  std::mutex mu_;
  std::set<std::string> known_;
  News news_;
  bool poked_ = false;
};

class Launcher::Ops : public ProcessOps {
 public:
  explicit Ops(Launcher& l) : l_(l) {}
  int Spawn(const ChildSpec& spec) override {
    // Everything the child needs is built before fork(): with the bus
    // thread running, the child may only make async-signal-safe calls.
    std::vector<std::string> env_now;
    for (char** e = environ; *e; ++e) env_now.emplace_back(*e);
    const std::vector<std::string> env = ChildEnvironment(env_now, spec.kind);
    std::vector<char*> envp, argv;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const bool is_sim = spec.name == "cozesim";
    const std::string log_path = l_.config_.log_dir.empty() ? "" : l_.config_.log_dir + "/" + spec.name + ".log";
    const std::string exec_failed = "vb: cannot run " + spec.argv[0] + "\n";

    int out_pipe[2] = {-1, -1};
    if (is_sim && pipe2(out_pipe, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
      if (is_sim) close(out_pipe[0]), close(out_pipe[1]);
      return -1;
    }
    if (pid == 0) {
      setpgid(0, 0);  // own group: terminal Ctrl-C goes to vb only
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (!log_path.empty()) {
        int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
          dup2(fd, STDERR_FILENO);
          if (!is_sim) dup2(fd, STDOUT_FILENO);
          close(fd);
        }
      }
      if (is_sim) dup2(out_pipe[1], STDOUT_FILENO);
      execve(argv[0], argv.data(), envp.data());
      (void)!write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
      _exit(127);
    }
    setpgid(pid, pid);
    if (is_sim) {
      close(out_pipe[1]);
      if (l_.sim_out_fd_ >= 0) {
        l_.loop_.RemovePollGroup(l_.sim_out_group_);
        close(l_.sim_out_fd_);
      }
      l_.sim_out_fd_ = out_pipe[0];
      fcntl(l_.sim_out_fd_, F_SETFL, O_NONBLOCK);
      l_.sim_out_group_ = l_.loop_.AddFd(l_.sim_out_fd_, POLLIN, [this](short) { l_.OnSimOutput(); });
    }
    return pid;
  }
  void Signal(int pid, int sig) override {
    if (pid > 0) kill(pid, sig);
  }

 private:
  Launcher& l_;
};

Launcher::Launcher(bus::Loop& loop, bus::Node& node, std::string config_path, LauncherConfig config, Display display)
    : loop_(loop), config_path_(std::move(config_path)), config_(std::move(config)), display_(std::move(display)) {
  ops_ = std::make_unique<Ops>(*this);
  SupervisorPolicy policy;
  policy.initial = Ms(config_.restart_initial_ms);
  policy.max = Ms(config_.restart_max_ms);
  policy.crash_window = Ms(config_.crash_window_ms);
  policy.heartbeat_timeout = Ms(config_.heartbeat_timeout_ms);
  policy.startup_timeout = 3 * policy.heartbeat_timeout;
  supervisor_ = std::make_unique<Supervisor>(*ops_, policy, [this](const SupervisorEvent& e) { Show(e); });

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);  // before the watch thread starts: it inherits the mask
  sigchld_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  loop_.AddFd(sigchld_fd_, POLLIN, [this](short) { OnSignal(); });
  watch_ = std::make_unique<BusWatch>(node.config(), config_.role == "satellite" ? "vb@" + config_.device : "vb", loop_,
                                      [this] { OnBusNews(); });
}

Launcher::~Launcher() {
  watch_.reset();  // joins the thread before anything it posts to goes away
  if (sigchld_fd_ >= 0) close(sigchld_fd_);
  if (sim_out_fd_ >= 0) close(sim_out_fd_);
}

void Launcher::Show(const SupervisorEvent& e) {
  Print(e);
  if (observer_) observer_(e);
}

void Launcher::Print(const SupervisorEvent& e) {
  char buf[256];
  const char* n = e.name.c_str();
  switch (e.kind) {
    case SupervisorEvent::kStarted: snprintf(buf, sizeof buf, "%-10s started (pid %d)", n, e.pid); break;
    case SupervisorEvent::kUp: snprintf(buf, sizeof buf, "%-10s up (heartbeat)", n); break;
    case SupervisorEvent::kExited:
      if (e.code < 0) snprintf(buf, sizeof buf, "%-10s killed by signal %d", n, -e.code);
      else snprintf(buf, sizeof buf, "%-10s exited with code %d", n, e.code);
      break;
    case SupervisorEvent::kRestartScheduled:
      if (e.delay.count() == 0) snprintf(buf, sizeof buf, "%-10s restarting now", n);
      else snprintf(buf, sizeof buf, "%-10s crash loop: restarting in %.1f s", n, double(e.delay.count()) / 1000.0);
      break;
    case SupervisorEvent::kConfigError: {
      config_failed_ = true;
      // The child's own words (file:line: key) are in its log when there is
      // one; a user watching `vb run` must see them here.
      std::string why = config_.log_dir.empty() ? "" : LastConfigError(config_.log_dir + "/" + e.name + ".log");
      snprintf(buf, sizeof buf, "%-10s config error (exit 78): not restarted; the run goes on WITHOUT %s", n, n);
      std::string text = std::string(buf) + " (fix " + config_path_ + " and start again)";
      if (!why.empty()) {
        size_t at = 0;
        while (at <= why.size()) {
          size_t nl = why.find('\n', at);
          if (nl == std::string::npos) nl = why.size();
          text += "\n    " + why.substr(at, nl - at);
          at = nl + 1;
        }
      }
      display_(text);
      return;
    }
    case SupervisorEvent::kHung:
      snprintf(buf, sizeof buf, "%-10s no heartbeat while the bus works: killing it", n);
      break;
    case SupervisorEvent::kSpawnFailed: snprintf(buf, sizeof buf, "%-10s could not be started", n); break;
    case SupervisorEvent::kStopped: snprintf(buf, sizeof buf, "%-10s stopped", n); break;
    case SupervisorEvent::kBusLost:
      snprintf(buf, sizeof buf, "%-10s our own heartbeat does not come back: silent actors are not judged", n);
      break;
    case SupervisorEvent::kBusBack:
      snprintf(buf, sizeof buf, "%-10s heartbeats get through again: actors have %.1f s to beat", n,
               double(config_.heartbeat_timeout_ms) / 1000.0);
      break;
  }
  display_(buf);
}

Status Launcher::Start(std::function<void()> ready) {
  ready_ = std::move(ready);
  const std::string bin = BinDir();
  if (!config_.log_dir.empty()) mkdir(config_.log_dir.c_str(), 0755);
  if (config_.broker)
    supervisor_->Add({"broker", {bin + "/vb-broker", "--config", config_path_}, false, "broker", true});
  for (const auto& d : config_.bridges)
    supervisor_->Add(
        {"broker@" + d, {bin + "/vb-broker", "--config", config_path_, "--satellite", d}, false, "broker", true});
  if (config_.simulator) {
    sim_port_ = FreeLoopbackPort();
    if (sim_port_ == 0) return Status::Unavailable("no free loopback port for the simulator");
    setenv("VB_SIM_PORT", std::to_string(sim_port_).c_str(), 1);
    std::vector<std::string> argv = {bin + "/vb-cozesim", "--port", std::to_string(sim_port_)};
    argv.insert(argv.end(), config_.simulator_args.begin(), config_.simulator_args.end());
    supervisor_->Add({"cozesim", argv, false, "cozesim", false});
  }
  watch_->Start();
  supervisor_->StartAll(bus::Clock::now());
  if (!config_.simulator) StartActors();
  Reschedule();
  return Status::Ok();
}

void Launcher::OnSimOutput() {
  char buf[512];
  ssize_t n = 0;
  // Bounded per wake-up: a chatty simulator cannot hold the loop.
  for (int i = 0; i < 8 && (n = read(sim_out_fd_, buf, sizeof buf)) > 0; ++i) sim_out_.append(buf, size_t(n));
  if (n == 0) {  // simulator closed stdout (exited): stop watching
    loop_.RemovePollGroup(sim_out_group_);
    close(sim_out_fd_);
    sim_out_fd_ = -1;
  }
  size_t nl;
  while ((nl = sim_out_.find('\n')) != std::string::npos) {
    std::string line = sim_out_.substr(0, nl);
    sim_out_.erase(0, nl + 1);
    if (line.rfind("listening", 0) == 0 && !actors_started_) {
      display_("cozesim    listening on 127.0.0.1:" + std::to_string(sim_port_));
      StartActors();
    }
  }
  if (sim_out_.size() > 4096) sim_out_.clear();
}

void Launcher::StartActors() {
  if (actors_started_) return;
  actors_started_ = true;
  for (const auto& a : ParseActors(config_.actors)) {
    watch_->Know(a.name);
    supervisor_->Add({a.name, ActorArgv(config_, a, config_path_), true, a.kind, false});
  }
  supervisor_->StartAll(bus::Clock::now());
  Reschedule();
  if (ready_) ready_();
}

void Launcher::OnBusNews() {
  BusWatch::News news = watch_->Take();
  const TimePoint now = bus::Clock::now();
  if (news.echo) supervisor_->OnBusEcho(*news.echo);
  for (const auto& [name, beat] : news.beats) supervisor_->OnHeartbeat(name, beat.at, beat.pid);
  supervisor_->Tick(now);
  Reschedule();
}

void Launcher::OnSignal() {
  signalfd_siginfo si;
  while (read(sigchld_fd_, &si, sizeof si) == sizeof si) {
  }
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    supervisor_->OnExit(pid, code, bus::Clock::now());
  }
  Reschedule();
  if (supervisor_->stopping() && supervisor_->AllStopped() && done_) {
    auto done = std::move(done_);
    done_ = nullptr;
    done();
  }
}

void Launcher::Reschedule() {
  if (tick_timer_) loop_.CancelTimer(tick_timer_);
  tick_timer_ = 0;
  auto next = supervisor_->NextDeadline();
  if (!next) return;
  auto delay = std::max(bus::Clock::duration(0), *next - bus::Clock::now());
  tick_timer_ = loop_.AddOneShot(delay + std::chrono::milliseconds(1), [this] {
    tick_timer_ = 0;
    supervisor_->Tick(bus::Clock::now());
    Reschedule();
  });
}

void Launcher::Stop(std::function<void()> done) {
  done_ = std::move(done);
  supervisor_->StopAll(bus::Clock::now());
  Reschedule();
  if (supervisor_->AllStopped() && done_) {
    auto d = std::move(done_);
    done_ = nullptr;
    d();
  }
}

}  // namespace vb::launcher
