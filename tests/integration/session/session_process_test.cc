// vb-session as a user meets it (fixture: session_fixture.h): text, voice,
// push-to-talk, cancel, tool call, dropped and stalled connections, kill -9,
// outage replay. Every test also checks that the token never shows up in any
// process's output.
#include "tests/integration/session/session_fixture.h"

namespace vb::testing {
namespace {

TEST_F(SessionProcessTest, TextTurnStreamsTextAndAudioAndCompletes) {
  StartAll();
  ASSERT_FALSE(status_.conversation_id().empty());
  EXPECT_EQ(StateFileConversation(), status_.conversation_id()) << "conversation id not persisted";
  EXPECT_EQ(status_.service().find(kToken), std::string::npos);

  size_t from = events_.size();
  std::string chat = TextTurn("what time is it", "req-1");
  ASSERT_FALSE(chat.empty());
  int st = Await(from, [](const Seen& s) { return s.event.has_turn_started(); });
  EXPECT_EQ(events_[size_t(st)].event.turn_started().input(), v1::TurnStarted::TEXT);
  EXPECT_EQ(events_[size_t(st)].event.turn_started().conversation_id(), status_.conversation_id());
  int deltas = 0, finals = 0;
  for (size_t i = from; i < events_.size(); ++i) {
    if (!events_[i].event.has_agent_text() || events_[i].turn_id != chat) continue;
    (events_[i].event.agent_text().final() ? finals : deltas)++;
  }
  EXPECT_GT(deltas, 0) << Dump(from);
  EXPECT_EQ(finals, 1);
  auto packets = AwaitAudioOf(chat);
  ASSERT_GT(packets.size(), 3u) << Dump(from);
  for (size_t i = 0; i < packets.size(); ++i) {
    EXPECT_EQ(packets[i]->packet_index(), i);
    EXPECT_EQ(packets[i]->codec(), v1::CODEC_OPUS);
    EXPECT_EQ(packets[i]->sample_rate(), 16000u);
    EXPECT_EQ(packets[i]->duration_us(), 60000u);
    EXPECT_FALSE(packets[i]->data().empty());
  }
  EXPECT_TRUE(audio_origin_ok_) << "session.audio without the wire receive time";
  // Late joiners: status comes again with every heartbeat.
  int before = statuses_;
  EXPECT_TRUE(RunUntil(
      loop_, [&] { return statuses_ > before + 1; }, 5000ms));
}

TEST_F(SessionProcessTest, VoiceTurnWithServerVad) {
  StartAll();
  audio::PcmBuffer pcm = Speech(dir_, "what time is it");
  ASSERT_FALSE(pcm.samples.empty());
  size_t from = events_.size();
  // Real time, 20 ms frames, as vb-afe publishes them.
  size_t pos = 0;
  auto timer = loop_.AddTimer(20ms, [&] {
    size_t n = pos < pcm.samples.size() ? std::min<size_t>(320, pcm.samples.size() - pos) : 0;
    PublishFrame(pcm.samples.data() + std::min(pos, pcm.samples.size()), n);
    pos += 320;
  });
  int ended = Await(from, Ended(v1::TurnEnded::COMPLETED), 30000ms);
  loop_.CancelTimer(timer);
  ASSERT_GE(ended, 0) << Dump(from);
  bool speech = false, final_transcript = false, voice_turn = false;
  for (size_t i = from; i < events_.size(); ++i) {
    const auto& e = events_[i].event;
    speech |= e.has_user_speech() && e.user_speech().started();
    if (e.has_user_transcript() && e.user_transcript().final()) {
      final_transcript = true;
      EXPECT_NE(e.user_transcript().text().find("time"), std::string::npos) << e.user_transcript().text();
    }
    voice_turn |= e.has_turn_started() && e.turn_started().input() == v1::TurnStarted::VOICE;
  }
  EXPECT_TRUE(speech) << Dump(from);
  EXPECT_TRUE(final_transcript) << Dump(from);
  EXPECT_TRUE(voice_turn) << Dump(from);
  const std::string turn = events_[size_t(ended)].turn_id;
  EXPECT_FALSE(AwaitAudioOf(turn).empty());
}

// Push-to-talk: nothing is streamed until the key goes down; key up commits
// the turn (input_audio_buffer.complete) without any server VAD.
TEST_F(SessionProcessTest, PushToTalkStreamsOnlyWhileTheKeyIsDown) {
  StartAll("  mode: push_to_talk\n");
  audio::PcmBuffer pcm = Speech(dir_, "what is the date");
  ASSERT_FALSE(pcm.samples.empty());
  auto publish_all = [&] {
    for (size_t pos = 0; pos < pcm.samples.size(); pos += 320) {
      PublishFrame(pcm.samples.data() + pos, std::min<size_t>(320, pcm.samples.size() - pos));
      loop_.RunOnce(1ms);  // let the stream plane breathe (small HWM)
    }
  };
  size_t from = events_.size();
  publish_all();  // key up: must not start a turn
  Send([](auto& c) { c.mutable_start_listening(); });
  publish_all();
  Send([](auto& c) { c.mutable_stop_listening()->set_commit(true); });
  int ended = Await(from, Ended(v1::TurnEnded::COMPLETED), 30000ms);
  ASSERT_GE(ended, 0) << Dump(from);
  int turns = 0;
  for (size_t i = from; i < events_.size(); ++i) {
    const auto& e = events_[i].event;
    turns += e.has_turn_started();
    EXPECT_FALSE(e.has_user_speech()) << "server VAD events in push-to-talk";
    if (e.has_user_transcript() && e.user_transcript().final())
      EXPECT_NE(e.user_transcript().text().find("date"), std::string::npos) << e.user_transcript().text();
  }
  EXPECT_EQ(turns, 1) << Dump(from);
}

// A refused token is reported as a fatal SessionError (a person must fix
// it); the session keeps retrying with back-off rather than exiting.
TEST_F(SessionProcessTest, RefusedTokenIsReportedAsFatal) {
  StartSim({"--refuse-handshake", "401"});
  std::string cfg = Config();
  ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", cfg}, dir_.File("broker.log")));
  ASSERT_TRUE(session_.Start({Bin("vb-session"), "--config", cfg}, dir_.File("session.log"),
                             {std::string("COZE_API_TOKEN=") + kToken}));
  int err = Await(
      0, [](const Seen& s) { return s.event.has_error() && s.event.error().fatal(); }, 15000ms);
  ASSERT_GE(err, 0) << Dump();
  EXPECT_EQ(events_[size_t(err)].event.error().code(), 401);
  EXPECT_FALSE(status_.connected());
  EXPECT_TRUE(session_.running());
}

// TLS is verified: a server whose certificate no trusted CA signed is refused
// before any request (and so the token) is sent.
TEST_F(SessionProcessTest, UntrustedTlsCertificateIsRefused) {
  std::string out;
  if (RunCommand({"/usr/bin/openssl", "version"}, &out) != 0) GTEST_SKIP() << "no openssl command";
  ASSERT_EQ(RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        dir_.File("k.pem"), "-out", dir_.File("c.pem"), "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"},
                       &out),
            0)
      << out;
  // A free port: bind to 0, read it, release it for s_server.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  port_ = ntohs(a.sin_port);
  close(fd);
  Child tls;
  ASSERT_TRUE(tls.Start({"/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port_), "-cert",
                         dir_.File("c.pem"), "-key", dir_.File("k.pem"), "-www"},
                        dir_.File("tls.log")));
  ASSERT_TRUE(WaitForText(dir_.File("tls.log"), "ACCEPT", 10000ms)) << ReadFile(dir_.File("tls.log"));
  std::string cfg = Config();
  std::string text = ReadFile(cfg);
  text = std::regex_replace(text, std::regex("http://127\\.0\\.0\\.1"), "https://localhost");
  text = std::regex_replace(text, std::regex("ws://127\\.0\\.0\\.1"), "wss://localhost");
  dir_.Write("vb.yaml", text);
  ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", cfg}, dir_.File("broker.log")));
  ASSERT_TRUE(session_.Start({Bin("vb-session"), "--config", cfg}, dir_.File("session.log"),
                             {std::string("COZE_API_TOKEN=") + kToken}));
  int err = Await(
      0, [](const Seen& s) { return s.event.has_error(); }, 15000ms);
  ASSERT_GE(err, 0) << Dump();
  // Said so a person knows what to do (issue 13): the CA, and session.ca_file.
  EXPECT_NE(events_[size_t(err)].event.error().message().find("unknown CA"), std::string::npos) << Dump();
  EXPECT_NE(events_[size_t(err)].event.error().message().find("session.ca_file"), std::string::npos) << Dump();
  EXPECT_FALSE(status_.connected());
  tls.Stop(SIGTERM, 3000ms);
}

