// `vb run` with real processes (issue 12): the broker and actors are killed
// with SIGKILL, and what a user would notice is checked through the bus
// itself — which actors heartbeat, from which pid, published when
// (Header.mono_ns, CLOCK_MONOTONIC like the kill stamps taken here).
//   - the broker killed twice in a row: no healthy actor is killed by the
//     launcher (same pids before and after);
//   - one actor killed 5 times within a minute: heartbeating again within
//     2 s of each kill;
//   - SIGTERM to `vb run` ends every process within 3 s, also with the broker
//     frozen and the bus carrying malformed heartbeats;
//   - config mistakes (duplicate key, unknown actor kind, missing WAV, an
//     actor's bad value under log_dir) exit 78 with file:line, and `vb run`
//     shows an actor's config error on its own console.
// Every wait is bounded (RunUntil/WaitForText/Stop timeouts): a hang fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <map>
#include <regex>
#include <set>

#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;

class LauncherProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.File("bus");
    bus::BusConfig c;
    c.endpoint = endpoint_;
    node_ = std::make_unique<bus::Node>(ctx_, loop_, "test", "local", c);
    node_->Subscribe<v1::Heartbeat>(bus::topics::kHeartbeat, [this](const auto& m) {
      if (m.msg.state() == v1::Heartbeat::STOPPING) return;
      auto& a = actors_[m.msg.actor()];
      a.pid = m.msg.pid();
      a.last_ns = m.header.mono_ns();
      if (a.first_ns.emplace(m.msg.pid(), m.header.mono_ns()).second) a.pids.push_back(m.msg.pid());
    });  // device "local" only: the hostile messages below go to another device
  }
  void TearDown() override {
    node_.reset();
    ctx_.shutdown();
  }
  std::string WriteConfig(const std::string& body, const std::string& name = "vb.yaml") {
    dir_.Write(name, "bus:\n  endpoint: " + endpoint_ + "\n" + body);
    return dir_.File(name);
  }
  std::string Log() { return ReadFile(dir_.File("vb.log")); }
  // The pid of the latest "NAME started (pid N)" line of vb run's console.
  int StartedPid(const std::string& name) {
    std::string log = Log();
    static const std::regex re(R"(([a-z0-9_-]+) +started \(pid (\d+)\))");
    int pid = -1;
    for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it)
      if ((*it)[1] == name) pid = std::stoi((*it)[2]);
    return pid;
  }
  // Every actor in `names` heartbeats, from its current pid, after `since_ns`.
  bool AllBeatSince(const std::vector<std::string>& names, int64_t since_ns, std::chrono::milliseconds timeout) {
    return RunUntil(
        loop_,
        [&] {
          for (const auto& n : names)
            if (!actors_.count(n) || actors_[n].last_ns <= since_ns) return false;
          return true;
        },
        timeout);
  }

  struct Seen {
    int pid = 0;
    int64_t last_ns = 0;
    std::map<int, int64_t> first_ns;  // pid → publish time of its first heartbeat we heard
    std::vector<int> pids;            // in order
  };
  TempDir dir_;
  std::string endpoint_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_;
  std::map<std::string, Seen> actors_;
};

