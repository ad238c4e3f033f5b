// The bus inside one process: a broker and nodes over inproc://. Checks the
// header every message carries, typed delivery, per-topic sequence numbers,
// device scoping, gap counting and the malformed-frame reasons.
#include <gtest/gtest.h>

#include "bus/broker/broker.h"
#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::bus {
namespace {

using std::chrono::milliseconds;

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.endpoint = "inproc://nodetest";
    ASSERT_TRUE(broker_.Bind().ok());
    ASSERT_TRUE(pub_.Connect().ok());
    ASSERT_TRUE(sub_.Connect().ok());
    pub_.SetActive(true);
  }
  // Waits until pub_ sees a subscriber for `topic` (subscriptions travel
  // through the broker asynchronously).
  void AwaitSubscriber(const std::string& topic, Plane plane) {
    ASSERT_TRUE(vb::testing::RunUntil(
        loop_, [&] { return pub_.HasSubscriber(plane, topic); }, milliseconds(3000)));
  }
  template <class M>
  void AwaitSubscriber(const Publisher<M>& p) {
    AwaitSubscriber(p.topic(), p.plane());
  }
  // sub_ counts the well-formed voice.vad/kitchen messages it gets in
  // good_vad_; returns a VadEvent header (seq 1) for raw sends.
  v1::Header ListenForVad() {
    sub_.Subscribe<v1::VadEvent>(topics::kVoiceVad, [this](const auto&) { ++good_vad_; });
    AwaitSubscriber("voice.vad/kitchen", Plane::kControl);
    v1::Header h;
    h.set_type("vb.v1.VadEvent");
    h.set_seq(1);
    return h;
  }
  uint64_t good_vad_ = 0;
  BusConfig config_;
  zmq::context_t ctx_{1};
  Loop loop_;
  Broker broker_{ctx_, loop_, MakeConfig()};
  Node pub_{ctx_, loop_, "pubber", "kitchen", MakeConfig()};
  Node sub_{ctx_, loop_, "subber", "kitchen", MakeConfig()};
  static BusConfig MakeConfig() {
    BusConfig c;
    c.endpoint = "inproc://nodetest";
    c.limits.max_payload = 100000;
    return c;
  }
};

TEST_F(NodeTest, DeliversTypedMessageWithFullHeader) {
  std::vector<v1::Header> headers;
  std::vector<uint64_t> indices;
  sub_.Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const Received<v1::AudioFrame>& m) {
    headers.push_back(m.header);
    indices.push_back(m.msg.sample_index());
    EXPECT_EQ(m.topic, "audio.mic/kitchen");
    EXPECT_EQ(m.device, "kitchen");
  });
  auto mic = pub_.Advertise(topics::kAudioMic);
  AwaitSubscriber(mic);
  int64_t before = MonoNs();
  for (int i = 0; i < 3; ++i) {
    v1::AudioFrame f;
    f.set_sample_index(uint64_t(i) * 320);
    ASSERT_TRUE(mic.Publish(f, {.origin_ns = 42 + i, .turn_id = "chat-7"}));
  }
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return headers.size() == 3; }, milliseconds(3000)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(headers[i].type(), "vb.v1.AudioFrame");
    EXPECT_EQ(headers[i].seq(), uint64_t(i + 1));
    EXPECT_EQ(headers[i].origin_ns(), 42 + i);
    EXPECT_GE(headers[i].mono_ns(), before);
    EXPECT_EQ(headers[i].source(), "pubber");
    EXPECT_EQ(headers[i].device(), "kitchen");
    EXPECT_EQ(headers[i].turn_id(), "chat-7");
    EXPECT_EQ(indices[i], uint64_t(i) * 320);
  }
  EXPECT_EQ(sub_.seq_tracker().total_lost(), 0u);
}