TEST_F(SessionProcessTest, InterruptCancelsTheTurnAndItsAudioStops) {
  StartAll();
  size_t from = events_.size();
  Say("tell me a long story", "story");
  int st = Await(from, [](const Seen& s) { return s.event.has_turn_started(); });
  ASSERT_GE(st, 0) << Dump(from);
  std::string chat = events_[size_t(st)].turn_id;
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return !AudioOf(chat).empty(); }, 20000ms))
      << Dump(from);
  Send([&](auto& c) {
    c.mutable_interrupt()->set_turn_id(chat);
    c.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
  });
  int ended = Await(from, [&](const Seen& s) { return s.event.has_turn_ended() && s.turn_id == chat; });
  ASSERT_GE(ended, 0) << Dump(from);
  EXPECT_EQ(events_[size_t(ended)].event.turn_ended().outcome(), v1::TurnEnded::CANCELLED);
  EXPECT_EQ(events_[size_t(ended)].event.turn_ended().cancel_reason(), v1::TurnEnded::CLIENT_CANCEL);
  // The next turn completes; nothing of the cancelled one was published after
  // the turn ended. (By publish stamps: audio sent just before the end travels
  // on the stream plane and may reach the test after the control-plane event.)
  ASSERT_FALSE(TextTurn("what time is it", "after").empty());
  const int64_t ended_ns = events_[size_t(ended)].sent_ns;
  size_t late = 0;
  for (size_t i = 0; i < audio_.size(); ++i) late += audio_[i].second == chat && audio_sent_ns_[i] > ended_ns;
  EXPECT_EQ(late, 0u) << "late audio of a cancelled chat reached the bus";
  for (size_t i = size_t(ended) + 1; i < events_.size(); ++i)
    EXPECT_NE(events_[i].turn_id, chat) << events_[i].event.ShortDebugString();
}

