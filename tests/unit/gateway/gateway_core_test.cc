// GatewayCore: the protocol state machine against a recording transport and
// command sink, driven by SessionEvents as vb-session would publish them.
#include "actors/gateway/gateway_core.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vb::gateway {
namespace {

class RecordingTransport : public ClientTransport {
 public:
  void Send(ConnId conn, Frame frame) override { sent[conn].push_back(Json::parse(*frame)); }
  void Close(ConnId conn, std::string_view reason) override { closed[conn] = std::string(reason); }
  // Messages of `type` sent to conn.
  std::vector<Json> Of(ConnId conn, const std::string& type) {
    std::vector<Json> out;
    for (auto& m : sent[conn])
      if (m["type"] == type) out.push_back(m);
    return out;
  }
  std::map<ConnId, std::vector<Json>> sent;
  std::map<ConnId, std::string> closed;
};

class RecordingSink : public CommandSink {
 public:
  bool Publish(const v1::DialogRequest& c) override {
    commands.push_back(c);
    return up;
  }
  bool PublishChat(const v1::TextChatRequest& r) override {
    chats.push_back(r);
    return up;
  }
  bool PublishToolOffer(const v1::ToolOffer& o) override {
    offers.push_back(o);
    return up;
  }
  bool PublishToolAnswer(const v1::ToolAnswer& a) override {
    answers.push_back(a);
    return up;
  }
  std::vector<v1::DialogRequest> commands;
  std::vector<v1::TextChatRequest> chats;
  std::vector<v1::ToolOffer> offers;
  std::vector<v1::ToolAnswer> answers;
  bool up = true;
};

constexpr int64_t kMs = 1'000'000;

class CoreTest : public ::testing::Test {
 protected:
  CoreTest() : library_("", "") {
    tokens_.AddList("test-token,second-token");
    options_.ping_interval_ns = 1000 * kMs;
    options_.idle_timeout_ns = 3000 * kMs;
    options_.turn_start_timeout_ns = 5000 * kMs;
    core_ = std::make_unique<GatewayCore>(options_, tokens_, library_, transport_, sink_);
  }
  void Open(ConnId c) { core_->OnOpen(c, now_); }
  void Text(ConnId c, const Json& j) { core_->OnText(c, j.dump(), now_); }
  void Authorize(ConnId c) {
    Open(c);
    Text(c, {{"type", "authorize"}, {"token", "test-token"}});
    ASSERT_EQ(transport_.Of(c, "authorize_success").size(), 1u);
  }
  void Event(const v1::SessionEvent& e, const std::string& turn = "") { core_->OnSessionEvent(e, turn, now_); }
  void Started(const std::string& turn, const std::string& request_id, const std::string& conv = "conv-1") {
    v1::SessionEvent e;
    e.mutable_turn_started()->set_turn_id(turn);
    e.mutable_turn_started()->set_conversation_id(conv);
    e.mutable_turn_started()->set_request_id(request_id);
    Event(e, turn);
  }
  void Delta(const std::string& turn, const std::string& text, bool final = false) {
    v1::SessionEvent e;
    e.mutable_agent_text()->set_text(text);
    e.mutable_agent_text()->set_final(final);
    e.mutable_agent_text()->set_message_id("m1");
    Event(e, turn);
  }
  void Ended(const std::string& turn, v1::TurnEnded::Outcome o = v1::TurnEnded::COMPLETED) {
    v1::SessionEvent e;
    e.mutable_turn_ended()->set_outcome(o);
    Event(e, turn);
  }
  std::string LastRequestId() {
    for (auto it = sink_.commands.rbegin(); it != sink_.commands.rend(); ++it)
      if (it->has_text_input()) return it->text_input().request_id();
    return "";
  }
  // Types of every message conn received, pings left out.
  std::vector<std::string> Types(ConnId c) {
    std::vector<std::string> t;
    for (auto& m : transport_.sent[c])
      if (m["type"] != "ping") t.push_back(m["type"]);
    return t;
  }

  TokenSet tokens_;
  AvatarLibrary library_;
  CoreOptions options_;
  RecordingTransport transport_;
  RecordingSink sink_;
  std::unique_ptr<GatewayCore> core_;
  int64_t now_ = 1000 * kMs;
};

TEST_F(CoreTest, NothingButAuthorizeBeforeAuthorization) {
  Open(1);
  Text(1, {{"type", "chat_message"}, {"content", "hi"}, {"agent_id", "a"}, {"user_id", "u"}});
  core_->OnText(1, "not json", now_);
  Text(1, {{"type", "fetch_backgrounds"}});
  auto errors = transport_.Of(1, "error");
  ASSERT_EQ(errors.size(), 3u);
  for (auto& e : errors) EXPECT_EQ(e["code"], 401);
  EXPECT_TRUE(sink_.commands.empty());
  Text(1, {{"type", "authorize"}, {"token", "wrong"}});
  EXPECT_EQ(transport_.Of(1, "authorize_error").size(), 1u);
  Text(1, {{"type", "authorize"}});  // missing token: a bad request, not a refusal
  EXPECT_EQ(transport_.Of(1, "error").back()["code"], 400);
  Text(1, {{"type", "authorize"}, {"token", "second-token"}});
  auto ok = transport_.Of(1, "authorize_success");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0]["connection_id"].get<std::string>().size(), 36u);
}

