// vb_base's shared policies, each once for every process: the back-off,
// the peer-health rule, the signal setup, the config loader and text cut
// for messages. Linked
// against vb_base alone (no bus, no ZeroMQ).
#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "bus/backoff.h"
#include "bus/config.h"
#include "bus/devices.h"
#include "bus/peer_health.h"
#include "bus/signals.h"
#include "bus/text.h"

namespace vb {
namespace {

using Ms = std::chrono::milliseconds;

// ---------------------------------------------------------------- Backoff

TEST(BaseBackoff, DoublesFromInitialToTheCapAndStaysThere) {
  Backoff b(Ms(1000), Ms(32000), Backoff::kNeverReset);
  std::vector<int64_t> got;
  for (int i = 0; i < 8; ++i) got.push_back(b.Next().count());
  EXPECT_EQ(got, (std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000}));
  EXPECT_EQ(b.failures(), 8u);
}

TEST(BaseBackoff, ResetStartsOverAndSoDoesAHealthyRun) {
  Backoff b(Ms(100), Ms(800), Ms(5000));
  b.Next();
  b.Next();
  EXPECT_EQ(b.Next().count(), 400);
  b.Reset();
  EXPECT_EQ(b.Next().count(), 100);
  EXPECT_EQ(b.Failed(Ms(4999)).count(), 200);  // not healthy long enough
  EXPECT_EQ(b.Failed(Ms(5000)).count(), 100);  // ran healthy: start over
}

TEST(BaseBackoff, AHugeCapDoesNotOverflow) {
  Backoff b(Ms(1000), Backoff::Duration::max(), Backoff::kNeverReset);
  Backoff::Duration last{0};
  for (int i = 0; i < 80; ++i) {
    auto d = b.Next();
    EXPECT_GE(d, last);
    last = d;
  }
  EXPECT_EQ(last, Backoff::Duration::max());
}

TEST(BaseBackoff, JitterStaysWithinItsBoundsAndIsReproducibleWithASeed) {
  Backoff a(Ms(1000), Ms(32000), Backoff::kNeverReset, 0.2, 42), b(Ms(1000), Ms(32000), Backoff::kNeverReset, 0.2, 42);
  const double expected[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000};
  bool any_jitter = false;
  for (double e : expected) {
    auto d = a.Next();
    EXPECT_EQ(d, b.Next());
    EXPECT_GE(double(d.count()), e * 0.8);
    EXPECT_LE(double(d.count()), e * 1.2);
    any_jitter |= double(d.count()) != e;
  }
  EXPECT_TRUE(any_jitter);
  a.Reset();
  EXPECT_LE(a.Next().count(), 1200);
  Backoff tiny(Ms(1), Ms(1), Backoff::kNeverReset, 1.0, 7);
  for (int i = 0; i < 50; ++i) EXPECT_GE(tiny.Next().count(), 1);  // never 0 ms: no busy retry
}

// ------------------------------------------------------------- PeerHealth

using TP = PeerHealth::TimePoint;
TP At(int64_t ms) { return TP(Ms(ms)); }

TEST(BasePeerHealth, StaleAfterThreeMissedBeatsNotBefore) {
  PeerHealth p(PeerRule{Ms(1000), 3});
  EXPECT_EQ(p.OnBeat(10, 0, At(0)), PeerHealth::Beat::kFirst);
  EXPECT_EQ(p.OnBeat(10, 1000, At(1000)), PeerHealth::Beat::kAlive);
  EXPECT_FALSE(p.MarkStaleIfSilent(At(3000)));  // two beats missed
  EXPECT_FALSE(p.MarkStaleIfSilent(At(4000)));  // exactly three intervals: the third may still be on its way
  EXPECT_EQ(p.StaleAt(), At(4000));
  EXPECT_TRUE(p.MarkStaleIfSilent(At(4001)));
  EXPECT_TRUE(p.stale());
  EXPECT_FALSE(p.MarkStaleIfSilent(At(9000)));  // said once
  EXPECT_EQ(p.OnBeat(10, 9000, At(9000)), PeerHealth::Beat::kBack);
  EXPECT_FALSE(p.stale());
  EXPECT_EQ(p.restarts(), 0u);
}

TEST(BasePeerHealth, ANewPidOrAnUptimeThatWentBackIsARestart) {
  PeerHealth p;
  p.OnBeat(10, 5000, At(0));
  EXPECT_EQ(p.OnBeat(11, 200, At(1000)), PeerHealth::Beat::kRestarted);  // the launcher restarted it
  EXPECT_EQ(p.OnBeat(11, 1200, At(2000)), PeerHealth::Beat::kAlive);
  EXPECT_EQ(p.OnBeat(11, 100, At(3000)), PeerHealth::Beat::kRestarted);  // same pid (a container's pid 1), uptime back
  EXPECT_EQ(p.restarts(), 2u);
  // A restart after going stale is still a restart, not merely "back".
  EXPECT_TRUE(p.MarkStaleIfSilent(At(7000)));
  EXPECT_EQ(p.OnBeat(12, 50, At(7000)), PeerHealth::Beat::kRestarted);
  EXPECT_EQ(p.restarts(), 3u);
}

TEST(BasePeerHealth, AShorterAllowanceForAWhileAndARuleFromAConfiguredTimeout) {
  PeerHealth p(PeerRule::FromTimeout(Ms(1000), Ms(3000)));
  EXPECT_EQ(p.rule().missed_beats, 3);
  p.Expect(At(0));  // watching starts: the whole allowance from here
  EXPECT_FALSE(p.Silent(At(2200)));
  EXPECT_TRUE(p.Silent(At(2201), Ms(2200)));                                     // e.g. vb-control mid-turn
  EXPECT_EQ(PeerRule::FromTimeout(Ms(1000), Ms(2500)).stale_after(), Ms(2500));  // kept exact
}

// ------------------------------------------------------------ StopSignals

TEST(BaseStopSignals, SigtermAndSigintWakeThePollLoopAndSigpipeKillsNobody) {
  StopSignals signals;
  ASSERT_GE(signals.fd(), 0);
  EXPECT_EQ(signals.Take(), 0);
  for (int sig : {SIGTERM, SIGINT}) {
    ASSERT_EQ(kill(getpid(), sig), 0);  // to the process, as systemd and Ctrl-C send it
    pollfd p{signals.fd(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1) << "signal " << sig << " never reached the descriptor";
    EXPECT_EQ(signals.Take(), sig);
    EXPECT_EQ(signals.Take(), 0);
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  errno = 0;
  EXPECT_EQ(write(fds[1], "x", 1), -1);  // alive: SIGPIPE ignored
  EXPECT_EQ(errno, EPIPE);
  close(fds[1]);
}

// ---------------------------------------------------------------- Config

// A logic library reads and checks its section with vb_base alone: values,
// an unknown key at file:line:column, and a device's own settings laid over
// the shared section (devices.list).
TEST(BaseConfig, ASectionIsReadAndCheckedWithoutTheBus) {
  config::File f;
  ASSERT_TRUE(f.LoadString("devices:\n  actors: [capture]\n  list:\n    kitchen: {capture: {rate: 48000}}\n"
                           "capture:\n  rate: 16000\n  gian: 2\n",
                           "base.yaml")
                  .ok());
  auto report = f.NewReport();
  auto read = [&](const std::string& name, int* rate, std::string* device) {
    auto s = f.Get(name, report);
    s.Key("rate", rate, 8000, {8000, 48000}, "sample rate");
    s.Key("device", device, std::string(""), "the device");
    s.Finish();
  };
  int rate = 0, kitchen_rate = 0;
  std::string device, kitchen_device;
  read("capture", &rate, &device);
  read(bus::DeviceInstance("capture", "kitchen"), &kitchen_rate, &kitchen_device);
  EXPECT_EQ(rate, 16000);
  EXPECT_EQ(kitchen_rate, 48000);
  EXPECT_EQ(kitchen_device, "kitchen");
  // The misspelt key, reported once for each section that holds it.
  ASSERT_EQ(report->errors.size(), 2u);
  EXPECT_EQ(report->errors[0], "base.yaml:7:3: capture.gian: unknown key");
  EXPECT_EQ(config::ToStatus(*report).code(), Status::Code::kConfig);
}

// A server's error text cut for a TurnEnded must stay UTF-8: cut inside a
// character, the message failed to parse at every subscriber (proto3).
TEST(Utf8Prefix, CutsOnACharacterBoundaryAndReplacesBrokenBytes) {
  const std::string zh = "\xe9\x94\x99\xe8\xaf\xaf";  // two 3-byte characters
  EXPECT_EQ(Utf8Prefix(zh, 6), zh);
  EXPECT_EQ(Utf8Prefix(zh, 5), zh.substr(0, 3));  // not the first 2 bytes of the second
  EXPECT_EQ(Utf8Prefix(zh, 2), "");
  EXPECT_EQ(Utf8Prefix("plain ascii", 5), "plain");
  EXPECT_EQ(Utf8Prefix("a\xff"
                       "b\xe9\x94",
                       100),
            "a?b??");                                                    // a stray byte; a truncated character
  EXPECT_EQ(Utf8Prefix("\xc0\xaf\xed\xa0\x80", 100), "?????");           // overlong '/', a UTF-16 surrogate
  EXPECT_EQ(Utf8Prefix("\xf0\x9f\x99\x82!", 100), "\xf0\x9f\x99\x82!");  // a 4-byte emoji kept
}

}  // namespace
}  // namespace vb
