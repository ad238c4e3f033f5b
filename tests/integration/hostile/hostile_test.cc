// Issue 12 with real processes: the bus never wedges and commands are not
// lost.
//
// HostilePublisher: `vb run` starts the broker, vb-control, vb-decoder,
// vb-gateway and a relaying vb-probe; a rogue node then sends every
// malformed shape the issue lists (17 and 1000 frames, spoofed seq, 100,000
// publisher names, 5,000 headers with invalid UTF-8, 64 MiB payloads) on
// the topics those processes listen to. Afterwards every actor still
// heartbeats (stamped after the attack, same pid: not restarted), a normal
// message still goes through the relay, nobody counts billions of drops,
// every process (the launcher, the broker and a vb-sniff included) stays
// under a memory bound, logs stay small, and `vb run` stops on SIGTERM.
//
// CommandDelivery: 200 `vb say/ptt/mode/interrupt` commands with `vb-sniff
// echo` subscribed to everything on both planes; all 200 reach a
// dialog.request subscriber (this test answers each with a CommandAck, as
// vb-control and vb-session do).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;

// Resident set of a process in KiB (0 if gone).
int64_t RssKb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  return 0;
}

// Direct children of `pid` (the launcher's broker and actors).
std::vector<int> Children(int pid) {
  std::vector<int> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  int c;
  while (in >> c) out.push_back(c);
  return out;
}

std::string Comm(int pid) {
  std::string s = ReadFile("/proc/" + std::to_string(pid) + "/comm");
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : 0;
}

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.File("bus");
    bus::BusConfig c;
    c.endpoint = endpoint_;
    node_ = std::make_unique<bus::Node>(ctx_, loop_, "observer", "local", c);
    rogue_ = std::make_unique<bus::Node>(ctx_, loop_, "rogue", "local", c);
    // A tick so waits on child exits and counters are never stuck in a
    // long poll (the loop also wakes for every message).
    loop_.AddTimer(10ms, [] {});
  }
  void TearDown() override {
    node_.reset();
    rogue_.reset();
    ctx_.shutdown();
  }
  void WatchHeartbeats(const std::set<std::string>& actors) {
    node_->Subscribe<v1::Heartbeat>(
        bus::topics::kHeartbeat,
        [this, actors](const auto& m) {
          if (!actors.count(m.msg.actor()) || m.header.source() != m.msg.actor()) return;  // fakes
          beats_[m.msg.actor()] = m.msg;
          beat_ns_[m.msg.actor()] = m.header.mono_ns();
        },
        "*");
  }
  // Runs `c` to completion while this loop serves the bus; exit code.
  int RunServing(const std::vector<std::string>& argv, const std::string& log, std::chrono::milliseconds timeout) {
    Child c;
    if (!c.Start(argv, log)) return INT_MIN;
    int pfd = int(syscall(SYS_pidfd_open, c.pid(), 0));
    bool done = false;
    auto g = loop_.AddFd(pfd, POLLIN, [&](short) { done = true; });
    RunUntil(
        loop_, [&] { return done; }, timeout);
    loop_.RemovePollGroup(g);
    close(pfd);
    int code = c.Wait(0ms);
    return code == INT_MIN ? c.Stop(SIGKILL, 2000ms) : code;
  }
  // The rogue node sends `frames`; every 500 messages the loop runs so the
  // observer drains its share and the rogue's queue to the broker empties.
  void Rogue(bus::Plane plane, const std::vector<std::string>& frames) {
    ASSERT_TRUE(rogue_->SendRaw(plane, frames));
    if (++sent_ % 500 == 0) loop_.RunOnce(0ms);
  }

  TempDir dir_;
  std::string endpoint_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_, rogue_;
  std::map<std::string, v1::Heartbeat> beats_;
  std::map<std::string, int64_t> beat_ns_;  // publisher's stamp of the last heartbeat
  uint64_t sent_ = 0;
};

