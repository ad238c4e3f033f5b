// SessionCore: the streaming rule per mode, commands → wire, outage buffering
// and replay, cancel and late audio, Opus uplink, reconnect back-off.
#include "actors/session/session_core.h"

#include <gtest/gtest.h>
#include <opus/opus.h>
#include <nlohmann/json.hpp>

namespace vb::session {
namespace {

int64_t MonoNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

using Json = nlohmann::json;

struct FakePort : SessionPort {
  std::vector<Json> sent;
  std::vector<std::pair<v1::SessionEvent, std::string>> events;
  std::vector<std::pair<v1::EncodedAudio, std::string>> audio;
  std::vector<std::string> conversations;
  std::vector<std::string> problems;
  bool refuse = false;
  std::vector<int64_t> origins;  // of each text sent (0: not measured as mic-to-wire)
  bool SendText(std::string text, int64_t origin_ns) override {
    if (refuse) return false;
    sent.push_back(Json::parse(text));
    origins.push_back(origin_ns);
    return true;
  }
  void PublishEvent(const v1::SessionEvent& e, const std::string& turn) override { events.emplace_back(e, turn); }
  void PublishAudio(const v1::EncodedAudio& a, const std::string& turn, int64_t) override {
    audio.emplace_back(a, turn);
  }
  void ConversationChanged(const std::string& id) override { conversations.push_back(id); }
  void Problem(const std::string& what) override { problems.push_back(what); }
  std::vector<std::string> notes;
  void Note(const std::string& what) override { notes.push_back(what); }
  struct AckRec {
    std::string id;
    v1::CommandAck::Result result;
    std::string reason;
  };
  std::vector<AckRec> acks;
  int urgent_saves = 0;
  void Ack(const std::string& id, v1::CommandAck::Result r, const std::string& reason) override {
    acks.push_back({id, r, reason});
  }
  void ResumeChanged(bool urgent) override { urgent_saves += urgent; }
  std::vector<std::pair<std::string, v1::BackfillRequest>> backfills;  // (device, request)
  void RequestBackfill(const std::string& device, const v1::BackfillRequest& req) override {
    backfills.emplace_back(device, req);
  }