TEST_F(LauncherProcessTest, BrokerKilledTwiceAndActorKilledFiveTimes) {
  auto cfg = WriteConfig("launcher:\n  actors: [a:probe, b:probe, c:probe]\n  log_dir: " + dir_.File("logs") +
                         "\nb:\n  publish_hz: 50\n");
  Child vb;
  ASSERT_TRUE(vb.Start({Bin("vb"), "run", cfg}, dir_.File("vb.log"), {"COZE_API_TOKEN=pat_secret_for_session_only"}));
  ASSERT_TRUE(node_->Connect().ok());
  const std::vector<std::string> all = {"a", "b", "c"};
  ASSERT_TRUE(AllBeatSince(all, 0, 15000ms)) << Log();
  const int a = actors_["a"].pid, c = actors_["c"].pid;

  // No actor (nor the broker) was given the token.
  for (const auto& n : all) {
    std::string env = ReadFile("/proc/" + std::to_string(actors_[n].pid) + "/environ");
    EXPECT_EQ(env.find("COZE_API_TOKEN"), std::string::npos) << n;
  }
  EXPECT_EQ(ReadFile("/proc/" + std::to_string(StartedPid("broker")) + "/environ").find("COZE_API_TOKEN"),
            std::string::npos);

  // The broker, twice in a row: the second kill hits the fresh broker before
  // any actor had reconnected through it.
  for (int i = 0; i < 2; ++i) {
    const int broker = StartedPid("broker");
    ASSERT_GT(broker, 0);
    ASSERT_EQ(kill(broker, SIGKILL), 0);
    ASSERT_TRUE(RunUntil(
        loop_,
        [&] {
          int p = StartedPid("broker");
          return p > 0 && p != broker;
        },
        2000ms))
        << "the broker was not restarted at once\n"
        << Log();
  }
  const int64_t second_kill_ns = bus::MonoNs();
  ASSERT_TRUE(AllBeatSince(all, second_kill_ns, 5000ms)) << "actors did not come back through the new broker\n"
                                                         << Log();
  // Longer than the heartbeat timeout: the launcher must not kill anyone.
  EXPECT_FALSE(RunUntil(
      loop_, [&] { return actors_["a"].pid != a || actors_["c"].pid != c; }, 4000ms));
  EXPECT_EQ(actors_["a"].pids, std::vector<int>{a});
  EXPECT_EQ(actors_["c"].pids, std::vector<int>{c});

  // One actor, 5 times in a minute, each kill as soon as it is back.
  const auto first_kill = bus::Clock::now();
  for (int i = 0; i < 5; ++i) {
    const int victim = actors_["b"].pid;
    ASSERT_EQ(kill(victim, SIGKILL), 0);
    const int64_t killed_ns = bus::MonoNs();
    ASSERT_TRUE(RunUntil(
        loop_, [&] { return actors_["b"].pid != victim; }, 5000ms))
        << "b did not come back after kill " << i << "\n"
        << Log();
    const int64_t back_ns = actors_["b"].first_ns[actors_["b"].pid] - killed_ns;
    std::cout << "b heartbeating again " << double(back_ns) / 1e9 << " s after kill " << i + 1 << "\n";
    EXPECT_LT(back_ns, 2'000'000'000) << "kill " << i;
  }
  EXPECT_LT(bus::Clock::now() - first_kill, 60s);
  EXPECT_EQ(actors_["b"].pids.size(), 6u);
  EXPECT_FALSE(RunUntil(
      loop_, [&] { return actors_["a"].pid != a || actors_["c"].pid != c; }, 500ms));
  EXPECT_EQ(actors_["a"].pids, std::vector<int>{a});
  EXPECT_EQ(actors_["c"].pids, std::vector<int>{c});

  // SIGTERM: everything ends within 3 s.
  std::vector<int> pids = {a, c, actors_["b"].pid, StartedPid("broker")};
  const auto term = bus::Clock::now();
  EXPECT_EQ(vb.Stop(SIGTERM, 3000ms), 0) << Log();
  std::cout << "vb run stopped " << std::chrono::duration<double>(bus::Clock::now() - term).count()
            << " s after SIGTERM\n";
  for (int p : pids) EXPECT_NE(kill(p, 0), 0) << "pid " << p << " outlived vb run";
  const std::string log = Log();
  EXPECT_EQ(log.find("killing it"), std::string::npos) << log;
  EXPECT_EQ(log.find("crash loop"), std::string::npos) << log;
}

TEST_F(LauncherProcessTest, SigtermIsServedWhileTheBusIsFrozenAndHostile) {
  auto cfg = WriteConfig("launcher:\n  actors: [a:probe, b:probe]\n  log_dir: " + dir_.File("logs") + "\n");
  Child vb;
  ASSERT_TRUE(vb.Start({Bin("vb"), "run", cfg}, dir_.File("vb.log")));
  ASSERT_TRUE(node_->Connect().ok());
  ASSERT_TRUE(AllBeatSince({"a", "b"}, 0, 15000ms)) << Log();
  node_->SetActive(true);
  // Malformed heartbeats (far too many frames) at everyone who listens to
  // heartbeats, the launcher included; then the broker stops forwarding.
  std::vector<std::string> frames(40, "x");
  frames[0] = "actor.heartbeat/evil";
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(node_->SendRaw(bus::Plane::kControl, frames));
  EXPECT_FALSE(RunUntil(
      loop_, [] { return false; }, 300ms));  // let them reach the launcher
  const int broker = StartedPid("broker");
  ASSERT_EQ(kill(broker, SIGSTOP), 0);
  std::vector<int> pids = {actors_["a"].pid, actors_["b"].pid, broker};
  const auto term = bus::Clock::now();
  const int code = vb.Stop(SIGTERM, 3000ms);
  kill(broker, SIGCONT);  // in case it outlived vb (then the test fails below)
  EXPECT_EQ(code, 0) << Log();
  std::cout << "vb run stopped " << std::chrono::duration<double>(bus::Clock::now() - term).count()
            << " s after SIGTERM with the broker frozen\n";
  for (int p : pids) {
    EXPECT_NE(kill(p, 0), 0) << "pid " << p << " outlived vb run";
    if (kill(p, 0) == 0) kill(p, SIGKILL);
  }
}

TEST_F(LauncherProcessTest, ActorConfigErrorIsShownOnTheConsoleAndNotRestarted) {
  auto cfg = WriteConfig("launcher:\n  actors: [a:probe, b:probe]\n  log_dir: " + dir_.File("logs") +
                         "\nb:\n  publish_hz: fast\n");
  Child vb;
  ASSERT_TRUE(vb.Start({Bin("vb"), "run", cfg}, dir_.File("vb.log")));
  ASSERT_TRUE(WaitForText(dir_.File("vb.log"), "b.publish_hz: expected a number, got 'fast'", 10000ms)) << Log();
  ASSERT_TRUE(node_->Connect().ok());
  ASSERT_TRUE(AllBeatSince({"a"}, 0, 10000ms)) << Log();
  // Stopped in order, and the exit says the run was incomplete (78).
  EXPECT_EQ(vb.Stop(SIGTERM, 3000ms), 78);
  const std::string log = Log();
  EXPECT_NE(log.find("b          config error (exit 78): not restarted; the run goes on WITHOUT b"), std::string::npos)
      << log;
  EXPECT_NE(log.find(cfg + ":7:15: b.publish_hz: expected a number, got 'fast'"), std::string::npos) << log;
  EXPECT_EQ(log.find("b          restarting"), std::string::npos) << log;
}

TEST_F(LauncherProcessTest, ConfigMistakesExit78WithFileAndLine) {
  std::string out;
  auto dup = WriteConfig("launcher:\n  actors: [a:probe]\n  log_dir: /tmp\n  actors: [b:probe]\n", "dup.yaml");
  EXPECT_EQ(RunCommand({Bin("vb"), "run", dup}, &out, 10000ms), 78) << out;
  EXPECT_NE(out.find(dup + ":6:3: launcher.actors: duplicate key (first at line 4)"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({Bin("vb-probe"), "--config", dup, "--name", "a"}, &out, 10000ms), 78) << out;
  EXPECT_NE(out.find(dup + ":6:3: launcher.actors: duplicate key"), std::string::npos) << out;

  auto dup_section =
      WriteConfig("a:\n  publish_hz: 1\nlauncher:\n  actors: [a:probe]\na:\n  relay: true\n", "dups.yaml");
  EXPECT_EQ(RunCommand({Bin("vb"), "run", dup_section}, &out, 10000ms), 78) << out;
  EXPECT_NE(out.find(dup_section + ":7:1: a: duplicate section (first at line 3)"), std::string::npos) << out;

  auto unknown = WriteConfig("launcher:\n  actors: [a:probe, x:nosuchkind]\n", "kind.yaml");
  EXPECT_EQ(RunCommand({Bin("vb"), "run", unknown}, &out, 10000ms), 78) << out;
  EXPECT_NE(out.find(unknown + ":4:21: launcher.actors[1]: unknown actor kind 'nosuchkind'"), std::string::npos) << out;

  auto wav = WriteConfig("capture:\n  source: wav\n  wav:\n    path: " + dir_.File("missing.wav") + "\n", "wav.yaml");
  EXPECT_EQ(RunCommand({Bin("vb-capture"), "--config", wav}, &out, 10000ms), 78) << out;
  EXPECT_NE(out.find(wav + ":6:11: capture.wav.path: "), std::string::npos) << out;
  EXPECT_NE(out.find("missing.wav"), std::string::npos) << out;
}

}  // namespace
}  // namespace vb::testing
