// The command line as a user meets it (issue 17 items 1 and 3).
//   - every `vb` subcommand and every vb-* program answers --help on stdout
//     with exit 0; `vb help TOPIC` for every topic;
//   - an option-looking argument is an error (64), never a file name or a
//     value: `vb keygen --nope` writes no file, `vb run --bogus` starts nothing;
//   - man pages were generated for vb and every program, from that text;
//   - the systemd units pass `systemd-analyze verify`;
//   - `vb run config/demo.yaml` from an empty folder, nothing prepared, on a
//     terminal: every actor up, the dialog shown live, the dashboard served;
//   - a real config missing its token, bot id and sound cards stops at once
//     with ONE summary naming all of them (exit 78), nothing started, no secret.
// Every wait is bounded; every process is the test's own and stopped by pid.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <regex>

#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;

std::string BinDir() { return std::getenv("VB_BIN_DIR") ? std::getenv("VB_BIN_DIR") : "."; }
std::string BuildDir() { return std::getenv("VB_BUILD_DIR") ? std::getenv("VB_BUILD_DIR") : BinDir() + "/.."; }

// Runs argv in folder `cwd` (through sh: RunCommand has no cwd).
int RunIn(const std::string& cwd, const std::vector<std::string>& argv, std::string* out,
          std::chrono::milliseconds timeout = 30000ms) {
  std::string cmd = "cd '" + cwd + "' && exec";
  for (const auto& a : argv) cmd += " '" + a + "'";
  return RunCommand({"/bin/sh", "-c", cmd}, out, timeout);
}

const std::vector<std::string> kSubcommands = {"run",  "demo",      "status",           "ptt",    "say", "speak",
                                               "mode", "interrupt", "new-conversation", "keygen", "help"};
const std::vector<std::string> kTopics = {"run",       "demo",
                                          "status",    "sniff",
                                          "ptt",       "say",
                                          "speak",     "mode",
                                          "interrupt", "new-conversation",
                                          "keygen",    "print-default-config",
                                          "help",      "config",
                                          "modes",     "files",
                                          "systemd",   "exit-codes"};

std::vector<std::string> Programs() {
  std::vector<std::string> out;
  DIR* d = opendir(BinDir().c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    // bench/'s measuring tools (vb-*-bench, vb-*-eval) are not shipped programs.
    auto ends = [&](const std::string& suffix) {
      return n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends("-bench") || ends("-eval")) continue;
    if (n.rfind("vb-", 0) == 0 && access((BinDir() + "/" + n).c_str(), X_OK) == 0) out.push_back(n);
  }
  closedir(d);
  return out;
}