  std::vector<Json> Sent(const std::string& type) const {
    std::vector<Json> r;
    for (const auto& j : sent)
      if (j["event_type"] == type) r.push_back(j);
    return r;
  }
  std::vector<const v1::SessionEvent*> Events(v1::SessionEvent::EventCase c) const {
    std::vector<const v1::SessionEvent*> r;
    for (const auto& [e, t] : events)
      if (e.event_case() == c) r.push_back(&e);
    return r;
  }
};

v1::AudioFrame Frame(int16_t value, size_t samples = 320, uint64_t sample_index = 0) {
  v1::AudioFrame f;
  f.set_sample_index(sample_index);
  f.set_sample_rate(16000);
  f.set_channels(1);
  std::string pcm(samples * 2, '\0');
  for (size_t i = 0; i < samples; ++i) {
    pcm[2 * i] = char(value & 0xff);
    pcm[2 * i + 1] = char((value >> 8) & 0xff);
  }
  f.set_pcm(pcm);
  return f;
}

std::string Delta(const Json& append) {
  std::string raw;
  EXPECT_TRUE(Base64Decode(append["data"]["delta"].get<std::string>(), &raw));
  return raw;
}

std::string Ev(const std::string& type, Json data = nullptr) {
  Json j = {{"id", "e"}, {"event_type", type}};
  if (!data.is_null()) j["data"] = data;
  return j.dump();
}

v1::DialogCommand Cmd(auto setter) {
  v1::DialogCommand c;
  setter(c);
  return c;
}

struct CoreTest : ::testing::Test {
  FakePort port;
  std::unique_ptr<SessionCore> core;
  int ring_ms = 4000;
  std::string device;
  void Make(v1::DialogMode mode, std::string codec = "pcm", int outage_ms = 5000) {
    CoreOptions o;
    o.mode = mode;
    o.ring_ms = ring_ms;
    o.device = device;
    o.settings.input_codec = codec;
    o.outage_buffer_ms = outage_ms;
    o.service = "coze test";
    core = std::make_unique<SessionCore>(o, &port);
    std::string err;
    ASSERT_TRUE(core->Init(&err)) << err;
    core->SetConversation("conv-1");
  }
  // Connected, and the server has applied our chat.update: held audio and
  // queued texts go out only then.
  void Connect() {
    core->OnConnected();
    core->OnServerText(Ev("chat.updated", Json::object()), 1);
  }
  void StartChat(const std::string& id) {
    core->OnServerText(Ev("conversation.chat.created", {{"id", id}, {"conversation_id", "conv-1"}}), 1);
  }
};

TEST_F(CoreTest, ConnectSendsChatUpdateWithTheConversationFirst) {
  Make(v1::MODE_CONTINUOUS);
  EXPECT_EQ(port.conversations, std::vector<std::string>{"conv-1"});
  core->OnConnected();
  ASSERT_FALSE(port.sent.empty());
  EXPECT_EQ(port.sent[0]["event_type"], "chat.update");
  EXPECT_EQ(port.sent[0]["data"]["chat_config"]["conversation_id"], "conv-1");
  EXPECT_EQ(port.sent[0]["data"]["turn_detection"]["type"], "server_vad");
  auto st = port.Events(v1::SessionEvent::kStatus);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_TRUE(st[0]->status().connected());
  EXPECT_EQ(st[0]->status().conversation_id(), "conv-1");
}

TEST_F(CoreTest, ContinuousModeStreamsWhileConnected) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnAudio(Frame(1), 0);
  core->OnAudio(Frame(2), 0);
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(Delta(appends[1]), Frame(2).pcm());
}

TEST_F(CoreTest, WakeWordModeStreamsOnlyBetweenStartAndStop) {
  Make(v1::MODE_WAKE_WORD);
  Connect();
  core->OnAudio(Frame(9, 320, 0), 0);
  EXPECT_TRUE(port.Sent("input_audio_buffer.append").empty());
  core->OnCommand(Cmd([](auto& c) { c.mutable_start_listening()->set_from_sample(0); }));
  core->OnAudio(Frame(2, 320, 320), 0);
  core->OnCommand(Cmd([](auto& c) { c.mutable_stop_listening()->set_commit(true); }));
  core->OnAudio(Frame(3, 320, 640), 0);
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(Delta(appends[0]), Frame(9).pcm());  // from the sample named, out of the session's own ring
  EXPECT_EQ(Delta(appends[1]), Frame(2).pcm());
  EXPECT_EQ(port.Sent("input_audio_buffer.complete").size(), 1u);
  // Wake word: the server's VAD still ends the user's turn.
  EXPECT_EQ(port.sent[0]["data"]["turn_detection"]["type"], "server_vad");
}

// Wake word: StartListening names the phrase's end by sample; the session
// finds it in its own ring of the device's audio and sends from that exact
// sample on, then the live frames: the start of a question said right after
// the phrase is kept, and no PCM travels with the command.
TEST_F(CoreTest, StartListeningFindsTheQuestionInTheSessionsOwnRing) {
  Make(v1::MODE_WAKE_WORD);
  Connect();
  for (int i = 0; i < 4; ++i) {
    auto f = Frame(int16_t(10 + i));
    f.set_sample_index(uint64_t(1000 + 320 * i));
    core->OnAudio(f, 0);
  }
  EXPECT_TRUE(port.Sent("input_audio_buffer.append").empty());
  // The phrase ended 100 samples into the second frame (index 1320).
  core->OnCommand(Cmd([](auto& c) { c.mutable_start_listening()->set_from_sample(1420); }));
  auto live = Frame(14);
  live.set_sample_index(1000 + 320 * 4);
  core->OnAudio(live, 0);
  std::string sent;
  for (const auto& a : port.Sent("input_audio_buffer.append")) sent += Delta(a);
  const std::string expected = Frame(11, 220).pcm() + Frame(12).pcm() + Frame(13).pcm() + Frame(14).pcm();
  EXPECT_EQ(sent.size(), expected.size());
  EXPECT_EQ(sent, expected) << "the rest of the frame the phrase ended in, the frames after, then live";
  EXPECT_EQ(core->counters().frames_bridged, 3u);
  EXPECT_EQ(core->counters().start_from_ring, 1u);
  EXPECT_TRUE(port.backfills.empty()) << "found in the own ring: nobody is asked";
}

// Audio whose every sample holds its own index (mod 2^15): what reaches the
// wire can be checked sample by sample for gaps and doubles.
v1::AudioFrame Ramp(uint64_t first, size_t samples = 320) {
  v1::AudioFrame f = Frame(0, samples, first);
  std::string pcm(samples * 2, '\0');
  for (size_t i = 0; i < samples; ++i) {
    const auto v = uint16_t((first + i) & 0x7fff);
    pcm[2 * i] = char(v & 0xff);
    pcm[2 * i + 1] = char(v >> 8);
  }
  f.set_pcm(pcm);
  return f;
}

v1::AudioBackfill Chunk(const std::string& id, uint64_t first, size_t samples) {
  v1::AudioBackfill b;
  b.set_request_id(id);
  *b.mutable_frame() = Ramp(first, samples);
  return b;
}

v1::AudioBackfill Last(const std::string& id, uint64_t end, uint64_t oldest, uint64_t newest_end) {
  v1::AudioBackfill b;
  b.set_request_id(id);
  b.set_last(true);
  b.set_end_sample(end);
  b.set_oldest_held(oldest);
  b.set_newest_end(newest_end);
  b.set_beyond_newest(false);
  return b;
}

struct StartTest : CoreTest {
  std::string Wire() {
    std::string sent;
    for (const auto& a : port.Sent("input_audio_buffer.append")) sent += Delta(a);
    return sent;
  }
  // The wire holds samples [from, end) exactly once, in order.
  void ExpectWire(uint64_t from, uint64_t end) {
    const std::string sent = Wire();
    ASSERT_EQ(sent.size(), (end - from) * 2) << "samples on the wire: " << sent.size() / 2;
    EXPECT_EQ(sent, Ramp(from, size_t(end - from)).pcm()) << "a gap or a double between " << from << " and " << end;
  }
  void Listen(const std::string& to, uint64_t from) {
    core->OnCommand(Cmd([&](auto& c) {
      c.mutable_start_listening()->set_device(to);
      c.mutable_start_listening()->set_from_sample(from);
    }));
  }
};

// The question started before what the own ring still holds: asked of the
// device's vb-wakevad ring; the answer overlaps the ring and the live
// frames that came meanwhile, and each sample goes out once.
TEST_F(StartTest, ARingMissIsFetchedAndEachSampleGoesOutOnce) {
  ring_ms = 100;  // 1600 samples
  device = "kitchen";
  Make(v1::MODE_WAKE_WORD);
  Connect();
  for (uint64_t i = 0; i < 20; ++i) core->OnAudio(Ramp(i * 320), 0);  // ring: 4800…6400
  Listen("", 3000);
  ASSERT_EQ(port.backfills.size(), 1u) << "its audio already arrives: asked at once";
  EXPECT_EQ(port.backfills[0].first, "kitchen");
  EXPECT_EQ(port.backfills[0].second.from_sample(), 3000u);
  const std::string id = port.backfills[0].second.request_id();
  EXPECT_TRUE(Wire().empty()) << "nothing before the answer: it comes first";
  core->OnAudio(Ramp(6400), 0);  // live, waits behind the answer
  EXPECT_TRUE(Wire().empty());
  EXPECT_FALSE(core->OnBackfillAnswer(Chunk("someone-else", 0, 320), 0)) << "another request's answer";
  EXPECT_TRUE(core->OnBackfillAnswer(Chunk(id, 3000, 3720), 0));  // 3000…6720: overlaps ring and live
  EXPECT_TRUE(core->OnBackfillAnswer(Last(id, 6720, 0, 6720), 0));
  core->OnAudio(Ramp(6720), 0);
  ExpectWire(3000, 7040);
  EXPECT_EQ(core->counters().start_fetched, 1u);
  EXPECT_EQ(core->counters().samples_missed, 0u);
  EXPECT_FALSE(core->backfilling());
}

// Issue 16: the wake was on the office while the session heard the kitchen.
// The session moves to the office and fetches the question's start from the
// office's ring once the office's audio reaches it (so the answer reaches
// back to its first live frame); the kitchen's frames still in flight are
// not streamed; nothing said between the phrase and the move is lost.
TEST_F(StartTest, AWakeOnAnotherDeviceFetchesWhatWasSaidBeforeTheMove) {
  device = "kitchen";
  Make(v1::MODE_WAKE_WORD);
  Connect();
  for (uint64_t i = 0; i < 10; ++i) core->OnAudio(Ramp(900000 + i * 320), 0, "kitchen");
  Listen("office", 5000);
  EXPECT_EQ(core->device(), "office");
  EXPECT_TRUE(port.backfills.empty()) << "no office audio yet: asked at its first frame";
  core->OnAudio(Ramp(903200), 0, "kitchen");  // in flight from before the move
  core->OnAudio(Ramp(6400), 0, "office");     // the first live frame of the office
  ASSERT_EQ(port.backfills.size(), 1u);
  EXPECT_EQ(port.backfills[0].first, "office");
  EXPECT_EQ(port.backfills[0].second.from_sample(), 5000u);
  const std::string id = port.backfills[0].second.request_id();
  core->OnAudio(Ramp(6720), 0, "office");
  EXPECT_TRUE(core->OnBackfillAnswer(Chunk(id, 5000, 1720), 0));  // up to 6720
  EXPECT_TRUE(core->OnBackfillAnswer(Last(id, 6720, 0, 6720), 0));
  core->OnAudio(Ramp(7040), 0, "office");
  ExpectWire(5000, 7360);
  EXPECT_EQ(core->counters().frames_other_device, 1u);
  EXPECT_EQ(core->counters().device_switches, 1u);
  // A restart would ask for it in the office's numbering.
  EXPECT_EQ(core->Resume().resend_from, 5000u);
}

// "0 chunks" must not read as "nothing missed": an answer that says the
// start lies beyond the newest sample held is counted and told, and the
// live audio flows.
TEST_F(StartTest, AnAnswerBeyondTheNewestSampleIsToldNotTakenForNothingMissed) {
  device = "kitchen";
  Make(v1::MODE_WAKE_WORD);
  Connect();
  Listen("office", 500000);
  core->OnAudio(Ramp(1000), 0, "office");  // the office's stream restarted: small indices
  ASSERT_EQ(port.backfills.size(), 1u);
  auto last = Last(port.backfills[0].second.request_id(), 500000, 0, 1320);
  last.set_beyond_newest(true);
  EXPECT_TRUE(core->OnBackfillAnswer(last, 0));
  EXPECT_EQ(core->counters().backfill_beyond_newest, 1u);
  bool told = false;
  for (const auto& p : port.problems) told = told || p.find("beyond the newest sample") != std::string::npos;
  EXPECT_TRUE(told);
  core->OnAudio(Ramp(1320), 0, "office");
  ExpectWire(1000, 1640);
}

// The device's ring no longer reached back to the start: what it had goes
// out, and the loss is counted in samples.
TEST_F(StartTest, AStartOlderThanTheDevicesRingIsCountedAsMissed) {
  device = "kitchen";
  Make(v1::MODE_WAKE_WORD);
  Connect();
  Listen("office", 1000);
  core->OnAudio(Ramp(20000), 0, "office");
  const std::string id = port.backfills.at(0).second.request_id();
  EXPECT_TRUE(core->OnBackfillAnswer(Chunk(id, 4000, 16000), 0));
  EXPECT_TRUE(core->OnBackfillAnswer(Last(id, 20000, 4000, 20000), 0));
  EXPECT_EQ(core->counters().backfill_too_old, 1u);
  EXPECT_EQ(core->counters().samples_missed, 3000u);
  ExpectWire(4000, 20320);
}

// No vb-wakevad answers: the live audio waits at most fetch_wait_ms, the
// request is repeated meanwhile, then the live audio goes.
TEST_F(StartTest, NoAnswerLetsTheLiveAudioGoAfterTheWait) {
  device = "kitchen";
  Make(v1::MODE_WAKE_WORD);
  Connect();
  const int64_t t0 = MonoNow();
  Listen("office", 1000);
  core->Tick(t0 + 450'000'000);  // no office frame yet: asked anyway
  ASSERT_EQ(port.backfills.size(), 1u);
  core->OnAudio(Ramp(2000), 0, "office");
  core->Tick(t0 + 900'000'000);
  ASSERT_EQ(port.backfills.size(), 2u) << "asked again";
  EXPECT_NE(port.backfills[1].second.request_id(), port.backfills[0].second.request_id());
  EXPECT_TRUE(Wire().empty());
  core->Tick(t0 + 2'000'000'000);
  EXPECT_EQ(core->counters().fetch_timeouts, 1u);
  ExpectWire(2000, 2320);
  EXPECT_FALSE(core->OnBackfillAnswer(Chunk(port.backfills[1].second.request_id(), 1000, 1000), 0))
      << "a late answer is not mixed in";
}

// The start not yet in the ring (the session's copy of the audio lags the
// detector's): the live frames bring it, from that sample on.
TEST_F(StartTest, AStartNotYetReceivedIsTakenFromTheLiveFrames) {
  device = "kitchen";
  Make(v1::MODE_WAKE_WORD);
  Connect();
  core->OnAudio(Ramp(0), 0);
  Listen("kitchen", 500);
  EXPECT_TRUE(port.backfills.empty());
  core->OnAudio(Ramp(320), 0);
  core->OnAudio(Ramp(640), 0);
  ExpectWire(500, 960);
}

// The same, but the stream restarts (new indices far below the start): the
// start will never come, so the restarted stream is the question.
TEST_F(StartTest, AStartAwaitedOnAStreamThatRestartsDoesNotSilenceIt) {
  Make(v1::MODE_WAKE_WORD);
  Connect();
  core->OnAudio(Ramp(100000), 0);
  Listen("", 100500);
  core->OnAudio(Ramp(0), 0);  // the AFE restarted
  core->OnAudio(Ramp(320), 0);
  ExpectWire(0, 640);
}

TEST_F(CoreTest, PushToTalkDownCancelsTheRunningReply) {
  Make(v1::MODE_PUSH_TO_TALK);
  Connect();
  StartChat("chat-1");
  core->OnCommand(Cmd([](auto& c) { c.mutable_start_listening(); }));
  EXPECT_EQ(port.Sent("conversation.chat.cancel").size(), 1u);
  auto ended = port.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->turn_ended().outcome(), v1::TurnEnded::CANCELLED);
  core->OnServerText(Ev("conversation.audio.delta", {{"chat_id", "chat-1"}, {"content", "QUFB"}}), 2);
  EXPECT_TRUE(port.audio.empty());
}

TEST_F(CoreTest, InterruptCancelsAndDropsLateAudio) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  StartChat("chat-1");
  core->OnServerText(Ev("conversation.audio.delta", {{"chat_id", "chat-1"}, {"content", "QUFB"}}), 2);
  ASSERT_EQ(port.audio.size(), 1u);
  EXPECT_EQ(port.audio[0].second, "chat-1");
  core->OnCommand(Cmd([](auto& c) { c.mutable_interrupt()->set_turn_id("chat-1"); }));
  EXPECT_EQ(port.Sent("conversation.chat.cancel").size(), 1u);
  core->OnServerText(Ev("conversation.audio.delta", {{"chat_id", "chat-1"}, {"content", "QkJC"}}), 3);
  core->OnServerText(Ev("conversation.chat.canceled", {{"code", 2}, {"msg", ""}}), 4);
  EXPECT_EQ(port.audio.size(), 1u);
  auto ended = port.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->turn_ended().cancel_reason(), v1::TurnEnded::CLIENT_CANCEL);
  // An interrupt naming an old turn does not cancel the new one on the wire.
  StartChat("chat-2");
  core->OnCommand(Cmd([](auto& c) { c.mutable_interrupt()->set_turn_id("chat-1"); }));
  EXPECT_EQ(port.Sent("conversation.chat.cancel").size(), 1u);
}