TEST_F(SessionProcessTest, ToolCallIsAnsweredAndTheReplyResumes) {
  StartAll();
  size_t from = events_.size();
  Say("what is the weather in paris", "w");
  int call = Await(from, [](const Seen& s) { return s.event.has_tool_call(); });
  ASSERT_GE(call, 0) << Dump(from);
  const auto tc = events_[size_t(call)].event.tool_call();
  std::string chat = events_[size_t(call)].turn_id;
  EXPECT_EQ(tc.name(), "get_weather");
  EXPECT_NE(tc.arguments_json().find("paris"), std::string::npos) << tc.arguments_json();
  ASSERT_GE(Await(from, Ended(v1::TurnEnded::REQUIRES_ACTION, chat)), 0) << Dump(from);
  Send([&](auto& c) {
    c.mutable_tool_output()->set_turn_id(chat);
    c.mutable_tool_output()->set_call_id(tc.call_id());
    c.mutable_tool_output()->set_output("sunny and 21 degrees");
  });
  int done = Await(from, Ended(v1::TurnEnded::COMPLETED, chat));
  ASSERT_GE(done, 0) << Dump(from);
  bool said = false;
  for (size_t i = from; i < events_.size(); ++i)
    if (events_[i].event.has_agent_text() && events_[i].event.agent_text().final())
      said |= events_[i].event.agent_text().text().find("sunny and 21 degrees") != std::string::npos;
  EXPECT_TRUE(said) << Dump(from);
}

