// `vb run` under systemd's notify protocol (issue 17 item 3), with the test
// as the service manager: NOTIFY_SOCKET names the test's own datagram
// socket, WATCHDOG_USEC asks for pings. On config/demo.yaml (simulator, WAV
// microphone speaking a question) the test checks that
//   - READY=1 comes once, and only after every actor's first heartbeat
//     (vb run's console has all 9 "up (heartbeat)" lines when it arrives;
//     STATUS= before it counts actors up);
//   - WATCHDOG=1 comes periodically, at about half WATCHDOG_USEC;
//   - STATUS= follows the dialog (listening → thinking → speaking);
//   - SIGTERM brings STOPPING=1 and exit 0;
//   - an actor's config error before READY fails the start at once (78).
// Every wait is bounded (poll with a deadline); vb is stopped by pid.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Datagram {
  Clock::time_point at;
  std::string text;
};

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  // Receives until a datagram contains `needle` (true) or the deadline.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (poll(&p, 1, std::max(left, 0)) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      all_.push_back({Clock::now(), std::string(buf, size_t(n))});
      if (all_.back().text.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  const std::vector<Datagram>& all() const { return all_; }
  std::string Dump() const {
    std::string s;
    for (const auto& d : all_)
      if (d.text != "WATCHDOG=1") s += d.text + "\n";
    return s;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::vector<Datagram> all_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(VbRunNotify, ReadyAfterEveryHeartbeatWatchdogAndDialogStatus) {
  TempDir dir;
  NotifySocket sock(dir.File("notify"));
  ASSERT_TRUE(sock.ok()) << strerror(errno);
  Child vb;
  const std::string config = SourceDir() + "/config/demo.yaml";
  ASSERT_TRUE(vb.Start({Bin("vb"), "run", "--quiet", config}, dir.File("vb.log"),
                       {"NOTIFY_SOCKET=" + dir.File("notify"), "WATCHDOG_USEC=600000", "VB_RUN_DIR=" + dir.File("run"),
                        "VB_GATEWAY_PORT=" + std::to_string(FreeTcpPort())}));
  // READY, and at that moment every actor's first heartbeat was seen.
  ASSERT_TRUE(sock.WaitFor("READY=1", 90000ms)) << sock.Dump() << "\n--- vb:\n" << ReadFile(dir.File("vb.log"));
  const std::string log_at_ready = ReadFile(dir.File("vb.log"));
  EXPECT_EQ(Count(log_at_ready, "up (heartbeat)"), 9u) << log_at_ready;
  EXPECT_NE(log_at_ready.find("all 9 actors up"), std::string::npos) << log_at_ready;
  size_t ready = 0, statuses_before = 0;
  for (const auto& d : sock.all()) {
    if (d.text.find("READY=1") != std::string::npos) ++ready;
    if (!ready && d.text.find("STATUS=starting: ") != std::string::npos) ++statuses_before;
  }
  EXPECT_EQ(ready, 1u);
  EXPECT_GE(statuses_before, 2u) << "STATUS counts actors up while starting:\n" << sock.Dump();
  EXPECT_NE(sock.Dump().find("STATUS=starting: 0 of 9 actors up"), std::string::npos) << sock.Dump();
  // STATUS follows the dialog: the spoken question is heard and answered.
  EXPECT_TRUE(sock.WaitFor("dialog thinking", 60000ms)) << sock.Dump();
  EXPECT_TRUE(sock.WaitFor("dialog speaking", 60000ms)) << sock.Dump();
  EXPECT_TRUE(sock.WaitFor("dialog listening", 60000ms)) << sock.Dump();
  // WATCHDOG: pings throughout, about every 300 ms (half of 600 ms).
  auto pings = [&] {
    std::vector<Clock::time_point> at;
    for (const auto& d : sock.all())
      if (d.text == "WATCHDOG=1") at.push_back(d.at);
    return at;
  };
  const size_t before = pings().size();
  const auto t0 = Clock::now();
  while (pings().size() < before + 5 && Clock::now() - t0 < 10s) sock.WaitFor("WATCHDOG=1", 2000ms);
  const auto at = pings();
  ASSERT_GE(at.size(), before + 5) << "too few WATCHDOG=1";
  const auto span = std::chrono::duration_cast<std::chrono::milliseconds>(at.back() - at[at.size() - 5]);
  // 4 periods of 300 ms: never faster than the period, and within the
  // 600 ms systemd would allow for each under load.
  EXPECT_GE(span.count(), 4 * 250) << span.count();
  EXPECT_LE(span.count(), 4 * 600) << span.count();
  ASSERT_TRUE(vb.running());
  EXPECT_EQ(vb.Stop(SIGTERM, 15000ms), 0) << ReadFile(dir.File("vb.log"));
  EXPECT_TRUE(sock.WaitFor("STOPPING=1", 1000ms)) << sock.Dump();
  // NOTIFY_SOCKET is vb's alone: no actor sent anything (only vb's own messages arrived).
  for (const auto& d : sock.all())
    EXPECT_TRUE(d.text.rfind("STATUS=", 0) == 0 || d.text == "READY=1" || d.text == "WATCHDOG=1" ||
                d.text.rfind("STOPPING=1", 0) == 0)
        << d.text;
}

// Under a service manager, an actor's config error before READY ends the
// start at once with 78 (systemd does not restart it) instead of a start
// timeout; READY never comes.
TEST(VbRunNotify, ConfigErrorBeforeReadyFailsTheStartWith78) {
  TempDir dir;
  NotifySocket sock(dir.File("notify"));
  ASSERT_TRUE(sock.ok()) << strerror(errno);
  std::string demo = ReadFile(SourceDir() + "/config/demo.yaml");
  const std::string good = "decoder:\n  output_rate: 16000\n";
  ASSERT_NE(demo.find(good), std::string::npos);
  demo.replace(demo.find(good), good.size(), "decoder:\n  output_rate: fast\n");
  dir.Write("broken.yaml", demo);
  Child vb;
  ASSERT_TRUE(vb.Start({Bin("vb"), "run", "--quiet", dir.File("broken.yaml")}, dir.File("vb.log"),
                       {"NOTIFY_SOCKET=" + dir.File("notify"), "VB_RUN_DIR=" + dir.File("run"),
                        "VB_GATEWAY_PORT=" + std::to_string(FreeTcpPort())}));
  ASSERT_TRUE(sock.WaitFor("STOPPING=1", 60000ms)) << sock.Dump() << "\n--- vb:\n" << ReadFile(dir.File("vb.log"));
  EXPECT_NE(sock.all().back().text.find("decoder has a config error"), std::string::npos) << sock.Dump();
  EXPECT_EQ(vb.Wait(15000ms), 78) << ReadFile(dir.File("vb.log"));
  EXPECT_EQ(sock.Dump().find("READY=1"), std::string::npos) << sock.Dump();
  EXPECT_NE(ReadFile(dir.File("vb.log")).find("decoder.output_rate: expected a number, got 'fast'"), std::string::npos)
      << ReadFile(dir.File("vb.log"));
}

}  // namespace
}  // namespace vb::testing