TEST_F(CoreTest, OutageAudioIsHeldAndDeliveredInOrderAfterReconnect) {
  Make(v1::MODE_CONTINUOUS, "pcm", 100);  // 100 ms = 5 frames
  Connect();
  StartChat("chat-1");
  core->OnDisconnected("peer closed");
  auto ended = port.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->turn_ended().outcome(), v1::TurnEnded::FAILED);
  for (int i = 1; i <= 7; ++i) core->OnAudio(Frame(int16_t(i)), 0);
  EXPECT_EQ(core->buffered_ms(), 100u);
  EXPECT_EQ(core->Status().status().buffered_audio_ms(), 100u);
  EXPECT_FALSE(core->Status().status().connected());
  EXPECT_EQ(core->counters().frames_dropped, 2u);  // the two oldest
  port.sent.clear();
  Connect();
  ASSERT_FALSE(port.sent.empty());
  EXPECT_EQ(port.sent[0]["event_type"], "chat.update");
  EXPECT_EQ(port.sent[0]["data"]["chat_config"]["conversation_id"], "conv-1");
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Delta(appends[i]), Frame(int16_t(i + 3)).pcm());
  EXPECT_EQ(core->buffered_ms(), 0u);
  EXPECT_EQ(core->Status().status().reconnects(), 1u);
}

TEST_F(CoreTest, TextInputCreatesAMessageAndTheTurnCarriesItsRequestId) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_text_input()->set_text("what time is it");
    c.mutable_text_input()->set_request_id("r7");
  }));
  auto m = port.Sent("conversation.message.create");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]["data"]["content"], "what time is it");
  // An empty text is no question: refused with a reason, nothing sent.
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_text_input()->set_text(" \n");
    c.set_command_id("c-empty");
  }));
  ASSERT_EQ(port.acks.size(), 1u);
  EXPECT_EQ(port.acks[0].result, v1::CommandAck::REFUSED);
  EXPECT_EQ(port.Sent("conversation.message.create").size(), 1u);
  StartChat("chat-9");
  auto st = port.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]->turn_started().request_id(), "r7");
  EXPECT_EQ(st[0]->turn_started().input(), v1::TurnStarted::TEXT);
}

// Issue 13: an error that answers a text before any chat ran ends that turn
// (TurnEnded FAILED, no chat id): the dialog stops waiting, the person hears
// the error prompt once, and the next chat is not taken for the failed text.
TEST_F(CoreTest, AnErrorInsteadOfAReplyEndsTheTurnItAnswers) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_text_input()->set_text("hi");
    c.mutable_text_input()->set_request_id("r1");
  }));
  core->OnServerText(Ev("error", {{"code", 4009}, {"msg", "busy"}}), 1);
  auto ended = port.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->turn_ended().outcome(), v1::TurnEnded::FAILED);
  EXPECT_EQ(ended[0]->turn_ended().error(), "4009: busy (the service is busy)");
  EXPECT_TRUE(port.Events(v1::SessionEvent::kError).empty());
  EXPECT_FALSE(core->Stalled(int64_t(1) << 60, 1)) << "nothing is owed any more";
  // Nothing owed: an error is a SessionError (vb-control plays the prompt).
  core->OnServerText(Ev("error", {{"code", 4000}, {"msg", "bad field"}}), 1);
  ASSERT_EQ(port.Events(v1::SessionEvent::kError).size(), 1u);
  // A voice turn after it is not the failed text's answer.
  StartChat("chat-9");
  auto started = port.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0]->turn_started().input(), v1::TurnStarted::VOICE);
}

// vb speak: the running reply is cancelled, the speech is a turn of its own
// (TurnStarted at once, carrying the command id), acked; offline it is refused.
TEST_F(CoreTest, SpeakCancelsTheReplyAndSpeaksAsATurnOfItsOwn) {
  Make(v1::MODE_CONTINUOUS);
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_speak()->set_text("hello");
    c.set_command_id("s0");
  }));
  ASSERT_EQ(port.acks.size(), 1u);
  EXPECT_EQ(port.acks[0].result, v1::CommandAck::REFUSED);
  Connect();
  StartChat("chat-1");
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_speak()->set_text("Dinner is ready");
    c.set_command_id("s1");
  }));
  EXPECT_EQ(port.Sent("conversation.chat.cancel").size(), 1u);
  auto gen = port.Sent("input_text.generate_audio");
  ASSERT_EQ(gen.size(), 1u);
  EXPECT_EQ(gen[0]["data"]["text"], "Dinner is ready");
  auto started = port.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(started.size(), 2u);
  EXPECT_EQ(started[1]->turn_started().request_id(), "s1");
  const std::string turn = started[1]->turn_started().turn_id();
  EXPECT_EQ(core->Status().status().turn_id(), turn);
  EXPECT_EQ(port.acks.back().result, v1::CommandAck::ACCEPTED);
  // Interrupting a speech mutes it; there is no chat to cancel on the wire.
  core->OnCommand(Cmd([](auto& c) { c.mutable_interrupt(); }));
  EXPECT_EQ(port.Sent("conversation.chat.cancel").size(), 1u);
  auto ended = port.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_FALSE(ended.empty());
  EXPECT_EQ(ended.back()->turn_ended().outcome(), v1::TurnEnded::CANCELLED);
  core->OnCommand(Cmd([](auto& c) { c.mutable_speak()->set_text(std::string(1024, 'a')); }));
  EXPECT_EQ(port.Sent("input_text.generate_audio").size(), 1u) << "over 1023 bytes: refused";
}

