// A satellite's bus joined to the hub's (issue 16 item 2), in one process:
// the hub's broker on tcp://127.0.0.1 with CURVE, the satellite's bridge
// (bus/broker/uplink.h) and its local actors on ipc://. What a user of a
// real link would notice: the microphone stream does not cross the link
// unless someone at the hub subscribes to it, wake events go up and
// commands come down, a client with an unknown key is refused, and the
// satellite is back on its own after the hub's broker restarts.
#include <gtest/gtest.h>

#include "bus/broker/broker.h"
#include "bus/broker/uplink.h"
#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::bus {
namespace {

using std::chrono::milliseconds;

class SatelliteBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* who : {"server", "bridge", "hub", "stranger"}) {
      KeyPair kp;
      ASSERT_TRUE(GenerateKeyPair(&kp).ok());
      dir_.Write(std::string(who) + ".key", "public: \"" + kp.public_key + "\"\nsecret: \"" + kp.secret_key + "\"\n");
      keys_[who] = kp.public_key;
    }
    hub_.curve.server_key_file = dir_.File("server.key");
    hub_.curve.server_public_key = keys_["server"];
    hub_.curve.allowed_clients = {keys_["bridge"], keys_["hub"]};
    // A free block of 4 ports: the broker says so when it cannot bind.
    for (int attempt = 0; attempt < 40 && !broker_; ++attempt) {
      hub_.endpoint = "tcp://127.0.0.1:" + std::to_string(21000 + (getpid() * 7 + attempt * 409) % 38000);
      broker_ = std::make_unique<Broker>(ctx_, loop_, hub_);
      if (!broker_->Bind().ok()) broker_.reset();
    }
    ASSERT_TRUE(broker_);
    local_.endpoint = "ipc://" + dir_.File("sat-kitchen");
    BusConfig up = hub_;
    up.curve.client_key_file = dir_.File("bridge.key");
    bridge_ = std::make_unique<SatelliteBridge>(ctx_, loop_, up, local_.endpoint);
    ASSERT_TRUE(bridge_->Start().ok());
  }
  BusConfig HubClient(const std::string& key) {
    BusConfig c = hub_;
    c.curve.client_key_file = dir_.File(key + ".key");
    return c;
  }
  std::unique_ptr<Node> Connected(const std::string& name, const std::string& device, const BusConfig& c) {
    auto n = std::make_unique<Node>(ctx_, loop_, name, device, c);
    EXPECT_TRUE(n->Connect().ok());
    n->SetActive(true);
    return n;
  }
  uint64_t HubStreamForwarded() const { return broker_->counters().forwarded[int(Plane::kStream)]; }
  // Publishes `n` mic frames on the satellite, each once the local afe got the one before.
  void Speak(Publisher<v1::AudioFrame>& mic, int n, const int& heard_by_afe) {
    v1::AudioFrame f;
    f.set_pcm(std::string(640, '\1'));
    for (int i = 0; i < n; ++i) {
      const int before = heard_by_afe;
      mic.Publish(f);
      ASSERT_TRUE(vb::testing::RunUntil(
          loop_, [&] { return heard_by_afe > before; }, milliseconds(3000)));
    }
  }

  vb::testing::TempDir dir_;
  std::map<std::string, std::string> keys_;
  zmq::context_t ctx_{1};
  Loop loop_;
  BusConfig hub_, local_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<SatelliteBridge> bridge_;
};

