// The launcher's policy with fake processes and a fake clock: restarts at
// once and back-off only for crash loops, the broker restarted at once every
// time, no kill for silence the broker caused, no restart after a config
// error, hung actors killed, orderly stop.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "tools/vb/launcher.h"
#include "tools/vb/supervisor.h"

namespace vb::launcher {
namespace {

class FakeOps : public ProcessOps {
 public:
  int Spawn(const ChildSpec& spec) override {
    if (fail_next) {
      fail_next = false;
      return -1;
    }
    spawned.push_back(spec.name);
    return next_pid++;
  }
  void Signal(int pid, int sig) override { signals.emplace_back(pid, sig); }
  int Kills() const {
    int n = 0;
    for (const auto& s : signals) n += s.second == SIGKILL;
    return n;
  }
  std::vector<std::string> spawned;
  std::vector<std::pair<int, int>> signals;
  int next_pid = 100;
  bool fail_next = false;
};

class SupervisorTest : public ::testing::Test {
 protected:
  SupervisorTest() : sup_(ops_, SupervisorPolicy{}, [this](const SupervisorEvent& e) { events_.push_back(e); }) {
    sup_.Add({"broker", {"vb-broker"}, false, "broker", true});
    sup_.Add({"capture", {"vb-capture"}, true, "capture", false});
    sup_.Add({"control", {"vb-control"}, true, "control", false});
    sup_.StartAll(t0_);
  }
  int Pid(const std::string& name) { return sup_.Find(name)->pid; }
  TimePoint At(int ms) { return t0_ + Ms(ms); }
  int Spawned(const std::string& name) {
    int n = 0;
    for (const auto& s : ops_.spawned) n += s == name;
    return n;
  }
  int Count(SupervisorEvent::Kind kind) {
    int n = 0;
    for (const auto& e : events_) n += e.kind == kind;
    return n;
  }
  // The world from `from` to `to` ms in 100 ms steps: our echo every 500 ms
  // when `echo`, heartbeats every 1000 ms from the actors in `beating`, and a
  // Tick at each step and at every deadline the supervisor asks for.
  void Run(int from, int to, bool echo, std::set<std::string> beating) {
    for (int t = from; t <= to; t += 100) {
      if (echo && t % 500 == 0) sup_.OnBusEcho(At(t));
      if (t % 1000 == 0)
        for (const auto& a : beating) sup_.OnHeartbeat(a, At(t), Pid(a));
      sup_.Tick(At(t));
    }
  }
  FakeOps ops_;
  std::vector<SupervisorEvent> events_;
  TimePoint t0_ = Clock::now();
  Supervisor sup_;
};

TEST_F(SupervisorTest, StartsInOrderAndComesUpOnHeartbeat) {
  EXPECT_EQ(ops_.spawned, (std::vector<std::string>{"broker", "capture", "control"}));
  EXPECT_EQ(sup_.Find("broker")->state, ChildState::kUp);  // no heartbeat expected
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kStarting);
  sup_.OnHeartbeat("capture", At(100));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kUp);
}

TEST_F(SupervisorTest, BrokerIsRestartedAtOnceEveryTime) {
  Run(0, 2000, true, {"capture", "control"});
  int now = 2000;
  for (int i = 0; i < 6; ++i) {
    // Killed again 200 ms after each restart: still no delay, ever.
    sup_.OnExit(Pid("broker"), -SIGKILL, At(now));
    EXPECT_GT(Pid("broker"), 0) << "kill " << i;
    EXPECT_EQ(Spawned("broker"), 2 + i);
    now += 200;
  }
  // Also when it crashes by itself after serving a while.
  Run(now, now + 5000, true, {"capture", "control"});
  sup_.OnExit(Pid("broker"), -SIGSEGV, At(now + 5000));
  EXPECT_GT(Pid("broker"), 0);
  EXPECT_EQ(ops_.Kills(), 0);
}