TEST(CliHelp, EverySubcommandAnswersHelpOnStdout) {
  for (const auto& cmd : kSubcommands) {
    for (const char* flag : {"--help", "-h"}) {
      std::string out;
      // stdout only: help is not an error.
      EXPECT_EQ(RunCommand({"/bin/sh", "-c", "'" + Bin("vb") + "' " + cmd + " " + flag + " 2>/dev/null"}, &out), 0)
          << cmd << " " << flag;
      EXPECT_NE(out.find("usage: vb " + cmd), std::string::npos) << cmd << " " << flag << ":\n" << out;
    }
  }
  std::string out;
  EXPECT_EQ(RunCommand({Bin("vb"), "--help"}, &out), 0);
  for (const auto& t : kTopics) EXPECT_NE(out.find("  " + t + " "), std::string::npos) << t << " not listed:\n" << out;
  EXPECT_EQ(RunCommand({Bin("vb"), "--print-default-config", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: vb --print-default-config"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({Bin("vb"), "sniff", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("vb-sniff"), std::string::npos) << out;
}

TEST(CliHelp, HelpTopics) {
  for (const auto& t : kTopics) {
    std::string out;
    EXPECT_EQ(RunCommand({Bin("vb"), "help", t}, &out), 0) << t;
    EXPECT_NE(out.find("usage:"), std::string::npos) << t << ":\n" << out;
  }
  std::string out;
  EXPECT_EQ(RunCommand({Bin("vb"), "help", "config"}, &out), 0);
  EXPECT_NE(out.find("${NAME:-DEFAULT}"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({Bin("vb"), "help", "no-such-topic"}, &out), 64);
  EXPECT_NE(out.find("no topic 'no-such-topic'"), std::string::npos) << out;
}

TEST(CliHelp, EveryProgramAnswersHelpOnStdout) {
  auto programs = Programs();
  ASSERT_GE(programs.size(), 10u) << "no vb-* programs in " << BinDir();
  for (const auto& p : programs) {
    std::string out;
    EXPECT_EQ(RunCommand({"/bin/sh", "-c", "'" + Bin(p) + "' --help 2>/dev/null"}, &out, 10000ms), 0) << p << ":\n"
                                                                                                      << out;
    EXPECT_NE(out.find("usage"), std::string::npos) << p << " --help printed no usage on stdout:\n" << out;
  }
}

TEST(CliArgs, AnOptionIsNeverAFileName) {
  TempDir dir;
  std::string out;
  // keygen once wrote a secret key to a file named --help.
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "keygen", "--help"}, &out), 0) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "keygen", "--nope"}, &out), 64) << out;
  EXPECT_NE(out.find("unknown option '--nope'"), std::string::npos) << out;
  struct stat st;
  EXPECT_NE(stat(dir.File("--help").c_str(), &st), 0) << "vb keygen --help wrote a file";
  EXPECT_NE(stat(dir.File("--nope").c_str(), &st), 0) << "vb keygen --nope wrote a file";
  // vb run: an unknown option starts nothing; a config that is an option is refused.
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "run", "--bogus"}, &out), 64) << out;
  EXPECT_NE(out.find("unknown option '--bogus'"), std::string::npos) << out;
  EXPECT_EQ(out.find("started"), std::string::npos) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "run", "--config", "--quiet"}, &out), 64) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "demo", "--out", "--say"}, &out), 64) << out;
  EXPECT_NE(stat(dir.File("--say").c_str(), &st), 0);
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "status", "--config", "--duration"}, &out), 64) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "say", "--nope"}, &out), 64) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "mode", "--fast"}, &out), 64) << out;
  EXPECT_NE(RunIn(dir.path(), {Bin("vb"), "sniff", "echo", "--nope"}, &out), 0) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb-capture"), "--config", "--help"}, &out), 64) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb-broker"), "--config", "--help"}, &out), 64) << out;
  EXPECT_EQ(RunIn(dir.path(), {Bin("vb"), "frobnicate"}, &out), 64) << out;
  DIR* d = opendir(dir.path().c_str());
  int files = 0;
  while (dirent* e = readdir(d)) files += e->d_name[0] != '.';
  closedir(d);
  EXPECT_EQ(files, 0) << "a command wrote into the current folder";
}

TEST(CliDocs, ManPagesComeFromTheHelpText) {
  const std::string man = BuildDir() + "/man/";
  std::string vb = ReadFile(man + "vb.1");
  ASSERT_NE(vb.find(".TH VB 1"), std::string::npos) << man << "vb.1 missing or not a man page";
  for (const auto& t : kTopics) EXPECT_NE(vb.find(".SH \"" + t + "\""), std::string::npos) << t;
  for (const char* p : {"vb-broker", "vb-capture", "vb-session", "vb-gateway", "vb-control", "vb-cozesim"}) {
    std::string page = ReadFile(man + p + ".1");
    EXPECT_NE(page.find(".SH NAME"), std::string::npos) << p << ".1 missing";
    EXPECT_NE(page.find("usage"), std::string::npos) << p << ".1 lacks its --help text";
  }
  // The page renders (man -l), when man is installed.
  if (access("/usr/bin/man", X_OK) == 0) {
    std::string out;
    EXPECT_EQ(RunCommand({"/bin/sh", "-c", "MANWIDTH=100 man -l '" + man + "vb.1' 2>&1 | cat"}, &out), 0);
    EXPECT_NE(out.find("vb run"), std::string::npos) << out.substr(0, 2000);
  }
}

TEST(CliDocs, SystemdUnitsVerify) {
  if (access("/usr/bin/systemd-analyze", X_OK) != 0 && access("/bin/systemd-analyze", X_OK) != 0)
    GTEST_SKIP() << "systemd-analyze is not installed: the units are not verified here";
  const std::string units = BuildDir() + "/deploy/systemd-build/";
  std::string out;
  // Instances of the template stand for it; systemd-analyze also checks
  // that every ExecStart binary exists (this build's).
  int code = RunCommand({"/bin/sh", "-c",
                         "cd '" + units +
                             "' && systemd-analyze verify --man=no ./voicebus.service "
                             "./voicebus-broker.service ./voicebus-actor@session.service "
                             "./voicebus-actor@capture.service ./voicebus-actors.target 2>&1"},
                        &out);
  EXPECT_EQ(code, 0) << out;
  // A warning (unknown key, bad value) is a failure too.
  EXPECT_EQ(out, "") << out;
  std::string svc = ReadFile(units + "voicebus.service");
  for (const char* key : {"Type=notify", "WatchdogSec=", "User=voicebus", "SupplementaryGroups=audio",
                          "ProtectSystem=strict", "NoNewPrivileges=yes", "RestartPreventExitStatus=78"})
    EXPECT_NE(svc.find(key), std::string::npos) << key;
  std::string users = ReadFile(SourceDir() + "/deploy/systemd/voicebus.sysusers");
  EXPECT_NE(users.find("m voicebus audio"), std::string::npos) << users;
}

