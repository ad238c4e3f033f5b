// vb demo: the main job. Runs the configured pipeline (by default the local
// Coze simulator with WAV in and out), speaks a question into it, shows the
// dialog live — state changes, what the agent heard, what it answers — and
// stops once the reply has been played, naming the WAV file it is in.
//
//   vb demo [--config config/demo.yaml] [--say "What time is it?"]
//           [--out DIR] [--timeout SEC] [--turns N]
//
// Sets for the config: ${VB_RUN_DIR} (the output directory, absolute),
// ${VB_SIM_PORT} (when the launcher starts the simulator). The question is
// synthesised with espeak-ng into $VB_RUN_DIR/question.wav (after 1 s of silence); a random token for
// the simulator is written to $VB_RUN_DIR/sim-token.
#include <signal.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>
#include <random>

#include "actors/common/wav.h"
#include "bus/actor_main.h"
#include "tools/vb/commands.h"
#include "tools/vb/launcher.h"

namespace vb::cli {
namespace {

void Line(const std::string& s) {
  std::string l = s + "\n";
  fwrite(l.data(), 1, l.size(), stdout);
  fflush(stdout);
}

std::string ReadSmall(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s, '\0');
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// What each thread of a process is doing, from /proc: state letter and the
// kernel function it waits in, counted ("S do_epoll_wait ×1, S futex_wait ×3").
// For a demo that timed out: a hung process and a stopped one look different.
std::string ThreadStates(int pid) {
  std::map<std::string, int> seen;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::string stat = ReadSmall(e.path().string() + "/stat");
    size_t close = stat.rfind(')');
    std::string state = close != std::string::npos && close + 2 < stat.size() ? stat.substr(close + 2, 1) : "?";
    std::string wchan = ReadSmall(e.path().string() + "/wchan");
    ++seen[state + " " + (wchan.empty() || wchan == "0" ? "running" : wchan)];
  }
  std::string out;
  for (const auto& [what, n] : seen) out += (out.empty() ? "" : ", ") + what + " ×" + std::to_string(n);
  return out.empty() ? "gone" : out;
}

std::string Absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char cwd[PATH_MAX];
  return std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + p;
}

// Runs a program to completion; returns its exit code.
int Exec(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO);
    execvp(av[0], av.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

const char* StateWord(v1::DialogStateKind s) {
  switch (s) {
    case v1::STATE_IDLE: return "idle";
    case v1::STATE_LISTENING: return "listening";
    case v1::STATE_THINKING: return "thinking";
    case v1::STATE_SPEAKING: return "speaking";
    case v1::STATE_OFFLINE: return "offline";
    default: return "?";
  }
}

}  // namespace