TEST_F(NodeTest, SequenceNumbersArePerTopic) {
  std::vector<uint64_t> mic_seqs, clean_seqs;
  sub_.Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto& m) { mic_seqs.push_back(m.header.seq()); });
  sub_.Subscribe<v1::AudioFrame>(topics::kAudioClean, [&](const auto& m) { clean_seqs.push_back(m.header.seq()); });
  auto mic = pub_.Advertise(topics::kAudioMic);
  auto clean = pub_.Advertise(topics::kAudioClean);
  AwaitSubscriber(mic);
  AwaitSubscriber(clean);
  v1::AudioFrame f;
  mic.Publish(f);
  clean.Publish(f);
  mic.Publish(f);
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return mic_seqs.size() == 2 && clean_seqs.size() == 1; }, milliseconds(3000)));
  EXPECT_EQ(mic_seqs, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(clean_seqs, (std::vector<uint64_t>{1}));
}

TEST_F(NodeTest, DeviceScopingIsExactNotPrefix) {
  int kitchen = 0, any = 0;
  sub_.Subscribe<v1::VadEvent>(topics::kVoiceVad, [&](const auto&) { ++kitchen; });  // own device
  Node other(ctx_, loop_, "other", "kitchen2", MakeConfig());
  ASSERT_TRUE(other.Connect().ok());
  other.SetActive(true);
  other.Subscribe<v1::VadEvent>(
      topics::kVoiceVad, [&](const auto&) { ++any; }, "*");
  auto vad2 = pub_.Advertise(topics::kVoiceVad, "kitchen2");
  auto vad = pub_.Advertise(topics::kVoiceVad);
  AwaitSubscriber(vad2);
  AwaitSubscriber(vad);
  vad2.Publish(v1::VadEvent());
  vad.Publish(v1::VadEvent());
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return any == 2; }, milliseconds(3000)));
  // "voice.vad/kitchen" is a prefix of "voice.vad/kitchen2" for ZeroMQ's
  // filter; the node must still deliver only its own device.
  EXPECT_EQ(kitchen, 1);
}

TEST_F(NodeTest, CountsSequenceGaps) {
  uint64_t got = 0;
  sub_.Subscribe<v1::VadEvent>(topics::kVoiceVad, [&](const auto&) { ++got; });
  AwaitSubscriber("voice.vad/kitchen", Plane::kControl);
  auto send = [&](uint64_t seq) {
    v1::Header h;
    h.set_type("vb.v1.VadEvent");
    h.set_seq(seq);
    h.set_source("rogue");
    pub_.SendRaw(Plane::kControl, {"voice.vad/kitchen", h.SerializeAsString(), ""});
  };
  for (uint64_t s : {1, 2, 5, 6, 10}) send(s);  // 3,4 and 7,8,9 lost
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return got == 5; }, milliseconds(3000)));
  EXPECT_EQ(sub_.seq_tracker().total_lost(), 5u);
  send(1);  // publisher restarted: a restart, not a loss
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return got == 6; }, milliseconds(3000)));
  EXPECT_EQ(sub_.seq_tracker().total_lost(), 5u);
  ASSERT_EQ(sub_.seq_tracker().Rows().size(), 1u);
  EXPECT_EQ(sub_.seq_tracker().Rows()[0].entry.restarts, 1u);
}

