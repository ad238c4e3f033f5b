// The launcher's policy with fake processes and a fake clock: restart with
// back-off, no restart after a config error, hung actors killed, orderly stop.
#include <gtest/gtest.h>
#include <signal.h>

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
  std::vector<std::string> spawned;
  std::vector<std::pair<int, int>> signals;
  int next_pid = 100;
  bool fail_next = false;
};

class SupervisorTest : public ::testing::Test {
 protected:
  SupervisorTest() : sup_(ops_, SupervisorPolicy{}, [this](const SupervisorEvent& e) { events_.push_back(e); }) {
    sup_.Add({"broker", {"vb-broker"}, false});
    sup_.Add({"capture", {"vb-capture"}, true});
    sup_.StartAll(t0_);
  }
  int Pid(const std::string& name) { return sup_.Find(name)->pid; }
  TimePoint At(int ms) { return t0_ + Ms(ms); }
  FakeOps ops_;
  std::vector<SupervisorEvent> events_;
  TimePoint t0_ = Clock::now();
  Supervisor sup_;
};

TEST_F(SupervisorTest, StartsInOrderAndComesUpOnHeartbeat) {
  EXPECT_EQ(ops_.spawned, (std::vector<std::string>{"broker", "capture"}));
  EXPECT_EQ(sup_.Find("broker")->state, ChildState::kUp);  // no heartbeat expected
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kStarting);
  sup_.OnHeartbeat("capture", At(100));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kUp);
}

TEST_F(SupervisorTest, CrashRestartsWithDoublingBackoff) {
  std::vector<int64_t> delays;
  int now = 0;
  for (int i = 0; i < 7; ++i) {
    sup_.OnExit(Pid("capture"), -SIGKILL, At(now));
    auto next = sup_.NextDeadline();
    ASSERT_TRUE(next.has_value());
    delays.push_back(std::chrono::duration_cast<Ms>(*next - At(now)).count());
    now += int(delays.back());
    sup_.Tick(At(now));
    ASSERT_GT(Pid("capture"), 0);
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 32000}));
  EXPECT_EQ(sup_.Find("capture")->restarts, 7);
}

TEST_F(SupervisorTest, HealthyMinuteResetsBackoff) {
  sup_.OnExit(Pid("capture"), 1, At(0));
  sup_.Tick(At(1000));
  sup_.OnExit(Pid("capture"), 1, At(1500));  // 2 s next
  sup_.Tick(At(3500));
  sup_.OnHeartbeat("capture", At(3600));
  // Runs healthily for over a minute, then crashes: back to 1 s.
  for (int t = 4000; t < 64000; t += 1000) sup_.OnHeartbeat("capture", At(t));
  sup_.OnExit(Pid("capture"), 1, At(64000));
  EXPECT_EQ(std::chrono::duration_cast<Ms>(*sup_.NextDeadline() - At(64000)).count(), 1000);
}

TEST_F(SupervisorTest, ConfigErrorIsNotRestarted) {
  int pid = Pid("capture");
  sup_.OnExit(pid, 78, At(50));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kConfigError);
  EXPECT_FALSE(sup_.NextDeadline().has_value());
  sup_.Tick(At(100000));
  EXPECT_EQ(ops_.spawned.size(), 2u);
  bool reported = false;
  for (const auto& e : events_) reported = reported || e.kind == SupervisorEvent::kConfigError;
  EXPECT_TRUE(reported);
}

TEST_F(SupervisorTest, SilentActorIsKilled) {
  sup_.OnHeartbeat("capture", At(100));
  int pid = Pid("capture");
  sup_.Tick(At(2000));
  EXPECT_TRUE(ops_.signals.empty());
  sup_.Tick(At(3200));  // 3.1 s without a heartbeat
  ASSERT_EQ(ops_.signals.size(), 1u);
  EXPECT_EQ(ops_.signals[0], std::make_pair(pid, SIGKILL));
  sup_.OnExit(pid, -SIGKILL, At(3210));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kWaitingRestart);
}

TEST_F(SupervisorTest, SpawnFailureIsRetried) {
  sup_.OnExit(Pid("capture"), 1, At(0));
  ops_.fail_next = true;
  sup_.Tick(At(1000));
  EXPECT_EQ(sup_.Find("capture")->state, ChildState::kWaitingRestart);
  sup_.Tick(At(3000));
  EXPECT_GT(Pid("capture"), 0);
}

TEST_F(SupervisorTest, StopAllTerminatesNewestFirstThenKills) {
  int broker = Pid("broker"), capture = Pid("capture");
  sup_.StopAll(At(0));
  ASSERT_EQ(ops_.signals.size(), 2u);
  EXPECT_EQ(ops_.signals[0], std::make_pair(capture, SIGTERM));
  EXPECT_EQ(ops_.signals[1], std::make_pair(broker, SIGTERM));
  sup_.OnExit(capture, 0, At(10));
  EXPECT_FALSE(sup_.AllStopped());
  sup_.Tick(At(2001));
  EXPECT_EQ(ops_.signals.back(), std::make_pair(broker, SIGKILL));
  sup_.OnExit(broker, -SIGKILL, At(2002));
  EXPECT_TRUE(sup_.AllStopped());
  EXPECT_EQ(ops_.spawned.size(), 2u);  // nothing restarted while stopping
}

}  // namespace
}  // namespace vb::launcher