TEST_F(CoreTest, NewConversationClearsNowOrOnceReconnected) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_new_conversation();
    c.set_command_id("n1");
  }));
  EXPECT_EQ(port.Sent("conversation.clear").size(), 1u);
  EXPECT_EQ(port.acks.back().result, v1::CommandAck::ACCEPTED);
  core->OnDisconnected("test");
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_new_conversation();
    c.set_command_id("n2");
  }));
  EXPECT_EQ(port.acks.back().result, v1::CommandAck::QUEUED);
  EXPECT_EQ(port.Sent("conversation.clear").size(), 1u);
  Connect();
  EXPECT_EQ(port.Sent("conversation.clear").size(), 2u);
}

// Coze resumes a chat that called several tools once it has every output,
// in one submit_tool_outputs: the session gathers them (each acked).
TEST_F(CoreTest, OutputsOfSeveralToolCallsGoUpTogether) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  StartChat("chat-5");
  Json calls = Json::array({{{"id", "c1"}, {"type", "function"}, {"function", {{"name", "a"}, {"arguments", "{}"}}}},
                            {{"id", "c2"}, {"type", "function"}, {"function", {{"name", "b"}, {"arguments", "{}"}}}}});
  core->OnServerText(
      Ev("conversation.chat.requires_action",
         {{"id", "chat-5"},
          {"required_action", {{"type", "submit_tool_outputs"}, {"submit_tool_outputs", {{"tool_calls", calls}}}}}}),
      1);
  auto output = [&](const char* call, const char* out) {
    core->OnCommand(Cmd([&](auto& c) {
      c.mutable_tool_output()->set_call_id(call);
      c.mutable_tool_output()->set_output(out);
      c.set_command_id(call);
    }));
  };
  output("c2", "two");
  EXPECT_TRUE(port.Sent("conversation.chat.submit_tool_outputs").empty());
  EXPECT_EQ(port.acks.back().result, v1::CommandAck::ACCEPTED);
  output("c1", "one");
  auto s = port.Sent("conversation.chat.submit_tool_outputs");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["data"]["chat_id"], "chat-5");
  EXPECT_EQ(s[0]["data"]["tool_outputs"],
            Json::array({{{"tool_call_id", "c2"}, {"output", "two"}}, {{"tool_call_id", "c1"}, {"output", "one"}}}));
  EXPECT_EQ(port.Events(v1::SessionEvent::kToolResult).size(), 2u);
}

TEST_F(CoreTest, ToolOutputIsSubmittedToTheWaitingChat) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  StartChat("chat-3");
  core->OnServerText(
      Ev("conversation.chat.requires_action",
         {{"id", "chat-3"},
          {"required_action",
           {{"type", "submit_tool_outputs"},
            {"submit_tool_outputs",
             {{"tool_calls",
               Json::array({{{"id", "call-1"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}})}}}}}}),
      5);
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_tool_output()->set_call_id("call-1");
    c.mutable_tool_output()->set_output("{\"ok\":true}");
  }));
  auto s = port.Sent("conversation.chat.submit_tool_outputs");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["data"]["chat_id"], "chat-3");
  EXPECT_EQ(s[0]["data"]["tool_outputs"][0]["tool_call_id"], "call-1");
  ASSERT_EQ(port.Events(v1::SessionEvent::kToolResult).size(), 1u);
}

TEST_F(CoreTest, SetModeAndSessionConfigResendChatUpdate) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnCommand(Cmd([](auto& c) { c.mutable_set_mode()->set_mode(v1::MODE_PUSH_TO_TALK); }));
  auto u = port.Sent("chat.update");
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[1]["data"]["turn_detection"]["type"], "client_interrupt");
  // Push-to-talk: no audio until the key goes down.
  core->OnAudio(Frame(1), 0);
  EXPECT_TRUE(port.Sent("input_audio_buffer.append").empty());
  std::string new_bot;
  core->on_bot_change = [&](const std::string& b) { new_bot = b; };
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_session_config()->set_voice_id("v2");
    c.mutable_session_config()->set_speech_rate(-10);
    c.mutable_session_config()->set_has_speech_rate(true);
    c.mutable_session_config()->set_bot_id("bot-2");
  }));
  u = port.Sent("chat.update");
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[2]["data"]["output_audio"]["voice_id"], "v2");
  EXPECT_EQ(u[2]["data"]["output_audio"]["speech_rate"], -10);
  EXPECT_EQ(new_bot, "bot-2");
}

// Ogg pages out of an append: {packet bytes, granule}; checks each page's
// capture pattern and CRC (Ogg's CRC-32, polynomial 0x04c11db7).
struct OggPacket {
  std::string data;
  uint64_t granule;
  uint32_t serial;
};
std::vector<OggPacket> OggPackets(const std::string& bytes) {
  auto crc = [](std::string page) {
    for (int i = 22; i < 26; ++i) page[size_t(i)] = 0;
    uint32_t c = 0;
    for (unsigned char b : page) {
      c ^= uint32_t(b) << 24;
      for (int k = 0; k < 8; ++k) c = c & 0x80000000u ? (c << 1) ^ 0x04c11db7u : c << 1;
    }
    return c;
  };
  std::vector<OggPacket> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    EXPECT_EQ(bytes.compare(pos, 4, "OggS"), 0);
    if (bytes.compare(pos, 4, "OggS") != 0 || bytes.size() < pos + 27) return out;
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + pos);
    uint64_t granule = 0;
    for (int i = 7; i >= 0; --i) granule = granule << 8 | p[6 + i];
    uint32_t serial = p[14] | p[15] << 8 | p[16] << 16 | uint32_t(p[17]) << 24;
    uint32_t stored = p[22] | p[23] << 8 | p[24] << 16 | uint32_t(p[25]) << 24;
    size_t nseg = p[26], body = 0;
    for (size_t i = 0; i < nseg; ++i) body += p[27 + i];
    std::string page = bytes.substr(pos, 27 + nseg + body);
    EXPECT_EQ(crc(page), stored);
    out.push_back({page.substr(27 + nseg), granule, serial});
    pos += page.size();
  }
  return out;
}

// Opus travels as Coze's docs define it: format "ogg", codec "opus" — an Ogg
// stream (OpusHead, OpusTags, then one 20 ms packet per page), decodable.
TEST_F(CoreTest, OpusUplinkSendsAnOggOpusStreamOfDecodable20msPackets) {
  Make(v1::MODE_CONTINUOUS, "opus");
  Connect();
  auto update = port.Sent("chat.update");
  ASSERT_EQ(update.size(), 1u);
  EXPECT_EQ(update[0]["data"]["input_audio"]["format"], "ogg");
  EXPECT_EQ(update[0]["data"]["input_audio"]["codec"], "opus");
  // 30 ms frames: packets come out per whole 20 ms.
  for (int i = 0; i < 4; ++i) core->OnAudio(Frame(int16_t(1000 * (i % 2 ? 1 : -1)), 480), 0);
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 6u);  // 120 ms
  std::vector<OggPacket> packets;
  for (const auto& a : appends)
    for (auto& p : OggPackets(Delta(a))) packets.push_back(p);
  ASSERT_EQ(packets.size(), 8u);  // headers + 6 audio packets
  EXPECT_EQ(packets[0].data.substr(0, 8), "OpusHead");
  EXPECT_EQ(uint8_t(packets[0].data[9]), 1u);  // mono
  EXPECT_EQ(packets[1].data.substr(0, 8), "OpusTags");
  int err = 0;
  OpusDecoder* dec = opus_decoder_create(16000, 1, &err);
  ASSERT_EQ(err, OPUS_OK);
  for (size_t i = 2; i < packets.size(); ++i) {
    const std::string& p = packets[i].data;
    int16_t pcm[960];
    EXPECT_EQ(opus_decode(dec, reinterpret_cast<const unsigned char*>(p.data()), int(p.size()), pcm, 960, 0), 320);
    EXPECT_EQ(packets[i].granule, 960u * (i - 1));  // 48 kHz samples so far
  }
  opus_decoder_destroy(dec);
  // A chat.update restarts the server's decoder: a new stream, headers again.
  core->OnCommand(Cmd([](auto& c) { c.mutable_set_mode()->set_mode(v1::MODE_WAKE_WORD); }));
  core->OnCommand(Cmd([](auto& c) { c.mutable_start_listening(); }));
  core->OnAudio(Frame(5, 320), 0);
  auto again = OggPackets(Delta(port.Sent("input_audio_buffer.append").back()));
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[0].data.substr(0, 8), "OpusHead");
  EXPECT_NE(again[0].serial, packets[0].serial);
}