TEST_F(SessionProcessTest, DroppedConnectionMidTurnRecoversInTheSameConversation) {
  // The first connection is cut after 12 downstream events: mid-reply.
  StartAll("", {"--drop-after", "12", "--fault-connections", "1"});
  std::string conv = status_.conversation_id();
  size_t from = events_.size();
  Say("tell me a long story", "cut");
  int failed = Await(from, Ended(v1::TurnEnded::FAILED));
  ASSERT_GE(failed, 0) << Dump(from);
  EXPECT_TRUE(RunUntil(
                  loop_, [&] { return !status_.connected(); }, 5000ms) ||
              status_.reconnects() > 0);
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return status_.connected() && status_.reconnects() >= 1; }, 10000ms))
      << Dump(from);
  EXPECT_EQ(status_.conversation_id(), conv);
  size_t next = events_.size();
  ASSERT_FALSE(TextTurn("what time is it", "again").empty());
  int st = Await(next, [](const Seen& s) { return s.event.has_turn_started(); });
  EXPECT_EQ(events_[size_t(st)].event.turn_started().conversation_id(), conv);
}

// The server stops talking mid-reply but keeps the connection (and answers
// pings): the session notices the silence, reconnects, and goes on.
TEST_F(SessionProcessTest, StalledServerIsLeftForANewConnection) {
  StartAll("  stall_timeout_s: 2\n", {"--stall-after", "12", "--fault-connections", "1"});
  std::string conv = status_.conversation_id();
  size_t from = events_.size();
  Say("tell me a long story", "stuck");
  int failed = Await(from, Ended(v1::TurnEnded::FAILED), 15000ms);
  ASSERT_GE(failed, 0) << Dump(from);
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return status_.connected() && status_.reconnects() >= 1; }, 10000ms))
      << Dump(from);
  ASSERT_FALSE(TextTurn("what time is it", "unstuck").empty());
  EXPECT_EQ(status_.conversation_id(), conv);
}

TEST_F(SessionProcessTest, KilledSessionComesBackToTheSameConversation) {
  StartAll();
  std::string conv = status_.conversation_id();
  ASSERT_FALSE(TextTurn("my name is ada", "first").empty());
  // Killed mid-story: once the story's own audio flows (the first turn's
  // audio may still be arriving, the planes are not ordered; a kill before
  // the story's chat began would rightly have the restart send it again).
  size_t asked = events_.size();
  Say("tell me a long story", "interrupted-by-crash");
  int story = Await(asked, [](const Seen& s) {
    return s.event.has_turn_started() && s.event.turn_started().request_id() == "interrupted-by-crash";
  });
  ASSERT_GE(story, 0) << Dump(asked);
  const std::string story_turn = events_[size_t(story)].turn_id;
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return !AudioOf(story_turn).empty(); }, 20000ms))
      << Dump(asked);
  ASSERT_EQ(kill(session_.pid(), SIGKILL), 0);
  session_.Wait(3000ms);
  status_.Clear();
  StartSession("session2.log");
  EXPECT_EQ(status_.conversation_id(), conv);
  EXPECT_EQ(StateFileConversation(), conv);
  size_t from = events_.size();
  std::string chat = TextTurn("what time is it", "after-restart");
  ASSERT_FALSE(chat.empty());
  int st = Await(from, [](const Seen& s) { return s.event.has_turn_started(); });
  EXPECT_EQ(events_[size_t(st)].event.turn_started().conversation_id(), conv);
}