TEST_F(HostileTest, HostilePublisherWedgesNobodyAndCostsBoundedMemory) {
  const std::set<std::string> actors = {"control", "decoder", "gateway", "relay"};
  int port = vb::testing::FreeTcpPort();
  ASSERT_GT(port, 0);
  dir_.Write("vb.yaml", "bus:\n  endpoint: " + endpoint_ +
                            "\nlauncher:\n  actors: [control, decoder, gateway, relay:probe]\n  log_dir: " +
                            dir_.File("logs") + "\ngateway:\n  port: " + std::to_string(port) +
                            "\n  token_file: " + dir_.File("gateway.token") + "\nrelay:\n  relay: true\n");
  Child vb, sniffer;
  ASSERT_TRUE(vb.Start({Bin("vb"), "run", dir_.File("vb.yaml")}, dir_.File("vb.log")));
  // A sniffer hears everything, invented topics included.
  ASSERT_TRUE(sniffer.Start({Bin("vb-sniff"), "hz", "--config", dir_.File("vb.yaml")}, dir_.File("sniff.log")));
  WatchHeartbeats(actors);
  uint64_t relayed_marker = 0;
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioClean, [&](const auto& m) {
    if (m.header.source() == "relay") relayed_marker = std::max(relayed_marker, m.msg.sample_index());
  });
  ASSERT_TRUE(node_->Connect().ok());
  ASSERT_TRUE(rogue_->Connect().ok());
  node_->SetActive(true);
  rogue_->SetActive(true);
  auto mic = node_->Advertise(bus::topics::kAudioMic);
  // A normal message goes through: a frame with a fresh marker comes back
  // relayed (republished until it does: stream topics may drop).
  uint64_t marker = 0;
  auto round_trip = [&](std::chrono::milliseconds timeout) {
    uint64_t want = ++marker * 1000;
    int64_t next = 0;
    return RunUntil(
        loop_,
        [&] {
          if (relayed_marker >= want) return true;
          if (bus::MonoNs() >= next && node_->HasSubscriber(mic)) {
            v1::AudioFrame f;
            f.set_sample_rate(16000);
            f.set_channels(1);
            f.set_sample_index(want);
            f.mutable_pcm()->assign(640, '\0');
            mic.Publish(f);
            next = bus::MonoNs() + 50'000'000;
          }
          return false;
        },
        timeout);
  };

  ASSERT_TRUE(RunUntil(
      loop_, [&] { return beats_.size() == actors.size(); }, 30000ms))
      << beats_.size() << " actors up\n"
      << ReadFile(dir_.File("vb.log"));
  ASSERT_TRUE(round_trip(10000ms)) << "the relay does not relay before the attack";
  std::map<std::string, int> pid;
  for (const auto& [name, hb] : beats_) pid[name] = int(hb.pid());
  // Every process: the launcher, the broker and the actors, by pid.
  std::map<int, std::string> procs{{vb.pid(), "vb"}, {sniffer.pid(), "vb-sniff"}};
  for (int c : Children(vb.pid())) procs[c] = Comm(c);
  ASSERT_GE(procs.size(), 7u) << "launcher, broker, 4 actors and the sniffer expected";
  std::map<int, int64_t> rss_before;
  for (const auto& [p, name] : procs) rss_before[p] = RssKb(p);
  auto log_files = [&] {
    std::vector<std::string> f{dir_.File("vb.log")};
    for (const auto& n : {"broker", "control", "decoder", "gateway", "relay"})
      f.push_back(dir_.File("logs/") + n + ".log");
    return f;
  };
  std::map<std::string, int64_t> log_before;
  for (const auto& f : log_files()) log_before[f] = FileSize(f);

  // --- the attack ---------------------------------------------------------
  const std::vector<std::pair<bus::Plane, std::string>> targets = {
      {bus::Plane::kControl, "actor.heartbeat/local"},  // launcher, control, gateway
      {bus::Plane::kControl, "dialog.request/local"},   // control
      {bus::Plane::kControl, "dialog.order/local"},     // decoder
      {bus::Plane::kStream, "session.audio/local"},     // decoder
      {bus::Plane::kStream, "audio.mic/local"}};        // relay
  auto header = [](const std::string& type, uint64_t seq, const std::string& source) {
    v1::Header h;
    h.set_type(type);
    h.set_seq(seq);
    h.set_source(source);
    h.set_mono_ns(bus::MonoNs());
    return h.SerializePartialAsString();  // partial: lets invalid UTF-8 through
  };
  // The rogue's own sockets see every target's subscribers first (XPUB
  // drops what nobody subscribed to yet: the attack would prove nothing).
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        for (const auto& [plane, topic] : targets)
          if (!rogue_->HasSubscriber(plane, topic)) return false;
        return true;
      },
      10000ms));
  // A shape counts only once the victims have seen it: the attacker repeats
  // it (at most 4 times) until control, decoder and relay report it in a
  // heartbeat. A rare run had control report no frame_count at the end: a
  // delivery race of the attack, not of the product, and then the test
  // proved nothing about that shape.
  const std::vector<std::string> victims = {"control", "decoder", "relay"};
  auto until_seen = [&](const std::string& counter, const std::function<void()>& send) {
    for (int attempt = 0; attempt < 4; ++attempt) {
      send();
      if (RunUntil(
              loop_,
              [&] {
                for (const auto& a : victims) {
                  const auto& extra = beats_[a].extra();
                  if (!extra.count(counter) || extra.at(counter) <= 0) return false;
                }
                return true;
              },
              2500ms))
        return;
    }
  };
  // 1. Absurd frame counts.
  until_seen("malformed_frame_count", [&] {
    for (const auto& [plane, topic] : targets)
      for (size_t n : {17, 18, 1000}) {
        std::vector<std::string> frames{topic, header("vb.v1.Heartbeat", 1, "frames")};
        while (frames.size() < n) frames.push_back("frame");
        Rogue(plane, frames);
      }
  });
  // 2. Spoofed seq: a heartbeat stream that jumps by ~10^12 and back.
  v1::Heartbeat fake;
  fake.set_actor("spoof");
  fake.set_kind("probe");
  for (uint64_t seq : {1ull, 2ull, 999'999'999'999ull, 3ull, 999'999'999'999ull, 1'000'000'000'000ull})
    Rogue(bus::Plane::kControl,
          {"actor.heartbeat/local", header("vb.v1.Heartbeat", seq, "spoof"), fake.SerializeAsString()});
  // 3. 100,000 publisher names, each a well-formed heartbeat of a new "actor".
  for (int i = 0; i < 100000; ++i) {
    std::string name = "fake-" + std::to_string(i);
    fake.set_actor(name);
    Rogue(bus::Plane::kControl,
          {"actor.heartbeat/local", header("vb.v1.Heartbeat", 1, name), fake.SerializeAsString()});
  }
  // 3b. 20,000 invented topics (the sniffer keeps statistics per topic).
  for (int i = 0; i < 20000; ++i)
    Rogue(bus::Plane::kControl, {"fake.t" + std::to_string(i) + "/local", header("vb.v1.Heartbeat", 1, "topics"), ""});
  // 4. 5,000 headers with invalid UTF-8 (protobuf logs each one it parses).
  int bad_utf8 = 0;
  until_seen("malformed_header", [&] {
    for (int i = 0; i < 5000; ++i, ++bad_utf8) {
      const auto& [plane, topic] = targets[size_t(i) % targets.size()];
      Rogue(plane,
            {topic, header("vb.v1.Heartbeat", uint64_t(bad_utf8), "bad\xff\xfe" + std::to_string(bad_utf8)), ""});
    }
  });
  // 5. 64 MiB payloads.
  const std::string huge(64 << 20, '\x5a');
  for (const auto& [plane, topic] : targets) Rogue(plane, {topic, header("vb.v1.Heartbeat", 7, "huge"), huge});
  const int64_t attack_end_ns = bus::MonoNs();

  // --- everyone still serves -----------------------------------------------
  // Heartbeats stamped after the attack, from the same processes.
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        for (const auto& a : actors)
          if (beat_ns_[a] <= attack_end_ns) return false;
        return true;
      },
      30000ms))
      << "an actor stopped heartbeating\n"
      << ReadFile(dir_.File("vb.log"));
  for (const auto& [name, hb] : beats_) EXPECT_EQ(int(hb.pid()), pid[name]) << name << " was restarted";
  ASSERT_TRUE(round_trip(10000ms)) << "a normal message no longer goes through the relay";
  // One more heartbeat each, so counters and RSS include the whole attack.
  const int64_t settled_ns = bus::MonoNs();
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        for (const auto& a : actors)
          if (beat_ns_[a] <= settled_ns) return false;
        return true;
      },
      10000ms));
  for (const auto& [name, hb] : beats_) {
    EXPECT_LT(hb.counters().drops(), 1'000'000u) << name << ": a spoofed seq counted as drops";
    EXPECT_LE(hb.extra().at("seq_publishers"), 2048) << name;
  }
  // The shapes did reach the actors (the test would prove nothing otherwise).
  for (const auto& a : {"control", "decoder", "relay"}) {
    const auto& extra = beats_[a].extra();
    EXPECT_GT(extra.count("malformed_frame_count") ? extra.at("malformed_frame_count") : 0, 0) << a;
    EXPECT_GT(extra.count("malformed_header") ? extra.at("malformed_header") : 0, 0) << a;
  }
  EXPECT_GT(beats_["control"].extra().at("seq_evicted"), 0) << "the 100,000 names did not reach control";

  // Memory: no process keeps what the attack sent. The launcher and the
  // actors keep bounded per-publisher state (8 MiB covers it; 100,000 names
  // cost 17-29 MB before issue 12), and the heap a drained queue left goes
  // back at the next heartbeat (bus/heap.h; actors count heap_trims): on a
  // loaded machine vb-gateway kept 8.4 MB of it before, the launcher 12.4. The broker and the sniffer hold what
  // is queued for slow readers (bounded by the control plane's HWM of
  // 100,000 messages per pipe, and glibc keeps some of a drained queue's
  // heap) and the sniffer its capped per-topic rows (20,000 invented topics
  // cost ~340 MB before): 64 MiB.
  for (const auto& [p, name] : procs) {
    const int64_t kGrowthKb = (name == "vb-broker" || name == "vb-sniff" ? 64 : 8) * 1024;
    int64_t after = RssKb(p);
    EXPECT_GT(after, 0) << name << " (pid " << p << ") is gone";
    EXPECT_LT(after - rss_before[p], kGrowthKb)
        << name << " (pid " << p << ") grew from " << rss_before[p] << " to " << after << " KiB";
    std::cout << "rss " << name << " " << rss_before[p] << " -> " << after << " KiB\n";
  }
  for (const auto& [name, hb] : beats_)
    std::cout << "heap_trims " << name << " " << (hb.extra().count("heap_trims") ? hb.extra().at("heap_trims") : 0)
              << "\n";
  // Logs: bounded, whatever protobuf and the actors wanted to say.
  for (const auto& f : log_files()) {
    int64_t grew = FileSize(f) - log_before[f];
    EXPECT_LT(grew, 256 * 1024) << f << " grew by " << grew << " bytes";
    std::cout << "log " << f.substr(f.rfind('/') + 1) << " +" << grew << " bytes\n";
  }
  EXPECT_TRUE(sniffer.running()) << ReadFile(dir_.File("sniff.log")).substr(0, 2000);
  // The launcher still obeys SIGTERM, promptly.
  EXPECT_EQ(vb.Stop(SIGTERM, 10000ms), 0) << ReadFile(dir_.File("vb.log"));
}