TEST_F(NodeTest, RejectsMalformedFramesByReasonAndKeepsServing) {
  uint64_t good = 0;
  sub_.Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto&) { ++good; });
  AwaitSubscriber("audio.mic/kitchen", Plane::kStream);
  v1::Header h;
  h.set_type("vb.v1.AudioFrame");
  h.set_seq(1);
  std::string header = h.SerializeAsString();
  v1::Header wrong = h;
  wrong.set_type("vb.v1.VadEvent");
  std::string big_header(5000, 'x');
  std::string huge_payload(200000, '\0');
  const std::string t = "audio.mic/kitchen";
  pub_.SendRaw(Plane::kStream, {t});                                           // frame count
  pub_.SendRaw(Plane::kStream, {t, header, "", "extra", "more"});              // frame count
  pub_.SendRaw(Plane::kStream, {t, "\xff\xff\xff garbage", ""});               // header
  pub_.SendRaw(Plane::kStream, {t, header.substr(0, header.size() - 3), ""});  // truncated header
  pub_.SendRaw(Plane::kStream, {t, big_header, ""});                           // oversized header
  pub_.SendRaw(Plane::kStream, {t, wrong.SerializeAsString(), ""});            // type mismatch
  pub_.SendRaw(Plane::kStream, {t, header, "\x0a\xff\xff\xff\xff\x0f"});       // payload
  pub_.SendRaw(Plane::kStream, {t, header, huge_payload});                     // oversized payload
  pub_.SendRaw(Plane::kStream, {t + "no-slash-here", header, ""});  // still audio.mic/kitchen…: other device
  auto mic = pub_.Advertise(topics::kAudioMic);
  mic.Publish(v1::AudioFrame());
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return good == 1; }, milliseconds(3000)));
  const auto& m = sub_.counters().malformed.by_reason;
  EXPECT_EQ(m[size_t(Malformed::kFrameCount)], 2u);
  EXPECT_EQ(m[size_t(Malformed::kHeader)], 3u);
  EXPECT_EQ(m[size_t(Malformed::kTypeMismatch)], 1u);
  EXPECT_EQ(m[size_t(Malformed::kPayload)], 1u);
  EXPECT_EQ(m[size_t(Malformed::kOversized)], 1u);
  EXPECT_EQ(sub_.counters().malformed.total(), 8u);
}

// Issue 12: the decoder passed m.header.turn_id() by reference into code that
// published (the tail of the previous turn) before copying it, and every
// later reply carried the dead turn's id, because incoming and outgoing
// headers were one object. A handler that publishes must still read its own
// incoming header afterwards.
TEST_F(NodeTest, Issue12HandlerThatPublishesKeepsItsIncomingHeader) {
  std::vector<std::string> labels;
  auto out = sub_.Advertise(topics::kAudioOut);
  sub_.SetActive(true);
  auto start_turn = [&](const std::string& turn_id) {
    v1::AudioFrame tail;
    out.Publish(tail, {.turn_id = "dead-turn"});  // finishes the previous turn first
    labels.push_back(turn_id);                    // …then copies the new turn's id
  };
  sub_.Subscribe<v1::EncodedAudio>(topics::kSessionAudio, [&](const Received<v1::EncodedAudio>& m) {
    start_turn(m.header.turn_id());
    EXPECT_EQ(m.header.source(), "pubber");
    EXPECT_EQ(m.header.type(), "vb.v1.EncodedAudio");
  });
  auto audio = pub_.Advertise(topics::kSessionAudio);
  AwaitSubscriber(audio);
  audio.Publish(v1::EncodedAudio(), {.turn_id = "turn-1"});
  audio.Publish(v1::EncodedAudio(), {.turn_id = "turn-2"});
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return labels.size() == 2; }, milliseconds(3000)));
  EXPECT_EQ(labels, (std::vector<std::string>{"turn-1", "turn-2"}));
}

// Issue 12: a message of 17 or more frames froze the subscriber for good
// (a blocking receive in a drain loop whose condition never changed). Any
// frame count is counted and dropped, and the next message goes through.
TEST_F(NodeTest, Issue12AnyFrameCountIsDroppedWithoutBlocking) {
  v1::Header h = ListenForVad();
  const std::string t = "voice.vad/kitchen";
  for (size_t n : {4, 16, 17, 18, 1000}) {
    std::vector<std::string> frames{t, h.SerializeAsString()};
    while (frames.size() < n) frames.push_back("x");
    ASSERT_TRUE(pub_.SendRaw(Plane::kControl, frames));
  }
  auto vad = pub_.Advertise(topics::kVoiceVad);
  vad.Publish(v1::VadEvent());
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return good_vad_ == 1; }, milliseconds(3000)))
      << "the subscriber stopped serving after an absurd frame count";
  EXPECT_EQ(sub_.counters().malformed.by_reason[size_t(Malformed::kFrameCount)], 5u);
}