TEST_F(CoreTest, WrongAudioFormatIsCountedAndDropped) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  auto f = Frame(1);
  f.set_sample_rate(48000);
  core->OnAudio(f, 0);
  EXPECT_TRUE(port.Sent("input_audio_buffer.append").empty());
  EXPECT_EQ(core->counters().frames_dropped, 1u);
  EXPECT_EQ(port.problems.size(), 1u);
}

TEST_F(CoreTest, SilentServerWithAReplyOwedIsStalled) {
  Make(v1::MODE_CONTINUOUS);
  const int64_t s = 1'000'000'000;
  EXPECT_FALSE(core->Stalled(100 * s, s));  // not connected
  Connect();
  EXPECT_FALSE(core->Stalled(100 * s, s));  // nothing owed
  v1::DialogCommand c;
  c.mutable_text_input()->set_text("hi");
  core->OnCommandAt(c, 10 * s);
  EXPECT_FALSE(core->Stalled(10 * s + s / 2, s));
  EXPECT_TRUE(core->Stalled(12 * s, s));
  core->OnServerText(Ev("conversation.chat.created", {{"id", "c1"}}), 12 * s);
  EXPECT_FALSE(core->Stalled(12 * s + s / 2, s));
  EXPECT_TRUE(core->Stalled(14 * s, s));  // the chat runs, the server went quiet
  core->OnServerText(Ev("conversation.chat.completed", {{"id", "c1"}}), 14 * s);
  EXPECT_FALSE(core->Stalled(100 * s, s));  // nothing owed any more
}

// ---- issue 12: nothing said is lost around the session

v1::DialogCommand Text(const std::string& text, const std::string& command_id) {
  return Cmd([&](auto& c) {
    c.mutable_text_input()->set_text(text);
    c.set_command_id(command_id);
  });
}

TEST_F(CoreTest, HeldAudioWaitsUntilTheServerHasAppliedTheConversation) {
  Make(v1::MODE_CONTINUOUS);
  for (int i = 1; i <= 3; ++i) core->OnAudio(Frame(int16_t(i), 320, uint64_t(i) * 320), 0);
  core->OnConnected();
  // The conversation is gone on the server: the speech must not go into it.
  core->OnServerText(Ev("error", {{"code", 4002}, {"msg", "conversation not found"}}), 1);
  EXPECT_TRUE(port.Sent("input_audio_buffer.append").empty());
  EXPECT_FALSE(core->ready());
  core->SetConversation("conv-2");  // the actor made a new one over REST
  port.sent.clear();
  core->Reconfigure();
  ASSERT_EQ(port.sent.size(), 1u);
  EXPECT_EQ(port.sent[0]["data"]["chat_config"]["conversation_id"], "conv-2");
  core->OnServerText(Ev("chat.updated", Json::object()), 2);
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 3u);  // replaced first, then the speech
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Delta(appends[i]), Frame(int16_t(i + 1)).pcm());
}

TEST_F(CoreTest, AServerThatNeverConfirmsGetsTheHeldAudioAfterConfigWait) {
  Make(v1::MODE_CONTINUOUS);
  core->OnAudio(Frame(1, 320, 320), 0);
  core->OnConnected();
  core->Tick(1);  // long before config_wait_ms
  EXPECT_TRUE(port.Sent("input_audio_buffer.append").empty());
  core->Tick(INT64_MAX / 2);
  EXPECT_EQ(port.Sent("input_audio_buffer.append").size(), 1u);
  EXPECT_FALSE(port.problems.empty());
}

TEST_F(CoreTest, TextsDuringAnOutageAreQueuedAckedAndSentOneTurnAtATime) {
  CoreOptions o;
  o.text_queue = 2;
  o.service = "coze test";
  core = std::make_unique<SessionCore>(o, &port);
  std::string err;
  ASSERT_TRUE(core->Init(&err)) << err;
  core->OnCommand(Text("what time is it", "c1"));
  core->OnCommand(Text("hello", "c2"));
  core->OnCommand(Text("one too many", "c3"));
  core->OnCommand(Cmd([](auto& c) { c.mutable_text_input()->set_text("no ack wanted"); }));
  ASSERT_EQ(port.acks.size(), 3u);  // none for the command without an id
  EXPECT_EQ(port.acks[0].result, v1::CommandAck::QUEUED);
  EXPECT_EQ(port.acks[1].result, v1::CommandAck::QUEUED);
  EXPECT_EQ(port.acks[2].result, v1::CommandAck::REFUSED);
  EXPECT_NE(port.acks[2].reason.find("2 texts already wait"), std::string::npos) << port.acks[2].reason;
  EXPECT_EQ(port.Events(v1::SessionEvent::kError).size(), 2u);  // the refused ones, visibly
  EXPECT_EQ(core->Status().status().queued_texts(), 2u);
  EXPECT_TRUE(port.Sent("conversation.message.create").empty());
  Connect();
  auto m = port.Sent("conversation.message.create");
  ASSERT_EQ(m.size(), 1u);  // the second would cancel the first one's reply
  EXPECT_EQ(m[0]["data"]["content"], "what time is it");
  StartChat("chat-1");
  EXPECT_EQ(core->Status().status().turn_id(), "chat-1");
  EXPECT_EQ(core->Status().status().queued_texts(), 1u);
  core->OnServerText(Ev("conversation.chat.completed", {{"id", "chat-1"}, {"conversation_id", "conv-1"}}), 3);
  m = port.Sent("conversation.message.create");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1]["data"]["content"], "hello");
  EXPECT_EQ(core->Status().status().queued_texts(), 0u);
  // Connected and nothing waiting: sent at once, ACCEPTED.
  core->OnServerText(Ev("conversation.chat.created", {{"id", "chat-2"}, {"conversation_id", "conv-1"}}), 4);
  core->OnServerText(Ev("conversation.chat.completed", {{"id", "chat-2"}, {"conversation_id", "conv-1"}}), 5);
  core->OnCommand(Text("and now", "c4"));
  EXPECT_EQ(port.acks.back().id, "c4");
  EXPECT_EQ(port.acks.back().result, v1::CommandAck::ACCEPTED);
  EXPECT_EQ(port.Sent("conversation.message.create").size(), 3u);
}

TEST_F(CoreTest, AQueuedTextTooOldIsDroppedAndReported) {
  CoreOptions o;
  o.text_queue_max_age_ms = 1000;
  core = std::make_unique<SessionCore>(o, &port);
  std::string err;
  ASSERT_TRUE(core->Init(&err)) << err;
  core->OnCommandAt(Text("stale", "c1"), 1'000'000'000);
  core->Tick(1'500'000'000);
  EXPECT_EQ(core->queued_texts(), 1u);
  core->Tick(2'100'000'000);
  EXPECT_EQ(core->queued_texts(), 0u);
  ASSERT_EQ(port.acks.size(), 2u);
  EXPECT_EQ(port.acks[1].result, v1::CommandAck::REFUSED);
  EXPECT_EQ(core->counters().texts_expired, 1u);
}

// A text sent whose chat had not started when the connection dropped: the
// server forgot it with the connection, so it goes again first on the next
// one, and until its chat starts the ResumePoint carries it (what a
// restarted process sends again).
TEST_F(CoreTest, ATextSentButNotYetAnsweredGoesAgainAfterADisconnect) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_text_input()->set_text("what time is it");
    c.mutable_text_input()->set_request_id("r1");
    c.set_command_id("c1");
  }));
  ASSERT_EQ(port.acks.size(), 1u);
  EXPECT_EQ(port.acks[0].result, v1::CommandAck::ACCEPTED);
  ASSERT_EQ(core->Resume().texts.size(), 1u);
  EXPECT_EQ(core->Resume().texts[0].request_id, "r1");
  core->OnDisconnected("network");
  Connect();
  auto m = port.Sent("conversation.message.create");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1]["data"]["content"], "what time is it");
  StartChat("chat-1");
  auto st = port.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]->turn_started().request_id(), "r1");
  EXPECT_TRUE(core->Resume().texts.empty());
  EXPECT_EQ(core->counters().texts_resent, 1u);
  // A voice chat on a later connection is not taken for an old text.
  core->OnServerText(Ev("conversation.chat.completed", {{"id", "chat-1"}, {"conversation_id", "conv-1"}}), 3);
  core->OnDisconnected("network");
  Connect();
  StartChat("chat-2");
  st = port.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[1]->turn_started().input(), v1::TurnStarted::VOICE);
}