TEST_F(SupervisorTest, NoKillDuringOrJustAfterABrokerOutage) {
  Run(0, 3000, true, {"capture", "control"});
  ASSERT_EQ(sup_.Find("capture")->state, ChildState::kUp);
  int capture = Pid("capture"), control = Pid("control");
  // The broker dies twice in a row; no heartbeat or echo gets through for 2 s.
  sup_.OnExit(Pid("broker"), -SIGKILL, At(3050));
  EXPECT_FALSE(sup_.BusVerified(At(3050)));
  Run(3100, 4000, false, {});
  sup_.OnExit(Pid("broker"), -SIGKILL, At(4050));
  Run(4100, 5000, false, {});
  // Our echo is back at 5.5 s; capture reconnects at once, control takes 2.5 s.
  Run(5100, 7400, true, {"capture"});
  Run(7500, 12000, true, {"capture", "control"});
  EXPECT_EQ(ops_.Kills(), 0);
  EXPECT_EQ(Pid("capture"), capture);
  EXPECT_EQ(Pid("control"), control);
  EXPECT_GE(Count(SupervisorEvent::kBusLost), 1);
  EXPECT_GE(Count(SupervisorEvent::kBusBack), 1);
  // A really hung actor is still caught once the bus works: 3 s after the
  // bus came back, not 3 s after its last beat.
  Run(12100, 14900, true, {"capture"});
  EXPECT_EQ(ops_.Kills(), 0);
  Run(15000, 15500, true, {"capture"});
  ASSERT_EQ(ops_.Kills(), 1);
  EXPECT_EQ(ops_.signals.back(), std::make_pair(control, SIGKILL));
}

TEST_F(SupervisorTest, FrozenBrokerKillsNobody) {
  Run(0, 3000, true, {"capture", "control"});
  // The broker process lives but forwards nothing (SIGSTOP, wedged): no echo.
  Run(3100, 60000, false, {});
  EXPECT_EQ(ops_.Kills(), 0);
  // And the supervisor does not ask to be woken in a busy loop meanwhile.
  auto next = sup_.NextDeadline();
  EXPECT_TRUE(!next.has_value() || *next > At(60000));
}

TEST_F(SupervisorTest, FiveKillsInAMinuteAreEachRestartedAtOnce) {
  Run(0, 1000, true, {"capture", "control"});
  // kill -9 from outside, 2 s to 12 s apart (some within the crash window).
  const int kills[] = {5000, 17000, 19000, 31000, 45000};
  int from = 1100;
  for (int k : kills) {
    Run(from, k - 100, true, {"capture", "control"});
    int before = Pid("capture");
    sup_.OnExit(before, -SIGKILL, At(k));
    EXPECT_GT(Pid("capture"), before) << "restarted at once after the kill at " << k;
    from = k;
  }
  EXPECT_EQ(Spawned("capture"), 6);
  EXPECT_EQ(ops_.Kills(), 0);
}

TEST_F(SupervisorTest, CrashLoopBacksOff) {
  Run(0, 1000, true, {"capture", "control"});
  std::vector<int64_t> delays;
  int now = 1000;
  for (int i = 0; i < 8; ++i) {
    now += 300;  // dies 300 ms after each start, by itself
    int before = Spawned("capture");
    sup_.OnExit(Pid("capture"), 1, At(now));
    if (Spawned("capture") > before) {
      delays.push_back(0);
      continue;
    }
    auto next = sup_.NextDeadline();
    ASSERT_TRUE(next.has_value());
    int64_t d = std::chrono::duration_cast<Ms>(sup_.Find("capture")->restart_at - At(now)).count();
    delays.push_back(d);
    now += int(d);
    sup_.Tick(At(now));
    ASSERT_GT(Pid("capture"), 0);
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{0, 1000, 2000, 4000, 8000, 16000, 32000, 32000}));
  // A run longer than the crash window ends the loop: at once again.
  sup_.OnExit(Pid("capture"), 1, At(now + 4000));
  EXPECT_GT(Pid("capture"), 0);
}

TEST_F(SupervisorTest, ConfigErrorIsNotRestartedAndReported) {
  int pid = Pid("capture");
  sup_.OnExit(pid, 78, At(50));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kConfigError);
  Run(100, 100000, true, {"control"});
  EXPECT_EQ(Spawned("capture"), 1);
  ASSERT_EQ(Count(SupervisorEvent::kConfigError), 1);
  for (const auto& e : events_)
    if (e.kind == SupervisorEvent::kConfigError) EXPECT_EQ(e.name, "capture");
}