TEST_F(SatelliteBridgeTest, MicrophoneStaysLocalUnlessTheHubSubscribesEventsAndCommandsCross) {
  auto capture = Connected("capture@kitchen", "kitchen", local_);
  auto afe = Connected("afe@kitchen", "kitchen", local_);
  auto playback = Connected("playback@kitchen", "kitchen", local_);
  auto control = Connected("control", "hub", HubClient("hub"));
  int afe_frames = 0, hub_frames = 0, commands = 0;
  std::vector<std::string> wakes;
  afe->Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto&) { ++afe_frames; });
  playback->Subscribe<v1::DialogCommand>(topics::kDialogOrder, [&](const auto&) { ++commands; });
  control->Subscribe<v1::WakeEvent>(
      topics::kVoiceWake, [&](const auto& m) { wakes.emplace_back(m.device); }, "*");
  auto mic = capture->Advertise(topics::kAudioMic);
  auto wake = afe->Advertise(topics::kVoiceWake);
  auto command = control->Advertise(topics::kDialogOrder, "kitchen");
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return capture->HasSubscriber(mic) && afe->HasSubscriber(wake) && control->HasSubscriber(command); },
      milliseconds(5000)));

  // The satellite's own afe hears its microphone; the link carries none of it
  // once the bridge has seen the topic is published here.
  Speak(mic, 20, afe_frames);
  const uint64_t settled = HubStreamForwarded();
  Speak(mic, 100, afe_frames);
  EXPECT_EQ(HubStreamForwarded(), settled) << "microphone frames crossed the link with nobody at the hub listening";

  // Events go up, commands come down.
  v1::WakeEvent w;
  w.set_score(-1200);
  wake.Publish(w);
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return !wakes.empty(); }, milliseconds(3000)));
  EXPECT_EQ(wakes[0], "kitchen");
  v1::DialogCommand c;
  c.mutable_play_prompt()->set_name("wake");
  command.Publish(c);
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return commands == 1; }, milliseconds(3000)));

  // Someone at the hub subscribes: now the microphone crosses, to it only;
  // the afe here does not get a second copy back down.
  {
    auto sniffer = Connected("sniffer", "hub", HubClient("hub"));
    sniffer->Subscribe<v1::AudioFrame>(
        topics::kAudioMic, [&](const auto&) { ++hub_frames; }, "kitchen");
    // Frames until the hub's subscription has reached the satellite.
    for (int i = 0; i < 300 && hub_frames == 0; ++i) Speak(mic, 1, afe_frames);
    ASSERT_GT(hub_frames, 0);
    const int afe_before = afe_frames, hub_before = hub_frames;
    Speak(mic, 50, afe_frames);
    ASSERT_TRUE(vb::testing::RunUntil(
        loop_, [&] { return hub_frames >= hub_before + 50; }, milliseconds(3000)));
    // Let anything in flight arrive, then count: one copy per frame locally.
    vb::testing::RunUntil(
        loop_, [] { return false; }, milliseconds(200));
    EXPECT_EQ(afe_frames, afe_before + 50);
    EXPECT_GT(bridge_->counters().up[int(Plane::kStream)], 0u);
  }
  // The sniffer gone, the link is quiet again.
  uint64_t quiet = 0;
  for (int round = 0; round < 100; ++round) {
    quiet = HubStreamForwarded();
    Speak(mic, 20, afe_frames);
    if (HubStreamForwarded() == quiet) break;
  }
  EXPECT_EQ(HubStreamForwarded(), quiet) << "the microphone kept crossing after the hub stopped listening";
}