TEST_F(CoreTest, RepeatedBadTokensCloseTheConnection) {
  Open(1);
  for (int i = 0; i < options_.max_auth_failures; ++i) Text(1, {{"type", "authorize"}, {"token", "x"}});
  EXPECT_EQ(transport_.closed.count(1), 1u);
}

TEST_F(CoreTest, ChatMessageStreamsTheReplyToTheAsker) {
  Authorize(1);
  Authorize(2);
  Text(1, {{"type", "chat_message"}, {"id", "q1"}, {"content", "Tell me"}, {"agent_id", "a"}, {"user_id", "u"}});
  ASSERT_EQ(sink_.commands.size(), 1u);
  ASSERT_TRUE(sink_.commands[0].has_text_input());
  EXPECT_EQ(sink_.commands[0].text_input().text(), "Tell me");
  std::string rid = LastRequestId();
  ASSERT_FALSE(rid.empty());
  Started("chat-1", rid);
  Delta("chat-1", "Pi is 3");
  Delta("chat-1", ".14. It");
  Delta("chat-1", " is irrational.");
  Delta("chat-1", "Pi is 3.14. It is irrational.", true);  // the whole text again: nothing new
  Ended("chat-1");
  EXPECT_EQ(Types(1), (std::vector<std::string>{"authorize_success", "stream_start", "stream_token", "stream_token",
                                                "tts_ready_chunk", "stream_token", "tts_ready_chunk", "stream_end"}));
  auto start = transport_.Of(1, "stream_start")[0];
  EXPECT_EQ(start["turn_id"], "chat-1");
  EXPECT_EQ(start["session_id"], "conv-1");
  EXPECT_EQ(start["reply_to"], "q1");
  std::string joined;
  for (auto& t : transport_.Of(1, "stream_token")) joined += t["chunk"].get<std::string>();
  auto end = transport_.Of(1, "stream_end")[0];
  EXPECT_EQ(end["content"], joined);
  EXPECT_EQ(end["content"], "Pi is 3.14. It is irrational.");
  EXPECT_EQ(end["session_id"], "conv-1");
  auto chunks = transport_.Of(1, "tts_ready_chunk");
  EXPECT_EQ(chunks[0]["chunk"], "Pi is 3.14.");
  EXPECT_EQ(chunks[1]["chunk"], "It is irrational.");
  // The other client did not ask: it sees nothing of this turn.
  EXPECT_EQ(Types(2), std::vector<std::string>{"authorize_success"});
}

TEST_F(CoreTest, FinalTextWithoutDeltasIsStreamedOnce) {
  Authorize(1);
  Text(1, {{"type", "chat_message"}, {"content", "x"}, {"agent_id", "a"}, {"user_id", "u"}});
  Started("c", LastRequestId());
  Delta("c", "Hello ");
  Delta("c", "Hello world", true);
  Ended("c");
  EXPECT_EQ(transport_.Of(1, "stream_token").size(), 2u);
  EXPECT_EQ(transport_.Of(1, "stream_end")[0]["content"], "Hello world");
}

TEST_F(CoreTest, VoiceTurnsAreMirroredToEveryAuthorizedClient) {
  Authorize(1);
  Authorize(2);
  Open(3);  // not authorized: sees nothing
  Started("voice-1", "");
  v1::SessionEvent tool;
  tool.mutable_tool_call()->set_call_id("call-1");
  tool.mutable_tool_call()->set_name("get_weather");
  tool.mutable_tool_call()->set_arguments_json("{\"city\":\"Paris\"}");
  Event(tool, "voice-1");
  v1::SessionEvent pause;
  pause.mutable_turn_ended()->set_outcome(v1::TurnEnded::REQUIRES_ACTION);
  Event(pause, "voice-1");
  Text(2, {{"type", "submit_tool_output"}, {"call_id", "call-1"}, {"output", {{"temp", 21}}}});
  ASSERT_TRUE(sink_.commands.back().has_tool_output());
  EXPECT_EQ(sink_.commands.back().tool_output().turn_id(), "voice-1");
  EXPECT_EQ(sink_.commands.back().tool_output().output(), "{\"temp\":21}");
  v1::SessionEvent result;
  result.mutable_tool_result()->set_call_id("call-1");
  result.mutable_tool_result()->set_output("{\"temp\":21}");
  Event(result, "voice-1");
  Delta("voice-1", "It is 21 degrees.");
  Ended("voice-1");
  for (ConnId c : {1, 2}) {
    EXPECT_EQ(Types(c), (std::vector<std::string>{"authorize_success", "stream_start", "tool_call", "tool_result",
                                                  "stream_token", "tts_ready_chunk", "stream_end"}));
    auto call = transport_.Of(c, "tool_call")[0];
    EXPECT_EQ(call["tool_name"], "get_weather");
    EXPECT_EQ(call["args"], "{\"city\":\"Paris\"}");
    EXPECT_EQ(transport_.Of(c, "tool_result")[0]["result"], "{\"temp\":21}");
    EXPECT_EQ(transport_.Of(c, "stream_start")[0]["input"], "voice");
    EXPECT_EQ(transport_.Of(c, "stream_end")[0]["content"], "It is 21 degrees.");
  }
  EXPECT_TRUE(transport_.sent[3].empty());
}