TEST_F(SupervisorTest, SilentActorIsKilledWhileTheBusWorks) {
  Run(0, 1000, true, {"capture", "control"});
  int pid = Pid("capture");
  Run(1100, 3900, true, {"control"});
  EXPECT_EQ(ops_.Kills(), 0);
  Run(4000, 4200, true, {"control"});  // 3 s without a heartbeat
  ASSERT_EQ(ops_.Kills(), 1);
  EXPECT_EQ(ops_.signals.back(), std::make_pair(pid, SIGKILL));
  Run(4300, 8000, true, {"control"});
  EXPECT_EQ(ops_.Kills(), 1);  // one kill, then wait for it to exit
  sup_.OnExit(pid, -SIGKILL, At(8000));
  EXPECT_GT(Pid("capture"), pid);  // it ran long: restarted at once
}

TEST_F(SupervisorTest, ActorThatNeverComesUpIsKilledAndThenBacksOff) {
  Run(0, 8900, true, {"control"});
  EXPECT_EQ(ops_.Kills(), 0);  // 9 s to come up
  Run(9000, 9000, true, {"control"});
  ASSERT_EQ(ops_.Kills(), 1);
  sup_.OnExit(Pid("capture"), -SIGKILL, At(9010));
  EXPECT_EQ(Spawned("capture"), 2);  // first hang: at once
  Run(9100, 18100, true, {"control"});
  ASSERT_EQ(ops_.Kills(), 2);
  sup_.OnExit(Pid("capture"), -SIGKILL, At(18200));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kWaitingRestart);  // a loop: back-off
}

TEST_F(SupervisorTest, HeartbeatOfAnEarlierIncarnationIsIgnored) {
  int old = Pid("capture");
  sup_.OnExit(old, -SIGKILL, At(100));
  sup_.OnHeartbeat("capture", At(120), old);
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kStarting);
  sup_.OnHeartbeat("capture", At(150), Pid("capture"));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kUp);
}

TEST_F(SupervisorTest, SpawnFailureIsRetriedAfterADelay) {
  ops_.fail_next = true;
  sup_.OnExit(Pid("capture"), -SIGKILL, At(0));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kWaitingRestart);
  sup_.Tick(At(999));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kWaitingRestart);
  sup_.Tick(At(1000));
  EXPECT_GT(Pid("capture"), 0);
}

TEST_F(SupervisorTest, StopAllTerminatesNewestFirstThenKills) {
  int broker = Pid("broker"), capture = Pid("capture"), control = Pid("control");
  sup_.StopAll(At(0));
  ASSERT_EQ(ops_.signals.size(), 3u);
  EXPECT_EQ(ops_.signals[0], std::make_pair(control, SIGTERM));
  EXPECT_EQ(ops_.signals[1], std::make_pair(capture, SIGTERM));
  EXPECT_EQ(ops_.signals[2], std::make_pair(broker, SIGTERM));
  sup_.OnExit(control, 0, At(5));
  sup_.OnExit(capture, 0, At(10));
  EXPECT_FALSE(sup_.AllStopped());
  sup_.Tick(At(2001));
  EXPECT_EQ(ops_.signals.back(), std::make_pair(broker, SIGKILL));
  sup_.OnExit(broker, -SIGKILL, At(2002));
  EXPECT_TRUE(sup_.AllStopped());
  EXPECT_EQ(ops_.spawned.size(), 3u);  // nothing restarted while stopping
}

// Secrets reach only the binary that needs them (issue 12).
TEST(ChildEnvironmentTest, TokenOnlyForTheSession) {
  const std::vector<std::string> env = {"PATH=/bin", "COZE_API_TOKEN=pat_x", "COZE_API_TOKEN_FILE=f",
                                        "VB_GATEWAY_TOKENS=a,b", "VB_SIM_PORT=1"};
  EXPECT_EQ(ChildEnvironment(env, "session"),
            (std::vector<std::string>{"PATH=/bin", "COZE_API_TOKEN=pat_x", "COZE_API_TOKEN_FILE=f", "VB_SIM_PORT=1"}));
  EXPECT_EQ(ChildEnvironment(env, "gateway"),
            (std::vector<std::string>{"PATH=/bin", "COZE_API_TOKEN_FILE=f", "VB_GATEWAY_TOKENS=a,b", "VB_SIM_PORT=1"}));
  for (const char* kind : {"broker", "cozesim", "capture", "control"})
    EXPECT_EQ(ChildEnvironment(env, kind),
              (std::vector<std::string>{"PATH=/bin", "COZE_API_TOKEN_FILE=f", "VB_SIM_PORT=1"}))
        << kind;
}

}  // namespace
}  // namespace vb::launcher