// A process on a pseudo-terminal (so `vb run` thinks a person watches).
class PtyChild {
 public:
  bool Start(const std::vector<std::string>& argv, const std::string& cwd, const std::vector<std::string>& env) {
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      if (chdir(cwd.c_str()) != 0) _exit(126);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      execv(av[0], av.data());
      _exit(127);
    }
    return pid_ > 0;
  }
  ~PtyChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // Reads until `needle` is in the output or `timeout` passes.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_.find(needle) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, int(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return out_.find(needle) != std::string::npos;  // the child closed the terminal
      out_.append(buf, size_t(n));
    }
    return true;
  }
  // SIGTERM, then its exit code within `timeout` (INT_MIN if none).
  int Stop(std::chrono::milliseconds timeout) {
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      WaitFor("\x01never\x01", 50ms);  // drain the terminal while waiting
    }
    return INT_MIN;
  }
  const std::string& out() const { return out_; }
  int pid() const { return pid_; }

 private:
  int pid_ = -1, fd_ = -1;
  std::string out_;
};

// GET / on 127.0.0.1:port; the status line.
std::string HttpStatus(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line;
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(s, req, sizeof req - 1) == ssize_t(sizeof req - 1)) {
      char buf[256];
      ssize_t n = read(s, buf, sizeof buf);
      if (n > 0) line.assign(buf, size_t(n));
    }
  }
  close(s);
  return line.substr(0, line.find('\r'));
}

