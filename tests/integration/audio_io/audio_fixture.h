// Test fixture for the audio actors with real processes: a private bus
// (broker in a temp dir), a test node that publishes and listens, heartbeats
// collected per actor, actors started with their logs in the temp dir, and
// (for real-ALSA tests) a private PulseAudio with a null sink started and
// stopped through tests/tools/pulse_env.sh.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>

#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::testing {

using namespace std::chrono_literals;

// The private sound server of one test.
class PulseServer {
 public:
  explicit PulseServer(std::string dir) : dir_(std::move(dir)) {}
  ~PulseServer() { Stop(); }
  // Starts it and returns the environment its clients need ("K=V").
  bool Start() {
    std::string out;
    int rc = RunCommand({Script(), "start", dir_}, &out, 20000ms);
    if (rc != 0) {
      ADD_FAILURE() << "pulse_env.sh start failed:\n" << out;
      return false;
    }
    env_.clear();
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("export ", 0) == 0) env_.push_back(line.substr(7));
    running_ = true;
    return true;
  }
  void Stop() {
    if (!running_) return;
    std::string out;
    RunCommand({Script(), "stop", dir_}, &out, 20000ms);
    running_ = false;
  }
  const std::vector<std::string>& env() const { return env_; }

 private:
  static std::string Script() { return SourceDir() + "/tests/tools/pulse_env.sh"; }
  std::string dir_;
  std::vector<std::string> env_;
  bool running_ = false;
};

class AudioFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.File("bus");
    bus::BusConfig c;
    c.endpoint = endpoint_;
    node_ = std::make_unique<bus::Node>(ctx_, loop_, "test", "local", c);
    node_->Subscribe<v1::Heartbeat>(
        bus::topics::kHeartbeat,
        [this](const auto& m) {
          beats_[m.msg.actor()] = m.msg;
          beat_ns_[m.msg.actor()] = m.header.mono_ns();
        },
        "*");
    node_->Subscribe<v1::PlaybackEvent>(bus::topics::kPlaybackEvent, [this](const auto& m) {
      events_.push_back({m.msg, bus::MonoNs()});
    });
  }
  void TearDown() override {
    for (auto& [name, child] : actors_) child.Stop(SIGTERM, 5000ms);
    broker_.Stop(SIGTERM, 5000ms);
    node_.reset();
    ctx_.shutdown();
  }
  std::string WriteConfig(const std::string& body) {
    dir_.Write("vb.yaml", "bus:\n  endpoint: " + endpoint_ + "\n  heartbeat_ms: 500\n" + body);
    return dir_.File("vb.yaml");
  }
  void StartBroker() {
    ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", dir_.File("vb.yaml")}, dir_.File("broker.log")));
  }
  void StartActor(const std::string& kind, const std::vector<std::string>& env = {}) {
    Child c;
    ASSERT_TRUE(c.Start({Bin("vb-" + kind), "--config", dir_.File("vb.yaml")}, Log(kind), env));
    actors_[kind] = std::move(c);
  }
  std::string Log(const std::string& kind) { return dir_.File(kind + ".log"); }
  void Connect() {
    ASSERT_TRUE(node_->Connect().ok());
    node_->SetActive(true);
  }
  bool AwaitBeat(const std::string& actor, std::chrono::milliseconds timeout = 10000ms) {
    return RunUntil(
        loop_, [&] { return beats_.count(actor) > 0; }, timeout);
  }
  int64_t Extra(const std::string& actor, const std::string& key) {
    auto it = beats_.find(actor);
    if (it == beats_.end()) return -1;
    auto e = it->second.extra().find(key);
    return e == it->second.extra().end() ? 0 : e->second;
  }
  // When the actor sent its last heartbeat (its counters are of that moment).
  int64_t BeatNs(const std::string& actor) { return beat_ns_.count(actor) ? beat_ns_[actor] : 0; }
  // Waits for a heartbeat sent after now (fresh counters).
  // One already queued for us when this is called was sent before, so the
  // actor's own send stamp decides, not when it reaches the test.
  bool FreshBeat(const std::string& actor, std::chrono::milliseconds timeout = 3000ms) {
    const int64_t now = bus::MonoNs();
    return RunUntil(
        loop_, [&] { return BeatNs(actor) > now; }, timeout);
  }
  bool AwaitEvent(v1::PlaybackEvent::Kind kind, const std::string& turn, std::chrono::milliseconds timeout) {
    return RunUntil(
        loop_, [&] { return FindEvent(kind, turn) != nullptr; }, timeout);
  }
  const v1::PlaybackEvent* FindEvent(v1::PlaybackEvent::Kind kind, const std::string& turn) {
    for (auto& [e, at] : events_)
      if (e.kind() == kind && (turn.empty() || e.turn_id() == turn)) return &e;
    return nullptr;
  }
  // Sends a command, as vb-control would (dialog.order), once someone listens (a publish before the broker has
  // passed on the subscription would be lost).
  void Command(const v1::DialogCommand& cmd) {
    if (!command_.valid()) command_ = node_->Advertise(bus::topics::kDialogOrder);
    EXPECT_TRUE(RunUntil(
        loop_, [&] { return node_->HasSubscriber(command_); }, 5000ms));
    command_.Publish(cmd);
  }
  void Interrupt(const std::string& turn) {
    v1::DialogCommand c;
    c.mutable_interrupt()->set_turn_id(turn);
    c.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
    Command(c);
  }
  size_t CountInLog(const std::string& kind, const std::string& needle) {
    std::string log = ReadFile(Log(kind));
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  }

  TempDir dir_;
  std::string endpoint_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_;
  std::map<std::string, v1::Heartbeat> beats_;
  std::map<std::string, int64_t> beat_ns_;
  std::vector<std::pair<v1::PlaybackEvent, int64_t>> events_;
  std::map<std::string, Child> actors_;
  Child broker_;
  bus::Publisher<v1::DialogCommand> command_;
};

// Samples of a frame as int16.
inline std::vector<int16_t> Pcm(const v1::AudioFrame& f) {
  std::vector<int16_t> v(f.pcm().size() / 2);
  memcpy(v.data(), f.pcm().data(), v.size() * 2);
  return v;
}

inline double Rms(const std::vector<int16_t>& v, size_t from = 0, size_t to = SIZE_MAX) {
  to = std::min(to, v.size());
  if (to <= from) return 0;
  double s = 0;
  for (size_t i = from; i < to; ++i) s += double(v[i]) * v[i];
  return std::sqrt(s / double(to - from));
}

}  // namespace vb::testing