TEST_F(HostileTest, AllCommandsArriveWithASnifferOnEveryPlane) {
  dir_.Write("vb.yaml", "bus:\n  endpoint: " + endpoint_ + "\n");
  const std::string cfg = dir_.File("vb.yaml");
  Child broker, sniffer;
  ASSERT_TRUE(broker.Start({Bin("vb-broker"), "--config", cfg}, dir_.File("broker.log")));
  ASSERT_TRUE(sniffer.Start({Bin("vb-sniff"), "echo", "--config", cfg}, dir_.File("sniff.log")));
  // The receiver: counts commands and answers each as vb-control would.
  std::map<std::string, int> arrived;  // command_id → times
  int without_id = 0;
  auto acks = node_->Advertise(bus::topics::kDialogAck);
  node_->Subscribe<v1::DialogRequest>(bus::topics::kDialogRequest, [&](const auto& m) {
    if (m.msg.command_id().empty()) {
      ++without_id;
      return;
    }
    ++arrived[m.msg.command_id()];
    v1::CommandAck a;
    a.set_command_id(m.msg.command_id());
    a.set_result(v1::CommandAck::ACCEPTED);
    a.set_receiver("test");
    acks.Publish(a);
  });
  ASSERT_TRUE(node_->Connect().ok());
  node_->SetActive(true);
  // The sniffer listens to everything on both planes before the first command.
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        return node_->HasSubscriber(bus::Plane::kStream, "no.such/topic") &&
               node_->HasSubscriber(bus::Plane::kControl, "no.such/topic");
      },
      10000ms))
      << ReadFile(dir_.File("sniff.log"));
  const std::vector<std::vector<std::string>> verbs = {
      {"say", "hello"}, {"ptt", "down"}, {"ptt", "up"}, {"mode", "push_to_talk"}, {"interrupt"}};
  std::map<int, int> exits;
  std::string last_failure;
  for (int i = 0; i < 200; ++i) {
    std::vector<std::string> argv{Bin("vb")};
    for (const auto& a : verbs[size_t(i) % verbs.size()]) argv.push_back(a);
    argv.insert(argv.end(), {"--config", cfg});
    std::string log = dir_.File("vb-" + std::to_string(i) + ".log");
    int code = RunServing(argv, log, 15000ms);
    ++exits[code];
    if (code != 0) last_failure = ReadFile(log);
  }
  size_t distinct = arrived.size() + size_t(without_id);
  EXPECT_EQ(distinct, 200u) << "commands lost: " << 200 - int(distinct);
  EXPECT_EQ(exits[0], 200) << last_failure;
  EXPECT_TRUE(sniffer.running()) << "the sniffer died: the test ran without it";
  EXPECT_EQ(broker.Stop(SIGTERM, 5000ms), 0);
}

}  // namespace
}  // namespace vb::testing