// The previous process accepted texts no chat answered: a restarted core
// sends them first once ready, and one older than text_queue_max_age_ms
// (counted from its first acceptance) is reported, not sent.
TEST_F(CoreTest, TextsOfAPreviousProcessAreSentAgainOrReportedWhenTooOld) {
  Make(v1::MODE_CONTINUOUS);
  const int64_t now = MonoNow();
  core->RestoreTexts({{"too old", "r0", "c0", now - 120'000'000'000}, {"hello", "r2", "c2", now - 2'000'000'000}});
  EXPECT_EQ(core->Resume().texts.size(), 1u);
  EXPECT_EQ(port.Events(v1::SessionEvent::kError).size(), 1u);
  EXPECT_EQ(core->counters().texts_expired, 1u);
  Connect();
  auto m = port.Sent("conversation.message.create");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]["data"]["content"], "hello");
  StartChat("chat-1");
  auto st = port.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]->turn_started().request_id(), "r2");
  EXPECT_TRUE(core->Resume().texts.empty());
}

TEST_F(CoreTest, ToolOutputAndSessionConfigAreAcknowledged) {
  Make(v1::MODE_CONTINUOUS);
  auto tool = Cmd([](auto& c) {
    c.mutable_tool_output()->set_call_id("call-1");
    c.set_command_id("t1");
  });
  core->OnCommand(tool);
  auto cfg = Cmd([](auto& c) {
    c.mutable_session_config()->set_voice_id("v2");
    c.set_command_id("s1");
  });
  core->OnCommand(cfg);
  Connect();
  core->OnCommand(tool);  // connected, but no chat waits for tools
  ASSERT_EQ(port.acks.size(), 3u);
  EXPECT_EQ(port.acks[0].result, v1::CommandAck::REFUSED);
  EXPECT_NE(port.acks[0].reason.find("offline"), std::string::npos);
  EXPECT_EQ(port.acks[1].result, v1::CommandAck::QUEUED);
  EXPECT_EQ(port.acks[2].result, v1::CommandAck::REFUSED);
  EXPECT_NE(port.acks[2].reason.find("no chat"), std::string::npos);
}

TEST_F(CoreTest, ATurnThatDiedWithThePreviousProcessEndsFailed) {
  Make(v1::MODE_CONTINUOUS);
  core->EndTurnAfterRestart("chat-dead");
  auto ended = port.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->turn_ended().outcome(), v1::TurnEnded::FAILED);
  EXPECT_EQ(ended[0]->turn_ended().error(), "session restarted");
  EXPECT_EQ(port.events.back().second, "chat-dead");  // Header.turn_id
}

TEST_F(CoreTest, TheResendPointFollowsWhatTheServerHasMadeIntoATurn) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  // 3 s of audio, just written: the server may not have said speech_started
  // yet, so the point stays; a second later it trails the wire by the
  // prefix padding.
  for (uint64_t i = 0; i < 150; ++i) core->OnAudio(Frame(1, 320, 1000 + i * 320), 0);
  ResumePoint p = core->Resume();
  EXPECT_TRUE(p.streaming);
  EXPECT_TRUE(p.has_samples);
  EXPECT_EQ(p.resend_from, 1000u);
  p = core->Resume(MonoNow() + 1'100'000'000);
  EXPECT_EQ(p.resend_from, 1000 + 150 * 320 - 600 * 16);
  // Speech under way: the point stays where it was.
  core->OnServerText(Ev("input_audio_buffer.speech_started", Json::object()), 2);
  for (uint64_t i = 150; i < 250; ++i) core->OnAudio(Frame(1, 320, 1000 + i * 320), 0);
  EXPECT_EQ(core->Resume(MonoNow() + 5'000'000'000).resend_from, p.resend_from);
  // The server closed the utterance: it is the server's once a chat starts
  // for it; until then (a kill now) it would be sent again.
  const int before = port.urgent_saves;
  core->OnServerText(Ev("input_audio_buffer.speech_stopped", Json::object()), 3);
  EXPECT_GT(port.urgent_saves, before);
  EXPECT_EQ(core->Resume(MonoNow() + 5'000'000'000).resend_from, p.resend_from);
  core->OnServerText(Ev("conversation.chat.created", Json{{"id", "chat-1"}, {"conversation_id", "conv-1"}}), 4);
  EXPECT_EQ(core->Resume().resend_from, 1000 + 250 * 320);
}

// A closed utterance no chat follows (noise the server did not make a turn
// of) is not owed for ever: after the wait the point moves on.
TEST_F(CoreTest, AClosedUtteranceWithoutAChatIsNotOwedForEver) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnServerText(Ev("input_audio_buffer.speech_started", Json::object()), 2);
  for (uint64_t i = 0; i < 100; ++i) core->OnAudio(Frame(1, 320, 1000 + i * 320), 0);
  core->OnServerText(Ev("input_audio_buffer.speech_stopped", Json::object()), 3);
  EXPECT_EQ(core->Resume(MonoNow() + 5'000'000'000).resend_from, 1000u);
  EXPECT_EQ(core->Resume(MonoNow() + 11'000'000'000).resend_from, 1000 + 100 * 320);
}

TEST_F(CoreTest, PushToTalkResendsTheWholeUtteranceFromItsPreroll) {
  Make(v1::MODE_PUSH_TO_TALK);
  Connect();
  for (uint64_t i = 0; i < 5; ++i) core->OnAudio(Frame(1, 320, 16000 - 1600 + i * 320), 0);  // 100 ms
  core->OnCommand(Cmd([](auto& c) { c.mutable_start_listening()->set_from_sample(16000 - 1600); }));
  for (uint64_t i = 0; i < 100; ++i) core->OnAudio(Frame(1, 320, 16000 + i * 320), 0);
  ResumePoint p = core->Resume();
  EXPECT_TRUE(p.listening);
  EXPECT_EQ(p.resend_from, 16000u - 1600);  // nothing committed until the key is released
  core->OnCommand(Cmd([](auto& c) { c.mutable_stop_listening()->set_commit(true); }));
  p = core->Resume();
  EXPECT_FALSE(p.streaming);
  EXPECT_EQ(p.resend_from, 16000u + 100 * 320);
}

TEST_F(CoreTest, AnUtteranceCutByADisconnectIsSentAgainWhole) {
  Make(v1::MODE_CONTINUOUS, "pcm", 10000);
  Connect();
  core->OnServerText(Ev("input_audio_buffer.speech_started", Json::object()), 2);
  for (int i = 1; i <= 10; ++i) core->OnAudio(Frame(int16_t(i), 320, uint64_t(i) * 320), 0);
  core->OnDisconnected("network");
  for (int i = 11; i <= 20; ++i) core->OnAudio(Frame(int16_t(i), 320, uint64_t(i) * 320), 0);
  port.sent.clear();
  Connect();
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 20u);  // the first half went into the lost connection
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Delta(appends[i]), Frame(int16_t(i + 1)).pcm()) << i;
  EXPECT_EQ(core->counters().frames_requeued, 10u);
}

// After a restart: the audio the previous process missed is fetched (from
// its resend point) before the live audio, and each sample goes out once.
TEST_F(CoreTest, BackfillComesBeforeLiveAudioWithoutOverlap) {
  Make(v1::MODE_CONTINUOUS);
  core->ResumeStream("", true, 30 * 320, 2500, MonoNow());
  EXPECT_TRUE(core->backfilling());
  // Live frames arrive while the answer is on its way: 40..44 (× 320).
  for (int i = 40; i < 45; ++i) core->OnAudio(Frame(int16_t(i), 320, uint64_t(i) * 320), 0);
  ASSERT_EQ(port.backfills.size(), 1u) << "asked at the first live frame";
  const auto& req = port.backfills[0].second;
  EXPECT_EQ(req.from_sample(), 30u * 320);
  // The answer: 30..41, in one chunk.
  v1::AudioBackfill answer;
  answer.set_request_id(req.request_id());
  auto& chunk = *answer.mutable_frame();
  chunk.set_sample_rate(16000);
  chunk.set_channels(1);
  chunk.set_sample_index(30 * 320);
  for (int i = 30; i < 42; ++i) chunk.mutable_pcm()->append(Frame(int16_t(i)).pcm());
  EXPECT_TRUE(core->OnBackfillAnswer(answer, 0));
  v1::AudioBackfill last;
  last.set_request_id(req.request_id());
  last.set_last(true);
  last.set_end_sample(42 * 320);
  last.set_newest_end(45 * 320);
  EXPECT_TRUE(core->OnBackfillAnswer(last, 0));
  EXPECT_FALSE(core->backfilling());
  EXPECT_EQ(core->Resume().resend_from, 30u * 320);
  Connect();
  std::string sent;
  for (const auto& a : port.Sent("input_audio_buffer.append")) sent += Delta(a);
  std::string expected;
  for (int i = 30; i < 45; ++i) expected += Frame(int16_t(i)).pcm();
  EXPECT_EQ(sent.size(), expected.size());
  EXPECT_TRUE(sent == expected);
  EXPECT_EQ(core->counters().frames_backfilled, 1u);
}

// Issue 12/13: vb-session killed twice in a row. The first restart's
// backfill carries the question in one burst; if the point then jumped to
// "the wire minus a margin of samples", the second restart would ask only
// for what came after the question, and nobody would hear it.
TEST_F(CoreTest, ABackfillBurstIsNotSkippedByTheNextRestart) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  const int64_t t0 = MonoNow();
  core->ResumeStream("", true, 32000, 2500, t0);
  core->Tick(t0 + 450'000'000);  // no live frame yet: asked anyway
  ASSERT_EQ(port.backfills.size(), 1u);
  v1::AudioBackfill answer;  // 4 s of missed audio (a question, then silence), at once
  answer.set_request_id(port.backfills[0].second.request_id());
  auto& chunk = *answer.mutable_frame();
  chunk.set_sample_rate(16000);
  chunk.set_channels(1);
  chunk.set_sample_index(32000);
  for (int i = 0; i < 200; ++i) chunk.mutable_pcm()->append(Frame(int16_t(i)).pcm());
  EXPECT_TRUE(core->OnBackfillAnswer(answer, 0));
  answer.clear_frame();
  answer.set_last(true);
  answer.set_end_sample(32000 + 200 * 320);
  EXPECT_TRUE(core->OnBackfillAnswer(answer, 0));
  // Killed 0.5 s later, before the server said anything about it.
  EXPECT_EQ(core->Resume(MonoNow() + 500'000'000).resend_from, 32000u);
  // Had the server judged it (no speech_started within a second), the
  // point moves on to the burst's end less the prefix padding.
  EXPECT_EQ(core->Resume(MonoNow() + 1'100'000'000).resend_from, 32000u + 200 * 320 - 600 * 16);
}

TEST_F(CoreTest, RestoreCarriesOnListening) {
  Make(v1::MODE_CONTINUOUS);
  ResumePoint p;
  p.mode = v1::MODE_WAKE_WORD;
  p.listening = true;
  core->Restore(p);
  EXPECT_EQ(core->mode(), v1::MODE_WAKE_WORD);
  EXPECT_TRUE(core->streaming());
}

// Issue 13 item 7: a wake phrase said over the reply must not reach the
// service (under server_vad, input_audio_buffer.clear does nothing). While
// vb-control holds the uplink, frames go out delay_ms behind; at the wake,
// what came before the phrase's end is cut and the rest sent at once.
TEST_F(CoreTest, UplinkGuardDelaysThenCutsTheWakePhrase) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  auto frame = [](int16_t v, uint64_t i) { return Frame(v, 320, i * 320); };
  core->OnAudio(frame(1, 0), 0);
  ASSERT_EQ(port.Sent("input_audio_buffer.append").size(), 1u);
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_uplink_guard()->set_hold(true);
    c.mutable_uplink_guard()->set_delay_ms(100);  // 5 frames
  }));
  for (uint64_t i = 1; i <= 5; ++i) core->OnAudio(frame(int16_t(10 + i), i), 0);
  EXPECT_EQ(port.Sent("input_audio_buffer.append").size(), 1u) << "held back";
  core->OnAudio(frame(16, 6), 0);  // frame 1 is now 100 ms behind the newest
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(Delta(appends[1]), frame(11, 1).pcm());
  // The phrase ended 100 samples into frame 4: frames 2, 3 and the start of 4 are cut.
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_uplink_guard()->set_hold(false);
    c.mutable_uplink_guard()->set_cut_before_sample(4 * 320 + 100);
  }));
  core->OnAudio(frame(17, 7), 0);  // live again
  std::string sent;
  appends = port.Sent("input_audio_buffer.append");
  for (size_t i = 2; i < appends.size(); ++i) sent += Delta(appends[i]);
  EXPECT_EQ(sent, Frame(14, 220).pcm() + frame(15, 5).pcm() + frame(16, 6).pcm() + frame(17, 7).pcm());
  EXPECT_EQ(core->counters().frames_guard_cut, 2u);
}