TEST_F(CoreTest, APageOpenedLaterGetsTheEndedTurnsWithTimestamps) {
  Authorize(1);
  // A typed chat, then a voice turn with a tool call whose question is its final transcript.
  Text(1, {{"type", "chat_message"}, {"content", "what is pi"}, {"agent_id", "a"}, {"user_id", "alice"}});
  Started("t1", LastRequestId());
  now_ += 40 * kMs;
  Delta("t1", "About 3.14.");
  Ended("t1");
  v1::SessionEvent heard;
  heard.mutable_user_transcript()->set_text("weather in Paris");
  heard.mutable_user_transcript()->set_final(true);
  Event(heard);
  Started("v1", "");
  v1::SessionEvent tool;
  tool.mutable_tool_call()->set_call_id("call-1");
  tool.mutable_tool_call()->set_name("get_weather");
  tool.mutable_tool_call()->set_arguments_json("{\"city\":\"Paris\"}");
  Event(tool, "v1");
  v1::SessionEvent result;
  result.mutable_tool_result()->set_call_id("call-1");
  result.mutable_tool_result()->set_output("21 C");
  Event(result, "v1");
  Delta("v1", "Sunny.");
  Ended("v1", v1::TurnEnded::CANCELLED);
  // A dashboard opened now (or reloaded) gets both turns after its snapshot.
  Authorize(2);
  Text(2, {{"type", "dashboard_subscribe"}});
  EXPECT_EQ(Types(2), (std::vector<std::string>{"authorize_success", "dashboard_snapshot", "dashboard_history"}));
  Json turns = transport_.Of(2, "dashboard_history")[0]["turns"];
  ASSERT_EQ(turns.size(), 2u);
  EXPECT_EQ(turns[0]["turn_id"], "t1");
  EXPECT_EQ(turns[0]["input"], "text");
  EXPECT_EQ(turns[0]["asker"], "alice");
  EXPECT_EQ(turns[0]["question"], "what is pi");
  EXPECT_EQ(turns[0]["answer"], "About 3.14.");
  EXPECT_EQ(turns[0]["outcome"], "completed");
  EXPECT_DOUBLE_EQ(turns[0]["first_token_ms"].get<double>(), 40.0);
  EXPECT_GT(turns[0]["started_ms"].get<int64_t>(), 1'600'000'000'000);  // wall clock, ms since the epoch
  EXPECT_GE(turns[0]["ended_ms"].get<int64_t>(), turns[0]["started_ms"].get<int64_t>());
  // Its waterfall: asked → started → first token → ended, in order, asked 0 ms before the start here.
  Json st = turns[0]["stages"];
  EXPECT_EQ(st["asked"], st["started"]);
  EXPECT_LE(st["started"].get<int64_t>(), st["first_token"].get<int64_t>());
  EXPECT_LE(st["first_token"].get<int64_t>(), st["ended"].get<int64_t>());
  EXPECT_EQ(turns[1]["input"], "voice");
  EXPECT_EQ(turns[1]["asker"], "voice");
  EXPECT_EQ(turns[1]["question"], "weather in Paris");
  EXPECT_EQ(turns[1]["outcome"], "cancelled");
  ASSERT_EQ(turns[1]["tools"].size(), 1u);
  EXPECT_EQ(turns[1]["tools"][0]["name"], "get_weather");
  EXPECT_EQ(turns[1]["tools"][0]["args"], "{\"city\":\"Paris\"}");
  EXPECT_EQ(turns[1]["tools"][0]["result"], "21 C");
  // Live dashboards get each ended turn as it ends; plain clients do not.
  Text(1, {{"type", "chat_message"}, {"content", "again"}, {"agent_id", "a"}, {"user_id", "alice"}});
  Started("t2", LastRequestId());
  Ended("t2");
  ASSERT_EQ(transport_.Of(2, "turn_record").size(), 1u);
  EXPECT_EQ(transport_.Of(2, "turn_record")[0]["turn"]["question"], "again");
  EXPECT_TRUE(transport_.Of(1, "turn_record").empty());
}