// Headers whose strings are not UTF-8 (protobuf refuses them and logs) and
// absurd publisher names are counted as malformed headers, not delivered.
TEST_F(NodeTest, InvalidUtf8AndOversizedSourceAreMalformedHeaders) {
  v1::Header h = ListenForVad();
  h.set_source(std::string("bad\xff\xfe", 5));
  ASSERT_TRUE(pub_.SendRaw(Plane::kControl, {"voice.vad/kitchen", h.SerializePartialAsString(), ""}));
  h.set_source(std::string(kMaxSourceBytes + 1, 'n'));
  ASSERT_TRUE(pub_.SendRaw(Plane::kControl, {"voice.vad/kitchen", h.SerializeAsString(), ""}));
  auto vad = pub_.Advertise(topics::kVoiceVad);
  vad.Publish(v1::VadEvent());
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return good_vad_ == 1; }, milliseconds(3000)));
  EXPECT_EQ(sub_.counters().malformed.by_reason[size_t(Malformed::kHeader)], 2u);
}

// Issue 12: HasSubscriber answered for either plane, so a one-shot sender on
// the control plane was satisfied by a stream-plane subscription.
TEST_F(NodeTest, Issue12HasSubscriberIsPerPlane) {
  sub_.SubscribeRaw(Plane::kStream, "", [](const RawMessage&) {});  // a sniffer on the stream plane
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return pub_.HasSubscriber(Plane::kStream, "dialog.order/kitchen"); }, milliseconds(3000)));
  auto cmd = pub_.Advertise(topics::kDialogOrder);
  EXPECT_FALSE(pub_.HasSubscriber(cmd));
  sub_.Subscribe<v1::DialogCommand>(topics::kDialogOrder, [](const auto&) {});
  AwaitSubscriber(cmd);
  EXPECT_TRUE(pub_.HasSubscriber(cmd));
}

// A handler may unsubscribe its own topic and subscribe others while a
// message is being delivered (a hub switching the device it follows does):
// the handlers of that message not yet run are skipped, the new ones get
// the next message, and nothing is called through a dangling entry.
TEST_F(NodeTest, AHandlerMaySubscribeAndUnsubscribeWhileItRuns) {
  int first = 0, second = 0, added = 0;
  bool switched = false;
  sub_.Subscribe<v1::VadEvent>(topics::kVoiceVad, [&](const auto&) {
    ++first;
    if (switched) return;
    switched = true;
    sub_.Unsubscribe(topics::kVoiceVad);  // both handlers of this topic, this one included
    for (int i = 0; i < 32; ++i)          // enough to move the subscription table
      sub_.Subscribe<v1::VadEvent>(
          topics::kVoiceVad, [&](const auto&) { ++added; }, "office");
    sub_.Subscribe<v1::VadEvent>(topics::kVoiceVad, [&](const auto&) { ++added; });
  });
  sub_.Subscribe<v1::VadEvent>(topics::kVoiceVad, [&](const auto&) { ++second; });
  auto p = pub_.Advertise(topics::kVoiceVad);
  AwaitSubscriber(p);
  v1::VadEvent e;
  ASSERT_TRUE(p.Publish(e));
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return switched; }, milliseconds(3000)));
  ASSERT_TRUE(p.Publish(e));
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return added >= 1; }, milliseconds(3000)));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0);  // unsubscribed before its turn came
  EXPECT_EQ(added, 1);   // only the kitchen one of the new handlers
  EXPECT_EQ(sub_.counters().handler_errors, 0u);
}

TEST_F(NodeTest, InactiveNodeDropsPublishesAndCountsThem) {
  pub_.SetActive(false);
  auto vad = pub_.Advertise(topics::kVoiceVad);
  EXPECT_FALSE(vad.Publish(v1::VadEvent()));
  EXPECT_FALSE(vad.Publish(v1::VadEvent()));
  EXPECT_EQ(pub_.counters().dropped_inactive, 2u);
}

}  // namespace
}  // namespace vb::bus