// The heartbeat's mic_to_wire figure is the live path's: a frame held behind
// an UplinkGuard (seconds late by design) goes out without its origin, so
// it is not counted; frames sent as they come carry theirs.
TEST_F(CoreTest, OnlyFramesSentAsTheyComeCountAsMicToWire) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  auto frame = [](int16_t v, uint64_t i) { return Frame(v, 320, i * 320); };
  auto origins_of_appends = [&] {
    std::vector<int64_t> r;
    for (size_t i = 0; i < port.sent.size(); ++i)
      if (port.sent[i]["event_type"] == "input_audio_buffer.append") r.push_back(port.origins[i]);
    return r;
  };
  core->OnAudio(frame(1, 0), 1000);
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_uplink_guard()->set_hold(true);
    c.mutable_uplink_guard()->set_delay_ms(40);  // 2 frames
  }));
  for (uint64_t i = 1; i <= 4; ++i) core->OnAudio(frame(int16_t(10 + i), i), int64_t(1000 + i));
  core->OnCommand(Cmd([](auto& c) { c.mutable_uplink_guard()->set_hold(false); }));
  core->OnAudio(frame(20, 5), 1005);
  EXPECT_EQ(origins_of_appends(), (std::vector<int64_t>{1000, 0, 0, 0, 0, 1005}));
}

// Capture (or the AFE) restarted while the uplink was held: the new stream's
// sample indices start again. The old stream's held frames go out, the new
// ones are held and released by their own numbering, and the resend point
// a restart would ask the backfill for is in the new numbering, before
// the held question (the 500-kill chaos run with the guard lost a question
// this way: the backfill was asked for old-stream sample 75516 and skipped it).
TEST_F(CoreTest, AnUplinkGuardFollowsANewUpstreamStream) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  auto frame = [](int16_t v, uint64_t i) { return Frame(v, 320, i * 320); };
  for (uint64_t i = 100; i < 110; ++i) core->OnAudio(frame(1, i), 0);
  core->OnCommand(Cmd([](auto& c) {
    c.mutable_uplink_guard()->set_hold(true);
    c.mutable_uplink_guard()->set_delay_ms(100);  // 5 frames
  }));
  for (uint64_t i = 110; i < 113; ++i) core->OnAudio(frame(2, i), 0);
  const size_t before = port.Sent("input_audio_buffer.append").size();
  // The new stream: indices from 0. The question is in frames 0..9.
  core->OnAudio(frame(3, 0), 0);
  EXPECT_EQ(port.Sent("input_audio_buffer.append").size(), before + 3) << "the old stream's held frames went out";
  EXPECT_EQ(core->Resume().resend_from, 0u);
  for (uint64_t i = 1; i < 10; ++i) core->OnAudio(frame(int16_t(3 + i), i), 0);
  EXPECT_EQ(core->Resume().resend_from, 0u) << "the held question is still owed";
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), before + 3 + 5);  // 5 frames behind the newest (frame 9) went out
  EXPECT_EQ(Delta(appends[before + 3]), frame(3, 0).pcm());
}

// vb say sends a text again when no ack came (a vb-session killed as it
// arrived): the same command id is taken once and acked again, also when
// the first copy was taken by the previous process (restored texts).
TEST_F(CoreTest, ATextRepeatedWithTheSameCommandIdIsTakenOnce) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  auto text = [](const std::string& id) {
    return Cmd([&](auto& c) {
      c.mutable_text_input()->set_text("what time is it");
      c.mutable_text_input()->set_request_id("r-" + id);
      c.set_command_id(id);
    });
  };
  core->OnCommand(text("c1"));
  core->OnCommand(text("c1"));
  EXPECT_EQ(port.Sent("conversation.message.create").size(), 1u);
  ASSERT_EQ(port.acks.size(), 2u);
  EXPECT_EQ(port.acks[1].result, v1::CommandAck::ACCEPTED);
  core->RestoreTexts({{"hello", "r-c9", "c9", MonoNow()}});
  core->OnCommand(text("c9"));
  EXPECT_EQ(core->Resume().texts.size(), 2u);  // c1 in flight, c9 once
  EXPECT_EQ(port.acks.back().id, "c9");
}