TEST_F(CoreTest, HistoryKeepsOnlyTheLastTurns) {
  options_.history.max_turns = 2;
  core_ = std::make_unique<GatewayCore>(options_, tokens_, library_, transport_, sink_);
  Authorize(1);
  for (const char* t : {"a", "b", "c"}) {
    Started(t, "");
    Ended(t);
  }
  Text(1, {{"type", "dashboard_subscribe"}});
  Json turns = transport_.Of(1, "dashboard_history")[0]["turns"];
  ASSERT_EQ(turns.size(), 2u);
  EXPECT_EQ(turns[0]["turn_id"], "b");
  EXPECT_EQ(turns[1]["turn_id"], "c");
  EXPECT_EQ(core_->history().dropped(), 1u);
}

TEST_F(CoreTest, TtsChunksAreFlushedBeforeStreamEnd) {
  Authorize(1);
  Started("v", "");
  Delta("v", "No final period");
  Ended("v");
  EXPECT_EQ(Types(1), (std::vector<std::string>{"authorize_success", "stream_start", "stream_token", "tts_ready_chunk",
                                                "stream_end"}));
  EXPECT_EQ(transport_.Of(1, "tts_ready_chunk")[0]["chunk"], "No final period");
}

TEST_F(CoreTest, InterruptStopsTheTurnAndDropsLateTokens) {
  Authorize(1);
  Text(1, {{"type", "chat_message"}, {"content", "x"}, {"agent_id", "a"}, {"user_id", "u"}});
  Started("c", LastRequestId());
  Delta("c", "First part ");
  Text(1, {{"type", "interrupt_stream"}, {"turn_id", "c"}});
  ASSERT_TRUE(sink_.commands.back().has_interrupt());
  EXPECT_EQ(sink_.commands.back().interrupt().reason(), v1::Interrupt::USER_REQUEST);
  EXPECT_EQ(sink_.commands.back().interrupt().turn_id(), "c");
  auto end = transport_.Of(1, "stream_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["interrupted"], true);
  EXPECT_EQ(end[0]["content"], "First part ");
  size_t before = transport_.sent[1].size();
  Delta("c", "late token");
  Ended("c", v1::TurnEnded::CANCELLED);
  EXPECT_EQ(transport_.sent[1].size(), before);
}

TEST_F(CoreTest, InterruptWithoutTurnCancelsChatsNotYetStarted) {
  Authorize(1);
  Text(1, {{"type", "chat_message"}, {"content", "x"}, {"agent_id", "a"}, {"user_id", "u"}});
  std::string rid = LastRequestId();
  Text(1, {{"type", "interrupt_stream"}});
  Started("c", rid);
  Delta("c", "should not appear");
  EXPECT_TRUE(transport_.Of(1, "stream_token").empty());
  ASSERT_TRUE(sink_.commands.back().has_interrupt());
  EXPECT_EQ(sink_.commands.back().interrupt().turn_id(), "c");
}

TEST_F(CoreTest, BadRequestsGetAnErrorAndTheConnectionKeepsWorking) {
  Authorize(1);
  core_->OnText(1, "{broken", now_);
  Text(1, {{"type", "no_such_type"}});
  Text(1, {{"type", "chat_message"}, {"content", 5}, {"agent_id", "a"}, {"user_id", "u"}});
  Text(1, {{"type", "chat_message"}, {"content", "hi"}, {"user_id", "u"}});
  Text(1, Json::array({1, 2}));
  core_->OnBadFrame(1, 400, "frame too large", now_);
  auto errors = transport_.Of(1, "error");
  ASSERT_EQ(errors.size(), 6u);
  for (auto& e : errors) EXPECT_EQ(e["code"], 400) << e.dump();
  EXPECT_NE(errors[3]["error"].get<std::string>().find("agent_id"), std::string::npos);
  EXPECT_TRUE(sink_.commands.empty());
  Text(1, {{"type", "fetch_backgrounds"}});
  EXPECT_EQ(transport_.Of(1, "background_files").size(), 1u);
}

TEST_F(CoreTest, PingsAndIdleTimeout) {
  Authorize(1);
  Authorize(2);
  for (int i = 0; i < 6; ++i) {
    now_ += 700 * kMs;
    core_->Tick(now_);
    Text(1, {{"type", "pong"}});
  }
  EXPECT_GE(transport_.Of(1, "ping").size(), 3u);
  EXPECT_EQ(transport_.closed.count(1), 0u);
  EXPECT_EQ(transport_.closed.count(2), 1u);  // silent for 4.2 s > 3 s
  EXPECT_EQ(core_->connections(), 1u);
}

TEST_F(CoreTest, ConnectionsThatNeverAuthorizeAreClosed) {
  Open(1);
  Authorize(2);
  for (int i = 0; i < 11; ++i) {  // 11 s of pongs: alive, but never authorized
    now_ += 1000 * kMs;
    core_->Tick(now_);
    Text(1, {{"type", "pong"}});
    Text(2, {{"type", "pong"}});
  }
  EXPECT_EQ(transport_.closed.count(1), 1u);
  EXPECT_EQ(transport_.closed.count(2), 0u);
}

TEST_F(CoreTest, ATurnTheSessionAbandonsEndsAsFailed) {
  options_.turn_idle_timeout_ns = 5000 * kMs;
  core_ = std::make_unique<GatewayCore>(options_, tokens_, library_, transport_, sink_);
  Authorize(1);
  Started("v", "");
  Delta("v", "Half a sen");
  for (int i = 0; i < 4; ++i) {
    now_ += 1000 * kMs;
    core_->Tick(now_);
    Text(1, {{"type", "pong"}});
  }
  EXPECT_TRUE(transport_.Of(1, "stream_end").empty());
  Delta("v", "tence");  // still alive: the clock restarts
  for (int i = 0; i < 6; ++i) {
    now_ += 1000 * kMs;
    core_->Tick(now_);
    Text(1, {{"type", "pong"}});
  }
  auto end = transport_.Of(1, "stream_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["outcome"], "failed");
  EXPECT_EQ(end[0]["content"], "Half a sentence");
  EXPECT_EQ(core_->running_turns(), 0u);
}

// Issue 12: vb-control ends a turn whose session died (TurnEnded FAILED on
// the session's behalf); the session's own late TurnEnded of it changes
// nothing; a cut reply is an error the turn's people see.
TEST_F(CoreTest, ATurnEndedOnTheSessionsBehalfEndsOnceAndACutReplyIsAnError) {
  Authorize(1);
  Started("v", "");
  Delta("v", "Once upon");
  v1::SessionEvent cut;
  cut.mutable_error()->set_code(503);
  cut.mutable_error()->set_message("playback died mid-reply: the reply was cut");
  Event(cut, "v");
  auto errors = transport_.Of(1, "error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["code"], 503);
  EXPECT_EQ(errors[0]["turn_id"], "v");
  v1::SessionEvent failed;
  failed.mutable_turn_ended()->set_outcome(v1::TurnEnded::FAILED);
  failed.mutable_turn_ended()->set_error("the session restarted");
  Event(failed, "v");
  Event(failed, "v");  // the restarted session says it too
  auto end = transport_.Of(1, "stream_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["outcome"], "failed");
  EXPECT_EQ(end[0]["error"], "the session restarted");
  Event(cut, "v");  // after the end: still shown
  EXPECT_EQ(transport_.Of(1, "error").size(), 2u);
}

TEST_F(CoreTest, ChatWithoutASessionTimesOut) {
  Authorize(1);
  Text(1, {{"type", "chat_message"}, {"id", 7}, {"content", "x"}, {"agent_id", "a"}, {"user_id", "u"}});
  for (int i = 0; i < 4; ++i) {  // 4 s: still waiting (the timeout is 5 s)
    now_ += 1000 * kMs;
    core_->Tick(now_);
    Text(1, {{"type", "pong"}});
  }
  EXPECT_TRUE(transport_.Of(1, "error").empty());
  now_ += 1500 * kMs;
  core_->Tick(now_);
  auto e = transport_.Of(1, "error");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["code"], 500);
  EXPECT_EQ(e[0]["reply_to"], "7");
}

TEST_F(CoreTest, BusUnavailableIsAnInternalError) {
  Authorize(1);
  sink_.up = false;
  Text(1, {{"type", "chat_message"}, {"content", "x"}, {"agent_id", "a"}, {"user_id", "u"}});
  EXPECT_EQ(transport_.Of(1, "error")[0]["code"], 500);
}

TEST_F(CoreTest, DashboardSeesEveryTurnAndFeed) {
  Authorize(1);
  Authorize(2);
  core_->SetDashboardSnapshot([] { return Json{{"actors", Json::array()}}; });
  Text(2, {{"type", "dashboard_subscribe"}});
  auto snap = transport_.Of(2, "dashboard_snapshot");
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_TRUE(snap[0].contains("actors"));
  Text(1, {{"type", "chat_message"}, {"content", "x"}, {"agent_id", "a"}, {"user_id", "u"}});
  Started("c", LastRequestId());
  Delta("c", "hi");
  Ended("c");
  EXPECT_EQ(transport_.Of(2, "stream_end").size(), 1u);
  core_->SendToDashboards(Json{{"type", "mic_level"}});
  EXPECT_EQ(transport_.Of(2, "mic_level").size(), 1u);
  EXPECT_TRUE(transport_.Of(1, "mic_level").empty());
  Text(2, {{"type", "push_to_talk"}, {"down", true}});
  ASSERT_TRUE(sink_.commands.back().has_push_to_talk());
  EXPECT_TRUE(sink_.commands.back().push_to_talk().down());
}

TEST_F(CoreTest, TurnWhoseStartWasMissedIsStillShown) {
  Authorize(1);
  Delta("late-turn", "Hello.");
  Ended("late-turn");
  EXPECT_EQ(Types(1), (std::vector<std::string>{"authorize_success", "stream_start", "stream_token", "tts_ready_chunk",
                                                "stream_end"}));
  EXPECT_EQ(transport_.Of(1, "stream_end")[0]["content"], "Hello.");
}

// ---- one conversation per client (issue 13 item 5) ----------------------

class PerClientTest : public CoreTest {
 protected:
  PerClientTest() {
    options_.per_client_conversations = true;
    core_ = std::make_unique<GatewayCore>(options_, tokens_, library_, transport_, sink_);
  }
  // The chat.request the last chat_message of conn became.
  v1::TextChatRequest Chat(ConnId c, const std::string& user, const std::string& id, const std::string& session = "") {
    Json m = {{"type", "chat_message"}, {"id", id}, {"content", "hi " + user}, {"agent_id", "a"}, {"user_id", user}};
    if (!session.empty()) m["session_id"] = session;
    Text(c, m);
    return sink_.chats.back();
  }
  void ChatEvent(const std::string& rid, const std::string& chat, const std::string& conv,
                 const std::function<void(v1::TextChatEvent&)>& fill) {
    v1::TextChatEvent e;
    e.set_request_id(rid);
    e.set_chat_id(chat);
    e.set_conversation_id(conv);
    fill(e);
    core_->OnChatEvent(e, now_);
  }
  void ChatStarted(const std::string& rid, const std::string& chat, const std::string& conv) {
    ChatEvent(rid, chat, conv, [&](v1::TextChatEvent& e) { e.mutable_started()->set_turn_id(chat); });
  }
  void ChatText(const std::string& rid, const std::string& chat, const std::string& text) {
    ChatEvent(rid, chat, "", [&](v1::TextChatEvent& e) { e.mutable_text()->set_text(text); });
  }
  void ChatEnded(const std::string& rid, const std::string& chat, v1::TurnEnded::Outcome o = v1::TurnEnded::COMPLETED) {
    ChatEvent(rid, chat, "", [&](v1::TextChatEvent& e) { e.mutable_ended()->set_outcome(o); });
  }
};

TEST_F(PerClientTest, EachClientChatsInItsOwnConversationAndOnlyItHearsTheReply) {
  Authorize(1);
  Authorize(2);
  auto ra = Chat(1, "alice", "a1");
  auto rb = Chat(2, "bob", "b1");
  EXPECT_TRUE(sink_.commands.empty());  // no TextInput into the voice dialog
  EXPECT_EQ(ra.start().user_id(), "alice");
  EXPECT_EQ(rb.start().user_id(), "bob");
  EXPECT_NE(ra.start().conversation_key(), rb.start().conversation_key());
  EXPECT_EQ(ra.start().conversation_id(), "");
  ChatStarted(ra.request_id(), "chat-a", "conv-a");
  ChatStarted(rb.request_id(), "chat-b", "conv-b");
  ChatText(ra.request_id(), "chat-a", "Hello alice.");
  ChatText(rb.request_id(), "chat-b", "Hello bob.");
  ChatEnded(rb.request_id(), "chat-b");
  ChatEnded(ra.request_id(), "chat-a");
  auto sa = transport_.Of(1, "stream_start");
  ASSERT_EQ(sa.size(), 1u);
  EXPECT_EQ(sa[0]["reply_to"], "a1");
  EXPECT_EQ(sa[0]["session_id"], "conv-a");
  EXPECT_EQ(transport_.Of(1, "stream_end")[0]["content"], "Hello alice.");
  EXPECT_EQ(transport_.Of(1, "stream_end")[0]["outcome"], "completed");
  EXPECT_EQ(transport_.Of(2, "stream_end")[0]["content"], "Hello bob.");
  EXPECT_EQ(transport_.Of(1, "stream_start").size(), 1u);  // bob's turn never reached alice
  EXPECT_EQ(transport_.Of(2, "stream_start").size(), 1u);
  // Alice's next chat continues conv-a.
  EXPECT_EQ(Chat(1, "alice", "a2").start().conversation_id(), "conv-a");
}

TEST_F(PerClientTest, TheSameSessionIdAfterAReconnectContinuesButNotForAnotherUser) {
  Authorize(1);
  auto r = Chat(1, "carol", "c1", "phone");
  ChatStarted(r.request_id(), "chat-1", "conv-c");
  ChatEnded(r.request_id(), "chat-1");
  core_->OnClose(1);
  Authorize(2);
  EXPECT_EQ(Chat(2, "carol", "c2", "phone").start().conversation_id(), "conv-c");
  EXPECT_EQ(Chat(2, "mallory", "m1", "phone").start().conversation_id(), "");
  // The conversation id itself, given back by the same user, continues it too.
  Authorize(3);
  EXPECT_EQ(Chat(3, "carol", "c3", "conv-c").start().conversation_id(), "conv-c");
  EXPECT_EQ(Chat(3, "mallory", "m2", "conv-c").start().conversation_id(), "");
}

TEST_F(PerClientTest, InterruptStopsOnlyTheAskersChatAndIsAlwaysAnswered) {
  Authorize(1);
  Authorize(2);
  auto ra = Chat(1, "alice", "a1");
  auto rb = Chat(2, "bob", "b1");
  ChatStarted(ra.request_id(), "chat-a", "conv-a");
  ChatStarted(rb.request_id(), "chat-b", "conv-b");
  Text(1, {{"type", "interrupt_stream"}, {"id", "stop"}});
  ASSERT_EQ(sink_.chats.back().request_id(), ra.request_id());
  EXPECT_TRUE(sink_.chats.back().has_cancel());
  EXPECT_TRUE(sink_.commands.empty());  // no voice turn ran: the dialog is not interrupted
  auto ack = transport_.Of(1, "interrupt_ack");
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0]["outcome"], "interrupted");
  EXPECT_EQ(ack[0]["turn_ids"], Json::array({"chat-a"}));
  EXPECT_EQ(transport_.Of(1, "stream_end")[0]["interrupted"], true);
  // Bob's reply goes on.
  ChatText(rb.request_id(), "chat-b", "Still here.");
  ChatEnded(rb.request_id(), "chat-b");
  EXPECT_EQ(transport_.Of(2, "stream_end")[0]["content"], "Still here.");
  EXPECT_EQ(transport_.Of(2, "stream_end")[0]["outcome"], "completed");
  // Bob cannot stop a chat of alice by naming it.
  auto ra2 = Chat(1, "alice", "a2");
  ChatStarted(ra2.request_id(), "chat-a2", "conv-a");
  size_t requests = sink_.chats.size();
  Text(2, {{"type", "interrupt_stream"}, {"id", "x"}, {"turn_id", "chat-a2"}});
  EXPECT_EQ(transport_.Of(2, "error").back()["code"], 403);
  EXPECT_EQ(sink_.chats.size(), requests);
  // Nothing running for bob: answered all the same.
  Text(2, {{"type", "interrupt_stream"}, {"id", "idle"}});
  EXPECT_EQ(transport_.Of(2, "interrupt_ack").back()["outcome"], "nothing_running");
  EXPECT_EQ(transport_.Of(2, "interrupt_ack").back()["reply_to"], "idle");
}

TEST_F(PerClientTest, AVoiceTurnIsStillEveryonesToStop) {
  Authorize(1);
  Started("voice-1", "");  // a turn nobody here asked for
  Text(1, {{"type", "interrupt_stream"}});
  ASSERT_EQ(sink_.commands.size(), 1u);
  EXPECT_TRUE(sink_.commands[0].has_interrupt());
  EXPECT_EQ(transport_.Of(1, "interrupt_ack")[0]["turn_ids"], Json::array({"voice-1"}));
}

TEST_F(PerClientTest, NewConversationGivesTheClientAFreshOne) {
  Authorize(1);
  auto r = Chat(1, "alice", "a1");
  ChatStarted(r.request_id(), "chat-a", "conv-a");
  ChatEnded(r.request_id(), "chat-a");
  Text(1, {{"type", "new_conversation"}, {"id", "n"}});
  EXPECT_EQ(transport_.Of(1, "new_conversation_started")[0]["reply_to"], "n");
  auto next = Chat(1, "alice", "a2");
  EXPECT_EQ(next.start().conversation_id(), "");
  EXPECT_NE(next.start().conversation_key(), r.start().conversation_key());
  // A chat of the old conversation that starts after new_conversation does
  // not bring that conversation back.
  auto old = Chat(1, "alice", "a3");
  Text(1, {{"type", "new_conversation"}});
  ChatStarted(old.request_id(), "chat-old", "conv-old");
  EXPECT_EQ(Chat(1, "alice", "a4").start().conversation_id(), "");
}

// The dashboard's "New conversation" button: the device's voice dialog
// starts afresh (conversation.clear through vb-session) and so does the
// asker's own text conversation; a plain new_conversation leaves the voice
// dialog alone.
TEST_F(PerClientTest, NewConversationForTheDeviceAlsoClearsTheVoiceConversation) {
  Authorize(1);
  Text(1, {{"type", "new_conversation"}, {"id", "own"}});
  EXPECT_TRUE(sink_.commands.empty());
  Text(1, {{"type", "new_conversation"}, {"id", "dev"}, {"device", true}});
  ASSERT_EQ(sink_.commands.size(), 1u);
  EXPECT_TRUE(sink_.commands[0].has_new_conversation());
  auto r = transport_.Of(1, "new_conversation_started");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1]["reply_to"], "dev");
  EXPECT_EQ(r[1]["device"], true);
  Text(1, {{"type", "new_conversation"}, {"device", "yes"}});
  EXPECT_EQ(transport_.Of(1, "error").back()["code"], 400);
}