TEST(FirstRun, DemoConfigFromAnEmptyFolderOnATerminal) {
  TempDir cwd, xdg;
  chmod(xdg.path().c_str(), 0700);
  const int port = FreeTcpPort();
  PtyChild vb;
  const std::string xdg_env = "XDG_RUNTIME_DIR=" + xdg.path(), port_env = "VB_GATEWAY_PORT=" + std::to_string(port);
  unsetenv("VB_RUN_DIR");
  ASSERT_TRUE(vb.Start({Bin("vb"), "run", "config/demo.yaml"}, cwd.path(), {xdg_env, port_env}));
  const std::string run_dir = xdg.path() + "/voicebus";
  ASSERT_TRUE(vb.WaitFor("all 9 actors up", 60000ms)) << vb.out();
  EXPECT_NE(vb.out().find("made a throwaway token for the simulator in " + run_dir + "/sim-token"), std::string::npos)
      << vb.out();
  EXPECT_NE(vb.out().find("runtime folder " + run_dir), std::string::npos) << vb.out();
  struct stat st;
  ASSERT_EQ(stat(run_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // The dialog, live: the spoken question heard and answered.
  EXPECT_TRUE(vb.WaitFor("you:   what time is it", 60000ms)) << vb.out();
  EXPECT_TRUE(vb.WaitFor("agent: It is", 30000ms)) << vb.out();
  EXPECT_TRUE(vb.WaitFor("[speaking]", 30000ms)) << vb.out();
  // The dashboard is served where vb run said.
  EXPECT_NE(vb.out().find("dashboard http://127.0.0.1:" + std::to_string(port) + "/"), std::string::npos) << vb.out();
  EXPECT_EQ(HttpStatus(port).substr(9, 3), "200") << HttpStatus(port);
  // The other commands find the same runtime folder: a typed question from another folder is taken.
  TempDir elsewhere;
  std::string said;
  EXPECT_EQ(RunIn(elsewhere.path(),
                  {"/usr/bin/env", "-u", "VB_RUN_DIR", xdg_env, Bin("vb"), "say", "--config", "config/demo.yaml",
                   "tell me a story"},
                  &said),
            0)
      << said;
  EXPECT_NE(said.find("accepted by session"), std::string::npos) << said;
  // Without --config: the config of the `vb run` going (its endpoint is
  // ${VB_RUN_DIR}/bus, not the built-in default).
  said.clear();
  EXPECT_EQ(RunIn(elsewhere.path(), {"/usr/bin/env", "-u", "VB_RUN_DIR", xdg_env, Bin("vb"), "say", "hello"}, &said), 0)
      << said;
  EXPECT_NE(said.find("accepted by session"), std::string::npos) << said;
  said.clear();
  EXPECT_EQ(RunIn(elsewhere.path(), {"/usr/bin/env", "-u", "VB_RUN_DIR", xdg_env, Bin("vb"), "status"}, &said), 0)
      << said;
  EXPECT_NE(said.find("session "), std::string::npos) << said;
  const std::string token = ReadFile(run_dir + "/sim-token");
  ASSERT_GT(token.size(), 5u);
  EXPECT_EQ(vb.out().find(token.substr(0, token.size() - 1)), std::string::npos) << "the simulator's token was shown";
  EXPECT_EQ(vb.Stop(15000ms), 0) << vb.out();
  EXPECT_NE(vb.out().find("all stopped"), std::string::npos) << vb.out();
  // Its note in the runtime folder went with it.
  said.clear();
  EXPECT_EQ(RunIn(elsewhere.path(), {"/usr/bin/env", "-u", "VB_RUN_DIR", xdg_env, Bin("vb"), "say", "hello"}, &said),
            69)
      << said;
  // Nothing was written where the user stood.
  DIR* d = opendir(cwd.path().c_str());
  int files = 0;
  while (dirent* e = readdir(d)) files += e->d_name[0] != '.';
  closedir(d);
  EXPECT_EQ(files, 0);
}

TEST(FirstRun, DashboardPortTakenIsSaidBeforeAnythingStarts) {
  TempDir dir;
  int port = 0;
  const int s = ListenOnLoopback(&port);
  ASSERT_GE(s, 0);
  std::string out;
  const int code =
      RunCommand({"/usr/bin/env", "VB_RUN_DIR=" + dir.File("run"), "VB_GATEWAY_PORT=" + std::to_string(port), Bin("vb"),
                  "run", SourceDir() + "/config/demo.yaml"},
                 &out, 20000ms);
  close(s);
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find("no free port for the dashboard: "), std::string::npos) << out;
  EXPECT_NE(out.find("gateway.port: 127.0.0.1:" + std::to_string(port) + " is taken"), std::string::npos) << out;
  EXPECT_EQ(out.find("started (pid"), std::string::npos) << out;
}

TEST(FirstRun, RealConfigMissingThingsIsOneSummary) {
  TempDir dir;
  dir.Write("secret", "tok-SECRET-123\n");
  // The shipped default.yaml, with sound cards that cannot exist.
  std::string cfg = ReadFile(SourceDir() + "/config/default.yaml");
  cfg = std::regex_replace(cfg, std::regex("device: default"), "device: hw:97");
  dir.Write("real.yaml", "# a real config\n" + cfg);
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  int code = RunCommand({"/usr/bin/env", "-u", "COZE_API_TOKEN", "-u", "COZE_BOT_ID", "VB_RUN_DIR=" + dir.File("run"),
                         Bin("vb"), "run", dir.File("real.yaml")},
                        &out, 20000ms);
  EXPECT_EQ(code, 78) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "the summary must come at once";
  EXPECT_NE(out.find("4 things are missing"), std::string::npos) << out;
  EXPECT_NE(out.find("no Coze bot id: " + dir.File("real.yaml") + ":"), std::string::npos) << out;
  EXPECT_NE(out.find("export COZE_BOT_ID="), std::string::npos) << out;
  EXPECT_NE(out.find("no Coze token"), std::string::npos) << out;
  EXPECT_NE(out.find("export COZE_API_TOKEN="), std::string::npos) << out;
  EXPECT_NE(out.find("no microphone for capture"), std::string::npos) << out;
  EXPECT_NE(out.find("no speaker for playback"), std::string::npos) << out;
  EXPECT_NE(out.find("hw:97"), std::string::npos) << out;
  EXPECT_EQ(out.find("started (pid"), std::string::npos) << "something was started:\n" << out;
  EXPECT_EQ(out.find("ALSA lib"), std::string::npos) << "alsa-lib's noise buries the summary:\n" << out;
  // With the token and bot id given (the token in a file), only the sound cards remain, and the token is never shown.
  dir.Write("real2.yaml",
            std::regex_replace(ReadFile(dir.File("real.yaml")), std::regex("mode: continuous\n  output_codec"),
                               "mode: continuous\n  token_file: " + dir.File("secret") + "\n  output_codec"));
  code = RunCommand(
      {"/usr/bin/env", "COZE_BOT_ID=7001", "VB_RUN_DIR=" + dir.File("run"), Bin("vb"), "run", dir.File("real2.yaml")},
      &out, 20000ms);
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find("2 things are missing"), std::string::npos) << out;
  EXPECT_EQ(out.find("Coze"), std::string::npos) << out;
  EXPECT_EQ(out.find("SECRET"), std::string::npos) << out;
}

}  // namespace
}  // namespace vb::testing