TEST_F(SessionProcessTest, MicAudioDuringAnOutageIsDeliveredAfterReconnecting) {
  StartAll("  outage_buffer_ms: 2000\n");
  int port = port_;
  sim_.Stop(SIGKILL, 3000ms);
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return !status_.connected(); }, 10000ms));
  // 25 distinct frames (0.5 s) while nobody listens.
  for (int i = 1; i <= 25; ++i) {
    std::vector<int16_t> same(320, int16_t(i * 0x0101));  // every byte = i
    PublishFrame(same.data(), same.size());
  }
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return status_.buffered_audio_ms() >= 500; }, 5000ms))
      << status_.ShortDebugString();
  StartSim({}, port);
  ASSERT_TRUE(AwaitConnected()) << ReadFile(dir_.File("session.log"));
  // The simulator logs what each connection received: the newest log holds
  // the replayed frames, in order.
  std::vector<int> seen;
  RunUntil(
      loop_, [&] { return (seen = ServerHeardFrames()).size() >= 25; }, 10000ms);
  ASSERT_GE(seen.size(), 25u) << "replayed frames reaching the server: " << seen.size();
  for (int i = 0; i < 25; ++i) EXPECT_EQ(seen[size_t(i)], i + 1) << "frame " << i;
}

// While vb-control holds the uplink behind (UplinkGuard, the wake word
// spotted as the agent speaks), vb-session reads a same-host audio.clean in
// batches rather than waking for every frame. Nothing of it may be lost or
// reordered, and a wake's cut must still see every frame published before
// it: the phrase before the cut never reaches the service, the audio after
// it does, and so does everything held when a hold ends without a cut.
TEST_F(SessionProcessTest, AudioHeldBehindTheUplinkGuardIsCutAtTheWakeAndOtherwiseAllSent) {
  StartAll();
  auto guard = [&](bool hold, uint64_t cut) {
    Send([&](v1::DialogCommand& c) {
      c.mutable_uplink_guard()->set_hold(hold);
      c.mutable_uplink_guard()->set_delay_ms(hold ? 2000 : 0);
      c.mutable_uplink_guard()->set_cut_before_sample(cut);
    });
  };
  auto frame = [&](int value) {
    std::vector<int16_t> same(320, int16_t(value * 0x0101));  // every byte = value
    PublishFrame(same.data(), same.size());
  };
  // Frames of value 40, sent live, until vb-session reads this node's frames
  // over the same-host plane (the batched read is that plane's; before it
  // they come through the broker and may trail an order).
  frame(40);
  const auto warm = loop_.AddTimer(20ms, [&] {
    v1::AudioFrame f;
    f.set_sample_rate(16000);
    f.set_channels(1);
    f.set_sample_index(sample_index_);
    f.set_pcm(std::string(640, char(40)));
    sample_index_ += 320;
    clean_.Publish(f, {.origin_ns = bus::MonoNs()});
  });
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return node_->local() && node_->local()->counters().sent > 0; }, 10000ms))
      << "vb-session never read audio.clean over the same-host plane";
  loop_.CancelTimer(warm);
  guard(true, 0);
  ASSERT_NO_FATAL_FAILURE(Barrier());  // the hold is in force
  // Frames 1–10 (the wake phrase) …
  for (int i = 1; i <= 10; ++i) frame(i);
  // … and the cut at the end of frame 5 comes right behind them, as
  // vb-control's would: the frames before it are still unread in a batch.
  guard(false, sample_index_ - 5 * 320);
  // Held again; 11–20 end the hold without a cut: all of them go out.
  guard(true, 0);
  ASSERT_NO_FATAL_FAILURE(Barrier());
  for (int i = 11; i <= 20; ++i) frame(i);
  guard(false, 0);
  for (int i = 21; i <= 22; ++i) frame(i);  // live again
  std::vector<int> seen;
  RunUntil(
      loop_,
      [&] {
        seen = ServerHeardFrames();
        seen.erase(std::remove(seen.begin(), seen.end(), 40), seen.end());  // the warm-up
        return seen.size() >= 17;
      },
      10000ms);
  std::vector<int> want;
  for (int i = 6; i <= 22; ++i) want.push_back(i);
  EXPECT_EQ(seen, want) << "what the service heard, frame by frame (frame i = bytes of value i)";
}

}  // namespace
}  // namespace vb::testing