TEST_F(PerClientTest, AChatThatEndsBeforeStartingIsAnErrorToTheAsker) {
  Authorize(1);
  auto r = Chat(1, "alice", "a1");
  ChatEvent(r.request_id(), "", "", [](v1::TextChatEvent& e) {
    e.mutable_ended()->set_outcome(v1::TurnEnded::FAILED);
    e.mutable_ended()->set_error("cannot create a conversation: 4100: bad token");
  });
  auto err = transport_.Of(1, "error");
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0]["reply_to"], "a1");
  EXPECT_NE(err[0]["error"].get<std::string>().find("4100"), std::string::npos);
  // A chat.event for a request this gateway never made is ignored.
  ChatStarted("someone-else", "chat-x", "conv-x");
  EXPECT_TRUE(transport_.Of(1, "stream_start").empty());
}

TEST_F(CoreTest, ToolsAClientRegistersAreOfferedCalledAnsweredAndWithdrawn) {
  Authorize(1);
  Text(1, {{"type", "register_tools"},
           {"id", "r"},
           {"tools", {{{"name", "lookup_order"}, {"parameters", {{"type", "object"}}}, {"timeout_ms", 3000}}}}});
  auto reg = transport_.Of(1, "tools_registered");
  ASSERT_EQ(reg.size(), 1u);
  ASSERT_EQ(sink_.offers.size(), 1u);
  const std::string provider = sink_.offers[0].provider();
  EXPECT_EQ(reg[0]["provider"], provider);
  EXPECT_EQ(sink_.offers[0].tools(0).name(), "lookup_order");
  EXPECT_EQ(sink_.offers[0].tools(0).timeout_ms(), 3000u);
  now_ += 2000 * kMs;
  core_->Tick(now_);
  EXPECT_GE(sink_.offers.size(), 2u);  // renewed within its ttl
  v1::ToolInvocation inv;
  inv.set_call_id("call-1");
  inv.set_turn_id("chat-1");
  inv.set_name("lookup_order");
  inv.set_arguments_json(R"({"order":"42"})");
  inv.set_provider(provider);
  core_->OnToolInvocation(inv, now_);
  auto calls = transport_.Of(1, "tool_call");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["call_id"], "call-1");
  Text(1, {{"type", "submit_tool_output"}, {"call_id", "call-1"}, {"output", "shipped"}});
  ASSERT_EQ(sink_.answers.size(), 1u);
  EXPECT_EQ(sink_.answers[0].output(), "shipped");
  EXPECT_EQ(sink_.answers[0].provider(), provider);
  EXPECT_TRUE(sink_.commands.empty());  // not a ToolOutput: the registry submits it
  Text(1, {{"type", "register_tools"}, {"tools", Json::array({{{"name", ""}}})}});
  EXPECT_EQ(transport_.Of(1, "error").back()["code"], 400);
  core_->OnClose(1);
  EXPECT_EQ(sink_.offers.back().tools_size(), 0);  // withdrawn
  // A call for a client that left is answered with an error at once.
  inv.set_call_id("call-2");
  core_->OnToolInvocation(inv, now_);
  ASSERT_EQ(sink_.answers.size(), 2u);
  EXPECT_NE(sink_.answers[1].error(), "");
}

TEST(LogLimiter, FiveLinesPerWindowThenTheSuppressedCount) {
  LogLimiter l(5, 10'000'000'000);
  uint64_t suppressed = 0;
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += l.Allow(1'000'000'000 + i, &suppressed);
  EXPECT_EQ(allowed, 5);
  EXPECT_TRUE(l.Allow(11'000'000'001, &suppressed));
  EXPECT_EQ(suppressed, 15u);
}

}  // namespace
}  // namespace vb::gateway