// A hold nobody renews (its vb-control died) lapses: nothing is held for good.
TEST_F(CoreTest, AnUplinkGuardNotRenewedLapses) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnCommandAt(Cmd([](auto& c) {
                      c.mutable_uplink_guard()->set_hold(true);
                      c.mutable_uplink_guard()->set_delay_ms(1000);
                    }),
                    1);  // long ago on the monotonic clock
  core->OnAudio(Frame(5, 320, 0), 0);
  core->OnAudio(Frame(6, 320, 320), 0);
  auto appends = port.Sent("input_audio_buffer.append");
  ASSERT_EQ(appends.size(), 2u) << "the lapsed hold let the frames through";
  EXPECT_EQ(Delta(appends[0]), Frame(5).pcm());
}

// Issues 12/16: the session was streaming the kitchen (another device, its
// own sample numbering) when it died. The resume point names the kitchen;
// its successor streams the kitchen again and asks the kitchen's ring (not
// its own device's) for the missed audio, in the kitchen's numbering.
TEST_F(StartTest, ARestartStreamsTheDeviceOfItsResumePointAndFetchesFromItsRing) {
  device = "local";
  Make(v1::MODE_CONTINUOUS);
  Connect();
  core->OnAudio(Ramp(100), 0, "local");
  Listen("kitchen", 9'600'000);
  core->OnAudio(Ramp(9'600'000), 0, "kitchen");
  ASSERT_EQ(port.backfills.size(), 1u);
  ResumePoint before = core->Resume();
  EXPECT_EQ(before.device, "kitchen");
  EXPECT_TRUE(before.has_samples);
  EXPECT_EQ(before.resend_from, 9'600'000u) << "asked of the kitchen, nothing came yet: the start stands";

  // The successor (its own device is "local").
  port = FakePort();
  Make(v1::MODE_CONTINUOUS);
  Connect();
  const int64_t t0 = MonoNow();
  core->ResumeStream(before.device, true, before.resend_from, 2500, t0);
  EXPECT_EQ(core->device(), "kitchen");
  EXPECT_EQ(core->Resume().device, "kitchen");
  EXPECT_EQ(core->Resume().resend_from, 9'600'000u);
  core->OnAudio(Ramp(5000), 0, "local");  // the own device's audio, in flight: not streamed, nobody asked
  EXPECT_TRUE(port.backfills.empty());
  core->OnAudio(Ramp(9'604'800), 0, "kitchen");
  ASSERT_EQ(port.backfills.size(), 1u);
  EXPECT_EQ(port.backfills[0].first, "kitchen");
  EXPECT_EQ(port.backfills[0].second.from_sample(), 9'600'000u);
  const std::string id = port.backfills[0].second.request_id();
  EXPECT_TRUE(core->OnBackfillAnswer(Chunk(id, 9'600'000, 4800), 0));
  EXPECT_TRUE(core->OnBackfillAnswer(Last(id, 9'604'800, 9'590'000, 9'604'800), 0));
  core->OnAudio(Ramp(9'605'120), 0, "kitchen");
  ExpectWire(9'600'000, 9'605'440);
  ASSERT_EQ(port.notes.size(), 1u);
  EXPECT_NE(port.notes[0].find("of device kitchen"), std::string::npos) << port.notes[0];
  EXPECT_EQ(core->counters().audio_missed, 0u);
  EXPECT_TRUE(port.Events(v1::SessionEvent::kError).empty());
}

// A StartListening of the same device while a restart's fetch is under way
// does not end it: the fetch reaches further back, live audio waits anyway.
TEST_F(StartTest, AStartListeningDuringARestartsFetchKeepsIt) {
  device = "kitchen";
  Make(v1::MODE_WAKE_WORD);
  Connect();
  ResumePoint p;
  p.listening = true;
  core->Restore(p);
  core->ResumeStream("", true, 1000, 2500, MonoNow());
  core->OnAudio(Ramp(2000), 0);
  ASSERT_EQ(port.backfills.size(), 1u);
  Listen("", 1900);
  EXPECT_TRUE(core->backfilling());
  const std::string id = port.backfills[0].second.request_id();
  EXPECT_TRUE(core->OnBackfillAnswer(Chunk(id, 1000, 1000), 0));
  EXPECT_TRUE(core->OnBackfillAnswer(Last(id, 2000, 0, 2320), 0));
  ExpectWire(1000, 2320);
}

// Nobody answers a restart's request (no vb-wakevad for the device): the
// live audio goes after the wait, and the person is told something was
// missed (SessionError 410), as vb-control plays the error prompt for it.
TEST_F(StartTest, ARestartsFetchWithoutAnswerIsToldAfterTheWait) {
  Make(v1::MODE_CONTINUOUS);
  Connect();
  const int64_t t0 = MonoNow();
  core->ResumeStream("", true, 1000, 2500, t0);
  core->OnAudio(Ramp(2000), 0);
  core->Tick(t0 + 2'000'000'000);
  EXPECT_TRUE(Wire().empty()) << "still waiting";
  core->Tick(t0 + 2'600'000'000);
  EXPECT_EQ(core->counters().backfill_timeouts, 1u);
  EXPECT_EQ(core->counters().audio_missed, 1u);
  auto errors = port.Events(v1::SessionEvent::kError);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->error().code(), 410);
  EXPECT_FALSE(errors[0]->error().fatal());
  ExpectWire(2000, 2320);
}

// The UplinkGuard's cut is a wake's end in the numbering of the device
// vb-control serves (dialog.state.device, published before the cut). A wake
// in the kitchen while the local device's audio is held: the held frames are
// the old room's, all cut, even where the kitchen's smaller numbers would
// have let them through.
TEST_F(StartTest, AWakeInAnotherRoomCutsTheHeldAudioOfTheOldOne) {
  device = "local";
  Make(v1::MODE_CONTINUOUS);
  Connect();
  auto hold = [&] {
    core->OnCommand(Cmd([](auto& c) {
      c.mutable_uplink_guard()->set_hold(true);
      c.mutable_uplink_guard()->set_delay_ms(100);  // 5 frames
    }));
  };
  auto cut = [&](uint64_t at) {
    core->OnCommand(Cmd([at](auto& c) {
      c.mutable_uplink_guard()->set_hold(false);
      c.mutable_uplink_guard()->set_cut_before_sample(at);
    }));
  };
  core->DialogDevice("local");
  core->OnAudio(Ramp(500'000), 0);
  hold();
  for (uint64_t i = 1; i <= 4; ++i) core->OnAudio(Ramp(500'000 + i * 320), 0);
  const size_t sent = Wire().size();
  core->DialogDevice("kitchen");  // vb-control chose the kitchen's wake
  cut(2000);                      // its end, in the kitchen's numbering
  EXPECT_EQ(Wire().size(), sent) << "the local room's held audio went out as the question's start";
  EXPECT_EQ(core->counters().frames_guard_cut, 4u);

  // Served from the kitchen now; the reply plays there and the guard holds
  // the kitchen's audio (later in its numbering than the local room's). A
  // wake back in the local room cuts it all too, not by comparing local
  // sample numbers with the kitchen's.
  auto listen_live = [&](const std::string& to) {
    core->OnCommand(Cmd([&](auto& c) { c.mutable_start_listening()->set_device(to); }));
  };
  listen_live("kitchen");
  core->OnAudio(Ramp(900'000), 0, "kitchen");
  hold();
  for (uint64_t i = 1; i <= 4; ++i) core->OnAudio(Ramp(900'000 + i * 320), 0, "kitchen");
  const size_t sent2 = Wire().size();
  EXPECT_GT(sent2, sent) << "the kitchen's live audio before the hold went out";
  core->DialogDevice("local");
  cut(500'000 + 6 * 320);
  EXPECT_EQ(Wire().size(), sent2) << "the kitchen's held audio went out";
  EXPECT_EQ(core->counters().frames_guard_cut, 8u);

  // The same device: the cut is in its numbering, as before.
  listen_live("local");
  core->OnAudio(Ramp(600'000), 0, "local");
  hold();
  for (uint64_t i = 1; i <= 4; ++i) core->OnAudio(Ramp(600'000 + i * 320), 0, "local");
  const size_t sent3 = Wire().size();
  cut(600'000 + 2 * 320 + 100);
  EXPECT_EQ(Wire().size(), sent3 + (4 * 320 - (2 * 320 + 100) + 320) * 2) << "the frames after the cut go out";
}

}  // namespace
}  // namespace vb::session
