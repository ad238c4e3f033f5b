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
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "actors/common/wav.h"
#include "bus/actor_main.h"
#include "bus/signals.h"
#include "tools/vb/commands.h"
#include "tools/vb/dialog_view.h"
#include "tools/vb/first_run.h"
#include "tools/vb/help.h"
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

}  // namespace

int Demo(const Args& in) {
  if (WantsHelp(in)) return PrintHelp("demo");
  std::map<std::string, std::string> opt;
  Args rest;
  std::string error;
  if (!ParseArgs(in, {{"--config", true}, {"--say", true}, {"--out", true}, {"--timeout", true}, {"--turns", true}},
                 &opt, &rest, &error))
    return UsageError("demo", error);
  if (!rest.empty()) return UsageError("demo", "unexpected argument '" + rest[0] + "'");
  auto get = [&](const char* k, const char* def) { return opt.count(k) ? opt[k] : std::string(def); };
  std::string config;
  if (Status st = ResolveConfig(get("--config", "config/demo.yaml"), &config); !st.ok()) {
    std::cerr << "vb demo: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  const std::string question = get("--say", "What time is it?");
  char cwd[PATH_MAX];
  std::string out = get("--out", "vb-demo-out");
  if (out[0] != '/') out = std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + out;
  const double timeout_s = std::atof(get("--timeout", "120").c_str());
  const int turns_wanted = std::atoi(get("--turns", "1").c_str());
  if (!(timeout_s > 0) || turns_wanted < 1)
    return UsageError("demo", "--timeout needs a number of seconds > 0 and --turns a count ≥ 1");
  mkdir(out.c_str(), 0755);
  setenv("VB_RUN_DIR", out.c_str(), 1);
  ExportConfigDir(config);
  // Each demo's dashboard on a port of its own unless told: demos (and
  // their tests) may run side by side.
  if (!getenv("VB_GATEWAY_PORT")) setenv("VB_GATEWAY_PORT", std::to_string(launcher::FreeLoopbackPort()).c_str(), 1);
  unlink((out + "/reply.wav").c_str());

  // A throwaway token for the local simulator (never a real one).
  if (Status st = WriteSimulatorToken(out + "/sim-token"); !st.ok()) {
    std::cerr << "vb demo: " << st.message() << "\n";
    return 1;
  }
  if (Status st = SpeakQuestion(question, out + "/question.wav"); !st.ok()) {
    std::cerr << "vb demo: " << st.message() << "\n";
    return 1;
  }

  bus::BusConfig bus;
  launcher::LauncherConfig lc;
  if (Status st = launcher::LoadLaunchConfig(config, &bus, &lc); !st.ok()) {
    std::cerr << "vb demo: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  SetLogIdentity("vb");
  StopSignals signals;

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
    auto finish = [&](int code, const std::string& why) {
      if (stopping) return;
      stopping = true;
      rc = code;
      failure = why;
      launcher.Stop([&] { loop.Stop(); });
    };
    DialogView view(node, true, Line);
    node.Subscribe<v1::PlaybackEvent>(
        bus::topics::kPlaybackEvent,
        [&](const auto& m) {
          if (m.msg.kind() != v1::PlaybackEvent::DRAINED) return;
          if (++turns_done >= turns_wanted) finish(0, "");
        },
        "*");
    if (Status st = node.Connect(); !st.ok()) {
      std::cerr << "vb demo: " << st.message() << "\n";
      return 1;
    }
    loop.AddFd(signals.fd(), POLLIN, [&](short) {
      if (signals.Take()) finish(130, "interrupted");
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
  if (rc != 0) {
    std::cerr << "vb demo: failed: " << failure << (lc.log_dir.empty() ? "" : "; see the logs in " + lc.log_dir)
              << "\n";
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