int Demo(const Args& in) {
  Args args = in;
  std::string config = TakeOption(&args, "--config", "config/demo.yaml");
  std::string question = TakeOption(&args, "--say", "What time is it?");
  std::string out = Absolute(TakeOption(&args, "--out", "vb-demo-out"));
  double timeout_s = std::atof(TakeOption(&args, "--timeout", "120").c_str());
  int turns_wanted = std::atoi(TakeOption(&args, "--turns", "1").c_str());
  if (!args.empty()) {
    std::cerr << "usage: vb demo [--config FILE] [--say TEXT] [--out DIR] [--timeout SEC] [--turns N]\n";
    return 64;
  }
  mkdir(out.c_str(), 0755);
  setenv("VB_RUN_DIR", out.c_str(), 1);
  unlink((out + "/reply.wav").c_str());

  // A throwaway token for the local simulator (never a real one).
  {
    std::random_device rd;
    char token[40];
    snprintf(token, sizeof token, "demo-%08x%08x", rd(), rd());
    umask(077);
    std::ofstream(out + "/sim-token") << token << "\n";
    umask(022);
  }
  if (Exec({"espeak-ng", "-v", "en-us", "-s", "150", "-w", out + "/question.wav", question}) != 0) {
    std::cerr << "vb demo: espeak-ng could not synthesise the question (is it installed? tools/bootstrap.sh)\n";
    return 1;
  }
  {
    // The speaker waits a second, as a person would: espeak-ng starts within
    // 2 ms, and capture plays the file from the moment vb-afe listens, while
    // the actors after it may still be joining the bus (once seen: "what
    // time is it" heard as "ta eat").
    audio::PcmBuffer q;
    if (Status st = audio::ReadWav(out + "/question.wav", &q); !st.ok()) {
      std::cerr << "vb demo: " << st.message() << "\n";
      return 1;
    }
    q.samples.insert(q.samples.begin(), size_t(q.sample_rate) * q.channels, int16_t(0));
    if (Status st = audio::WriteWav(out + "/question.wav", q); !st.ok()) {
      std::cerr << "vb demo: " << st.message() << "\n";
      return 1;
    }
  }

  bus::BusConfig bus;
  launcher::LauncherConfig lc;
  if (Status st = launcher::LoadLaunchConfig(config, &bus, &lc); !st.ok()) {
    std::cerr << "vb demo: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  SetLogIdentity("vb");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

  Line("vb demo: \"" + question + "\" → " + config + (lc.log_dir.empty() ? "" : " (actor logs in " + lc.log_dir + ")"));
  int rc = 1;
  std::string failure = "timed out";
  zmq::context_t zctx(1);
  {
    bus::Loop loop;
    bus::Node node(zctx, loop, "vb-demo", "-", bus);
    launcher::Launcher launcher(loop, node, config, lc, [](const std::string& l) { Line("  " + l); });
    bool stopping = false;
    int turns_done = 0;
    std::string agent_text;
    v1::DialogStateKind last_state = v1::STATE_UNSPECIFIED;
    auto finish = [&](int code, const std::string& why) {
      if (stopping) return;
      stopping = true;
      rc = code;
      failure = why;
      launcher.Stop([&] { loop.Stop(); });
    };
    node.Subscribe<v1::DialogState>(bus::topics::kDialogState, [&](const auto& m) {
      if (m.msg.state() == last_state) return;
      last_state = m.msg.state();
      Line(std::string("  [") + StateWord(m.msg.state()) + "] " + m.msg.reason());
    }, "*");
    node.Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [&](const auto& m) {
      const auto& e = m.msg;
      if (e.has_user_transcript() && e.user_transcript().final()) Line("you:   " + e.user_transcript().text());
      if (e.has_agent_text()) {
        if (e.agent_text().final()) {
          Line("agent: " + e.agent_text().text());
          agent_text.clear();
        } else {
          agent_text += e.agent_text().text();
        }
      }
      if (e.has_tool_call()) Line("agent calls " + e.tool_call().name() + "(" + e.tool_call().arguments_json() + ")");
      if (e.has_error()) Line("session error " + std::to_string(e.error().code()) + ": " + e.error().message());
      if (e.has_turn_ended() && e.turn_ended().outcome() == v1::TurnEnded::FAILED)
        Line("turn failed: " + e.turn_ended().error());
    }, "*");
    node.Subscribe<v1::PlaybackEvent>(bus::topics::kPlaybackEvent, [&](const auto& m) {
      if (m.msg.kind() != v1::PlaybackEvent::DRAINED) return;
      if (++turns_done >= turns_wanted) finish(0, "");
    }, "*");
    if (Status st = node.Connect(); !st.ok()) {
      std::cerr << "vb demo: " << st.message() << "\n";
      return 1;
    }
    loop.AddFd(sfd, POLLIN, [&](short) {
      signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
      }
      finish(130, "interrupted");
    });
    loop.AddOneShot(std::chrono::nanoseconds(int64_t(timeout_s * 1e9)), [&] {
      // Before stopping them: what every process was doing.
      for (const auto& c : launcher.supervisor().children())
        if (c.pid > 0) Line("  " + c.spec.name + " threads: " + ThreadStates(c.pid));
      finish(1, "no reply was played within " + std::to_string(int(timeout_s)) + " s");
    });
    // An actor with a config error cannot come back: give up at once.
    loop.AddTimer(std::chrono::milliseconds(200), [&] {
      if (launcher.config_failed()) finish(kExitConfig, "an actor has a config error (see above)");
    });
    if (Status st = launcher.Start(); !st.ok()) {
      std::cerr << "vb demo: " << st.message() << "\n";
      return 1;
    }
    loop.Run();
  }
  zctx.shutdown();
  close(sfd);
  if (rc != 0) {
    std::cerr << "vb demo: failed: " << failure << (lc.log_dir.empty() ? "" : "; see the logs in " + lc.log_dir) << "\n";
    return rc;
  }
  audio::PcmBuffer reply;
  std::string path = out + "/reply.wav";
  if (audio::ReadWav(path, &reply).ok() && reply.frames() > 0) {
    char secs[32];
    snprintf(secs, sizeof secs, "%.1f", double(reply.frames()) / reply.sample_rate);
    Line("vb demo: the agent's reply is in " + path + " (" + secs + " s)");
  } else {
    Line("vb demo: done (the configured sink did not write " + path + ")");
  }
  return 0;
}

}  // namespace vb::cli
