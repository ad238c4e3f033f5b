// Real processes for the Supervisor (see launcher.h).
#include "tools/vb/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>

namespace vb::launcher {

void LauncherConfig::Declare(config::Section& s) {
  s.Key("actors", &actors, {}, "actor instances to run, in start order: NAME or NAME:KIND (binary vb-KIND)");
  s.Key("broker", &broker, true, "start vb-broker (false: use a broker running elsewhere)");
  s.Key("simulator", &simulator, false,
        "start vb-cozesim on a free 127.0.0.1 port first; actors see it as ${VB_SIM_PORT}");
  s.Key("simulator_args", &simulator_args, {}, "extra vb-cozesim arguments");
  s.Key("log_dir", &log_dir, std::string(""), "write each child's log to DIR/NAME.log (empty: this terminal)");
  s.Key("restart_initial_ms", &restart_initial_ms, 1000, {100, 60000}, "first restart delay after a crash");
  s.Key("restart_max_ms", &restart_max_ms, 32000, {100, 600000}, "restart delay doubles up to this");
  s.Key("healthy_reset_s", &healthy_reset_s, 60, {1, 3600}, "a child up this long restarts from the first delay again");
  s.Key("heartbeat_timeout_ms", &heartbeat_timeout_ms, 3000, {500, 60000},
        "an actor silent this long is killed and restarted");
  s.Finish();
  if (restart_max_ms < restart_initial_ms) s.Error("restart_max_ms", "must be ≥ restart_initial_ms");
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

Status LoadLaunchConfig(const std::string& path, bus::BusConfig* bus, LauncherConfig* launcher) {
  config::File file;
  if (Status st = file.Load(path); !st.ok()) return st;
  auto report = file.NewReport();
  {
    auto s = file.Get("bus", report);
    bus->Declare(s);
    s.Finish();
  }
  std::vector<std::string> devices;
  {
    auto s = file.Get("devices", report);
    bus::DeclareDevices(s, &devices);
  }
  {
    auto s = file.Get("launcher", report);
    launcher->Declare(s);
  }
  std::vector<std::string> known = {"bus", "devices", "launcher", "simulator"};
  for (const auto& a : ParseActors(launcher->actors)) known.push_back(a.name);
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

namespace {

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

}  // namespace

class Launcher::Ops : public ProcessOps {
 public:
  explicit Ops(Launcher& l) : l_(l) {}
  int Spawn(const ChildSpec& spec) override {
    int out_pipe[2] = {-1, -1};
    bool is_sim = spec.name == "cozesim";
    if (is_sim && pipe2(out_pipe, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      setpgid(0, 0);  // own group: terminal Ctrl-C goes to vb only
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (!l_.config_.log_dir.empty()) {
        std::string path = l_.config_.log_dir + "/" + spec.name + ".log";
        int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
          dup2(fd, STDERR_FILENO);
          if (!is_sim) dup2(fd, STDOUT_FILENO);
          close(fd);
        }
      }
      if (is_sim) dup2(out_pipe[1], STDOUT_FILENO);
      std::vector<char*> argv;
      for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      fprintf(stderr, "vb: cannot run %s: %s\n", argv[0], strerror(errno));
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
    : loop_(loop), node_(node), config_path_(std::move(config_path)), config_(std::move(config)),
      display_(std::move(display)) {
  ops_ = std::make_unique<Ops>(*this);
  SupervisorPolicy policy;
  policy.initial = Ms(config_.restart_initial_ms);
  policy.max = Ms(config_.restart_max_ms);
  policy.healthy_reset = Ms(int64_t(config_.healthy_reset_s) * 1000);
  policy.heartbeat_timeout = Ms(config_.heartbeat_timeout_ms);
  supervisor_ = std::make_unique<Supervisor>(*ops_, policy, [this](const SupervisorEvent& e) {
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
        snprintf(buf, sizeof buf, "%-10s restarting in %.1f s", n, double(e.delay.count()) / 1000.0);
        break;
      case SupervisorEvent::kConfigError:
        config_failed_ = true;
        snprintf(buf, sizeof buf, "%-10s config error (exit 78): not restarted — fix the config", n);
        break;
      case SupervisorEvent::kHung: snprintf(buf, sizeof buf, "%-10s no heartbeat: killing it", n); break;
      case SupervisorEvent::kSpawnFailed: snprintf(buf, sizeof buf, "%-10s could not be started", n); break;
      case SupervisorEvent::kStopped: snprintf(buf, sizeof buf, "%-10s stopped", n); break;
    }
    display_(buf);
  });

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  sigchld_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  loop_.AddFd(sigchld_fd_, POLLIN, [this](short) { OnSignal(); });
  node_.Subscribe<v1::Heartbeat>(bus::topics::kHeartbeat, [this](const bus::Received<v1::Heartbeat>& m) {
    if (m.msg.state() == v1::Heartbeat::STOPPING) return;
    supervisor_->OnHeartbeat(m.msg.actor(), bus::Clock::now());
    Reschedule();
  }, "*");
}

Launcher::~Launcher() {
  if (sigchld_fd_ >= 0) close(sigchld_fd_);
  if (sim_out_fd_ >= 0) close(sim_out_fd_);
}

Status Launcher::Start(std::function<void()> ready) {
  ready_ = std::move(ready);
  const std::string bin = BinDir();
  if (!config_.log_dir.empty()) mkdir(config_.log_dir.c_str(), 0755);
  if (config_.broker) supervisor_->Add({"broker", {bin + "/vb-broker", "--config", config_path_}, false});
  if (config_.simulator) {
    sim_port_ = FreeLoopbackPort();
    if (sim_port_ == 0) return Status::Unavailable("no free loopback port for the simulator");
    setenv("VB_SIM_PORT", std::to_string(sim_port_).c_str(), 1);
    std::vector<std::string> argv = {bin + "/vb-cozesim", "--port", std::to_string(sim_port_)};
    argv.insert(argv.end(), config_.simulator_args.begin(), config_.simulator_args.end());
    supervisor_->Add({"cozesim", argv, false});
  }
  supervisor_->StartAll(bus::Clock::now());
  if (!config_.simulator) StartActors();
  Reschedule();
  return Status::Ok();
}

void Launcher::OnSimOutput() {
  char buf[512];
  ssize_t n;
  while ((n = read(sim_out_fd_, buf, sizeof buf)) > 0) sim_out_.append(buf, size_t(n));
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
  const std::string bin = BinDir();
  for (const auto& a : ParseActors(config_.actors))
    supervisor_->Add({a.name, {bin + "/vb-" + a.kind, "--config", config_path_, "--name", a.name}, true});
  supervisor_->StartAll(bus::Clock::now());
  Reschedule();
  if (ready_) ready_();
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