// Device names that start alike (kitchen, kitchen2): a hub subscription of
// the kitchen's clean audio is a ZeroMQ prefix that kitchen2's matches too.
// Only the kitchen's crosses the link; commands for kitchen2 that come down
// by the same prefix stop at the bridge.
TEST_F(SatelliteBridgeTest, ADeviceWhoseNameStartsLikeAnothersKeepsItsAudioOffTheLink) {
  auto afe = Connected("afe@kitchen", "kitchen", local_);
  auto afe2 = Connected("afe@kitchen2", "kitchen2", local_);
  auto playback = Connected("playback@kitchen", "kitchen", local_);
  auto session = Connected("session", "hub", HubClient("hub"));
  auto control = Connected("control", "hub", HubClient("hub"));
  int heard = 0, commands = 0;
  session->Subscribe<v1::AudioFrame>(
      topics::kAudioClean, [&](const auto&) { ++heard; }, "kitchen");
  playback->Subscribe<v1::DialogCommand>(topics::kDialogOrder, [&](const auto&) { ++commands; });
  auto clean = afe->Advertise(topics::kAudioClean);
  auto clean2 = afe2->Advertise(topics::kAudioClean);
  auto command = control->Advertise(topics::kDialogOrder, "kitchen");
  auto command2 = control->Advertise(topics::kDialogOrder, "kitchen2");
  v1::AudioFrame f;
  f.set_pcm(std::string(640, '\1'));
  // Until the session's subscription has reached the satellite.
  for (int i = 0; i < 300 && heard == 0; ++i) {
    clean.Publish(f);
    vb::testing::RunUntil(
        loop_, [&] { return heard > 0; }, milliseconds(20));
  }
  ASSERT_GT(heard, 0);
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return control->HasSubscriber(command); }, milliseconds(5000)));
  vb::testing::RunUntil(
      loop_, [] { return false; }, milliseconds(200));  // frames in flight arrive
  const uint64_t forwarded = HubStreamForwarded();
  const int before = heard;
  for (int i = 1; i <= 50; ++i) {  // kitchen2's frame, then the kitchen's, once the one before arrived
    clean2.Publish(f);
    clean.Publish(f);
    ASSERT_TRUE(vb::testing::RunUntil(
        loop_, [&] { return heard >= before + i; }, milliseconds(3000)));
  }
  vb::testing::RunUntil(
      loop_, [] { return false; }, milliseconds(200));  // anything else in flight arrives
  EXPECT_EQ(HubStreamForwarded() - forwarded, 50u) << "kitchen2's audio crossed the link for the kitchen's subscriber";

  const uint64_t down = bridge_->counters().down[int(Plane::kControl)];
  v1::DialogCommand c;
  c.mutable_play_prompt()->set_name("wake");
  for (int i = 0; i < 10; ++i) command2.Publish(c);
  command.Publish(c);  // after kitchen2's: it arrives last
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return commands == 1; }, milliseconds(3000)));
  EXPECT_EQ(bridge_->counters().down[int(Plane::kControl)] - down, 1u);
  EXPECT_GE(bridge_->counters().other_device, 10u);
}

TEST_F(SatelliteBridgeTest, AClientWithAnUnknownKeyIsRefused) {
  auto afe = Connected("afe@kitchen", "kitchen", local_);
  auto wake = afe->Advertise(topics::kVoiceWake);
  auto stranger = Connected("stranger", "hub", HubClient("stranger"));
  auto control = Connected("control", "hub", HubClient("hub"));
  int strangers = 0, controls = 0;
  stranger->Subscribe<v1::WakeEvent>(
      topics::kVoiceWake, [&](const auto&) { ++strangers; }, "*");
  control->Subscribe<v1::WakeEvent>(
      topics::kVoiceWake, [&](const auto&) { ++controls; }, "*");
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return afe->HasSubscriber(wake); }, milliseconds(5000)));
  // Until the control's copy arrives: the stranger's would have by then too.
  for (int i = 0; i < 50 && controls < 3; ++i) {
    wake.Publish(v1::WakeEvent());
    vb::testing::RunUntil(
        loop_, [&] { return controls > i; }, milliseconds(100));
  }
  ASSERT_GE(controls, 3);
  EXPECT_EQ(strangers, 0);
  EXPECT_GT(broker_->counters().auth_denied, 0u);
}

TEST_F(SatelliteBridgeTest, TheSatelliteRejoinsAHubThatCameBack) {
  auto afe = Connected("afe@kitchen", "kitchen", local_);
  auto wake = afe->Advertise(topics::kVoiceWake);
  auto control = Connected("control", "hub", HubClient("hub"));
  int heard = 0;
  control->Subscribe<v1::WakeEvent>(
      topics::kVoiceWake, [&](const auto&) { ++heard; }, "*");
  auto until_heard = [&](int n) {
    for (int i = 0; i < 200 && heard < n; ++i) {
      wake.Publish(v1::WakeEvent());
      vb::testing::RunUntil(
          loop_, [&] { return heard >= n; }, milliseconds(50));
    }
    return heard >= n;
  };
  ASSERT_TRUE(until_heard(1));
  // The hub's broker goes away and comes back on the same address.
  broker_.reset();
  vb::testing::RunUntil(
      loop_, [] { return false; }, milliseconds(300));
  broker_ = std::make_unique<Broker>(ctx_, loop_, hub_);
  ASSERT_TRUE(broker_->Bind().ok());
  const int before = heard;
  EXPECT_TRUE(until_heard(before + 1)) << "the satellite's events never reached the hub again";
}

}  // namespace
}  // namespace vb::bus
