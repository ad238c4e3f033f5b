// TextChats and SseParser: text chats for bus clients over REST v3 SSE,
// driven through a fake port that records the HTTP requests and lets the
// test feed SSE bytes in any chunking.
#include "actors/session/text_chats.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace vb::session {
namespace {

using Json = nlohmann::json;

TEST(SseParser, EventsWhateverTheChunking) {
  const std::string stream =
      "event:conversation.chat.created\ndata:{\"id\":\"1\"}\n\n"
      "event: conversation.message.delta\r\ndata: {\"content\":\"Hi\"}\r\n\r\n"
      ": keep-alive\n\n"
      "event:done\ndata:\"[DONE]\"\n\n";
  for (size_t step : {size_t(1), size_t(3), size_t(7), stream.size()}) {
    SseParser p;
    std::vector<SseParser::Event> got;
    for (size_t i = 0; i < stream.size(); i += step)
      for (auto& e : p.Push(stream.substr(i, step))) got.push_back(e);
    ASSERT_EQ(got.size(), 3u) << "step " << step;
    EXPECT_EQ(got[0].name, "conversation.chat.created");
    EXPECT_EQ(got[0].data, "{\"id\":\"1\"}");
    EXPECT_EQ(got[1].name, "conversation.message.delta");
    EXPECT_EQ(got[1].data, "{\"content\":\"Hi\"}");
    EXPECT_EQ(got[2].name, "done");
  }
}

TEST(SseParser, AnEndlessLineIsDroppedAndCounted) {
  SseParser p(64);
  EXPECT_TRUE(p.Push("data:" + std::string(100, 'x')).empty());
  EXPECT_EQ(p.oversized(), 1u);
  auto e = p.Push("\nevent:x\ndata:{}\n\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].name, "x");
}

class FakePort : public TextChatPort {
 public:
  struct Request {
    std::string path;
    Json body;
    Chunk chunk;
    Done done;
    bool aborted = false;
  };
  uint64_t PostStream(const std::string& path, std::string body, Chunk chunk, Done done) override {
    requests.push_back({path, Json::parse(body), std::move(chunk), std::move(done)});
    return requests.size();  // id = index + 1
  }
  void Post(const std::string& path, std::string body, Done done) override {
    requests.push_back({path, Json::parse(body), nullptr, std::move(done)});
  }
  void Abort(uint64_t stream) override { requests.at(stream - 1).aborted = true; }
  void PublishChatEvent(const v1::TextChatEvent& e) override { events.push_back(e); }
  void PublishToolCall(const v1::ToolCall& call, const std::string& chat_id) override {
    bus_calls.emplace_back(chat_id, call.call_id());
  }
  void Problem(const std::string& what) override { problems.push_back(what); }
  void PublishTurnEndedWithTools(const v1::TurnEnded& ended, const std::string& chat_id) override {
    bus_ends.emplace_back(chat_id, ended.outcome());
  }

  Request& Last(const std::string& path_prefix) {
    for (auto it = requests.rbegin(); it != requests.rend(); ++it)
      if (it->path.rfind(path_prefix, 0) == 0) return *it;
    throw std::runtime_error("no request to " + path_prefix);
  }
  std::vector<v1::TextChatEvent> Of(const std::string& rid, v1::TextChatEvent::EventCase kind) const {
    std::vector<v1::TextChatEvent> out;
    for (const auto& e : events)
      if (e.request_id() == rid && e.event_case() == kind) out.push_back(e);
    return out;
  }
  std::vector<Request> requests;
  std::vector<v1::TextChatEvent> events;
  std::vector<std::pair<std::string, std::string>> bus_calls;
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, v1::TurnEnded::Outcome>> bus_ends;
};

std::string Sse(const std::string& name, const Json& data) {
  return "event:" + name + "\ndata:" + data.dump() + "\n\n";
}

class TextChatsTest : public ::testing::Test {
 protected:
  TextChatsTest() {
    TextChatOptions o;
    o.bot_id = "bot";
    o.default_user_id = "vb-device";
    o.tool_timeout_ns = 1'000'000'000;
    o.stall_timeout_ns = 5'000'000'000;
    o.max_chats = 3;
    chats_ = std::make_unique<TextChats>(o, &port_, [this] { return now_; });
  }
  void Start(const std::string& rid, const std::string& text, const std::string& key, const std::string& conv = "",
             const std::string& user = "u") {
    v1::TextChatRequest r;
    r.set_request_id(rid);
    r.mutable_start()->set_text(text);
    r.mutable_start()->set_conversation_key(key);
    r.mutable_start()->set_conversation_id(conv);
    r.mutable_start()->set_user_id(user);
    chats_->OnRequest(r, now_);
  }
  void CancelReq(const std::string& rid) {
    v1::TextChatRequest r;
    r.set_request_id(rid);
    r.mutable_cancel();
    chats_->OnRequest(r, now_);
  }
  void Created(const std::string& conv) {
    port_.Last("/v1/conversation/create").done(200, Json{{"code", 0}, {"data", {{"id", conv}}}}.dump(), "");
  }
  v1::TurnEnded Ended(const std::string& rid) {
    auto e = port_.Of(rid, v1::TextChatEvent::kEnded);
    EXPECT_EQ(e.size(), 1u) << rid;
    return e.empty() ? v1::TurnEnded() : e[0].ended();
  }
  FakePort port_;
  int64_t now_ = 1'000'000'000;
  std::unique_ptr<TextChats> chats_;
};

TEST_F(TextChatsTest, AChatStreamsInANewConversationWithItsUserAndCompletes) {
  Start("r1", "hello", "alice#0", "", "alice");
  ASSERT_EQ(port_.requests.size(), 1u);
  EXPECT_EQ(port_.requests[0].path, "/v1/conversation/create");
  Created("c1");
  auto& chat = port_.Last("/v3/chat");
  EXPECT_EQ(chat.path, "/v3/chat?conversation_id=c1");
  EXPECT_EQ(chat.body["user_id"], "alice");
  EXPECT_EQ(chat.body["stream"], true);
  EXPECT_EQ(chat.body["additional_messages"][0]["content"], "hello");
  // Split mid-event: nothing is lost.
  std::string s =
      Sse("conversation.chat.created", {{"id", "ch1"}, {"conversation_id", "c1"}}) +
      Sse("conversation.message.delta", {{"id", "m1"}, {"type", "answer"}, {"content", "Hel"}}) +
      Sse("conversation.message.delta", {{"id", "m1"}, {"type", "answer"}, {"content", "lo!"}}) +
      Sse("conversation.message.completed", {{"id", "m1"}, {"type", "answer"}, {"content", "Hello!"}}) +
      Sse("conversation.message.completed", {{"id", "m2"}, {"type", "verbose"}, {"content", "{}"}}) +
      Sse("conversation.chat.completed", {{"id", "ch1"}, {"usage", {{"input_count", 7}, {"output_count", 2}}}});
  chat.chunk(s.substr(0, 50));
  chat.chunk(s.substr(50));
  auto started = port_.Of("r1", v1::TextChatEvent::kStarted);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].started().turn_id(), "ch1");
  EXPECT_EQ(started[0].conversation_id(), "c1");
  auto texts = port_.Of("r1", v1::TextChatEvent::kText);
  ASSERT_EQ(texts.size(), 3u);  // two deltas, the final answer; never the verbose message
  EXPECT_EQ(texts[0].text().text() + texts[1].text().text(), "Hello!");
  EXPECT_TRUE(texts[2].text().final());
  auto end = Ended("r1");
  EXPECT_EQ(end.outcome(), v1::TurnEnded::COMPLETED);
  EXPECT_EQ(end.input_tokens(), 7u);
  EXPECT_EQ(chats_->running(), 0u);
  // The key now names c1: the next chat continues it, without a creation.
  Start("r2", "again", "alice#0");
  EXPECT_EQ(port_.requests.back().path, "/v3/chat?conversation_id=c1");
}

// Found by fuzz_coze_text_chats: a usage count that was not a number threw
// out of the SSE handler and ended vb-session.
TEST_F(TextChatsTest, AUsageThatIsNoNumberCompletesTheChatWithZeroTokens) {
  Start("r1", "hello", "", "c1");
  port_.Last("/v3/chat")
      .chunk(
          Sse("conversation.chat.created", {{"id", "ch1"}, {"conversation_id", "c1"}}) +
          Sse("conversation.chat.completed", {{"id", "ch1"}, {"usage", {{"input_count", "x"}, {"output_count", -3}}}}));
  auto end = Ended("r1");
  EXPECT_EQ(end.outcome(), v1::TurnEnded::COMPLETED);
  EXPECT_EQ(end.input_tokens(), 0u);
  EXPECT_EQ(end.output_tokens(), 0u);
  EXPECT_EQ(chats_->running(), 0u);
}

TEST_F(TextChatsTest, ChatsOfTwoKeysRunAtOnceInTheirOwnConversations) {
  Start("a", "one", "alice#0");
  Start("b", "two", "bob#0");
  port_.requests[0].done(200, Json{{"code", 0}, {"data", {{"id", "ca"}}}}.dump(), "");
  port_.requests[1].done(200, Json{{"code", 0}, {"data", {{"id", "cb"}}}}.dump(), "");
  EXPECT_EQ(chats_->running(), 2u);
  auto& sa = port_.Last("/v3/chat?conversation_id=ca");
  auto& sb = port_.Last("/v3/chat?conversation_id=cb");
  EXPECT_FALSE(sa.aborted);
  EXPECT_FALSE(sb.aborted);
  sb.chunk(Sse("conversation.chat.completed", {{"id", "x"}}));
  EXPECT_EQ(Ended("b").outcome(), v1::TurnEnded::COMPLETED);
  EXPECT_TRUE(port_.Of("a", v1::TextChatEvent::kEnded).empty());  // a still runs
}

TEST_F(TextChatsTest, ANewChatInTheSameConversationCancelsTheOldOneFirst) {
  Start("a1", "story", "k", "c1");
  auto& s1 = port_.requests.back();
  s1.chunk(Sse("conversation.chat.created", {{"id", "ch1"}, {"conversation_id", "c1"}}));
  Start("a2", "hello", "k", "c1");
  EXPECT_TRUE(port_.requests[0].aborted);
  EXPECT_EQ(Ended("a1").cancel_reason(), v1::TurnEnded::NEW_MESSAGE);
  auto& cancel = port_.Last("/v3/chat/cancel");
  EXPECT_EQ(cancel.body["chat_id"], "ch1");
  // a2 waits for the cancel's answer (Coze would refuse a second chat: 4016).
  EXPECT_EQ(port_.requests.size(), 2u);
  cancel.done(200, "{}", "");
  EXPECT_EQ(port_.requests.back().path, "/v3/chat?conversation_id=c1");
}

TEST_F(TextChatsTest, CancelEndsTheChatAtOnceAndCancelsItAtCoze) {
  Start("r", "story", "k", "c1");
  port_.requests.back().chunk(Sse("conversation.chat.created", {{"id", "ch9"}, {"conversation_id", "c1"}}));
  CancelReq("r");
  EXPECT_EQ(Ended("r").outcome(), v1::TurnEnded::CANCELLED);
  EXPECT_EQ(Ended("r").cancel_reason(), v1::TurnEnded::CLIENT_CANCEL);
  EXPECT_EQ(port_.Last("/v3/chat/cancel").body["conversation_id"], "c1");
  // Bytes already on their way are dropped.
  port_.requests[0].chunk(Sse("conversation.message.delta", {{"type", "answer"}, {"content", "late"}}));
  EXPECT_TRUE(port_.Of("r", v1::TextChatEvent::kText).empty());
}

TEST_F(TextChatsTest, ToolCallsAreAnsweredTogetherAndUnansweredOnesTimeOut) {
  Start("r", "weather and time", "k", "c1");
  auto* s = &port_.requests.back();
  s->chunk(
      Sse("conversation.chat.created", {{"id", "ch"}, {"conversation_id", "c1"}}) +
      Sse("conversation.chat.requires_action",
          {{"id", "ch"},
           {"required_action",
            {{"type", "submit_tool_outputs"},
             {"submit_tool_outputs",
              {{"tool_calls",
                {{{"id", "t1"}, {"type", "function"}, {"function", {{"name", "get_weather"}, {"arguments", "{}"}}}},
                 {{"id", "t2"}, {"type", "function"}, {"function", {{"name", "clock"}, {"arguments", "{}"}}}}}}}}}}}));
  s->done(200, "", "");  // the stream ends at requires_action: not an end of the chat
  ASSERT_EQ(port_.bus_calls.size(), 2u);
  EXPECT_EQ(port_.bus_calls[0].first, "ch");
  EXPECT_EQ(port_.Of("r", v1::TextChatEvent::kToolCall).size(), 2u);
  EXPECT_TRUE(chats_->Owns("ch"));
  std::string refusal;
  EXPECT_FALSE(chats_->OnToolOutput("voice-chat", "t1", "x", now_, &refusal));  // not ours: the voice dialog's
  ASSERT_TRUE(chats_->OnToolOutput("ch", "t1", "sunny", now_, &refusal));
  EXPECT_EQ(refusal, "");
  ASSERT_TRUE(chats_->OnToolOutput("ch", "t9", "?", now_, &refusal));
  EXPECT_NE(refusal, "");                // a call it did not make
  EXPECT_EQ(port_.requests.size(), 1u);  // held until t2 is answered
  now_ += 1'100'000'000;
  chats_->Tick(now_);
  auto& submit = port_.Last("/v3/chat/submit_tool_outputs");
  EXPECT_EQ(submit.path, "/v3/chat/submit_tool_outputs?conversation_id=c1&chat_id=ch");
  ASSERT_EQ(submit.body["tool_outputs"].size(), 2u);
  EXPECT_EQ(submit.body["tool_outputs"][0]["output"], "sunny");
  EXPECT_NE(submit.body["tool_outputs"][1]["output"].get<std::string>().find("did not answer in time"),
            std::string::npos);
  EXPECT_EQ(chats_->counters().tool_timeouts, 1u);
  submit.chunk(Sse("conversation.chat.in_progress", {{"id", "ch"}}) +
               Sse("conversation.chat.completed", {{"id", "ch"}}));
  EXPECT_EQ(Ended("r").outcome(), v1::TurnEnded::COMPLETED);
}

TEST_F(TextChatsTest, AChatCancelledWhileItsToolsAreOutstandingTellsTheRegistry) {
  Start("r", "weather", "k", "c1");
  port_.requests.back().chunk(
      Sse("conversation.chat.created", {{"id", "ch"}, {"conversation_id", "c1"}}) +
      Sse("conversation.chat.requires_action", Json::parse(R"({"id": "ch", "required_action": {"submit_tool_outputs":
          {"tool_calls": [{"id": "t1", "function": {"name": "get_weather", "arguments": "{}"}}]}}})")));
  EXPECT_TRUE(port_.bus_ends.empty());
  CancelReq("r");
  ASSERT_EQ(port_.bus_ends.size(), 1u);
  EXPECT_EQ(port_.bus_ends[0].first, "ch");
  EXPECT_EQ(port_.bus_ends[0].second, v1::TurnEnded::CANCELLED);
  // A chat that ends without outstanding calls says nothing on session.event.
  Start("r2", "hello", "k2", "c2");
  port_.requests.back().chunk(Sse("conversation.chat.created", {{"id", "ch2"}}) +
                              Sse("conversation.chat.completed", {{"id", "ch2"}}));
  EXPECT_EQ(port_.bus_ends.size(), 1u);
}

TEST_F(TextChatsTest, FailuresEndTheChatWithAReason) {
  Start("f1", "x", "k1", "c1");
  port_.requests.back().chunk(
      Sse("conversation.chat.failed", {{"id", "ch"}, {"last_error", {{"code", 4013}, {"msg", "model"}}}}));
  EXPECT_EQ(Ended("f1").error(), "4013: model");
  Start("f2", "x", "k2", "c2");
  port_.requests.back().chunk(R"({"code":4002,"msg":"conversation not found"})");
  port_.requests.back().done(200, "", "");
  EXPECT_EQ(Ended("f2").error(), "4002: conversation not found");
  Start("f3", "x", "k3", "c3");
  port_.requests.back().done(0, "", "cannot connect to api");
  EXPECT_EQ(Ended("f3").error(), "connection lost: cannot connect to api");
  Start("f4", "x", "k4", "c4");
  now_ += 6'000'000'000;
  chats_->Tick(now_);
  EXPECT_EQ(Ended("f4").error(), "no reply from the service in time");
  Start("f5", "x", "k5");
  port_.Last("/v1/conversation/create").done(401, R"({"code":4100,"msg":"bad token"})", "");
  EXPECT_EQ(Ended("f5").error(), "cannot create a conversation: 4100: bad token");
  EXPECT_EQ(chats_->running(), 0u);
}

// Coze's error texts are often Chinese: cut at a byte count inside a
// character, the TurnEnded failed to parse at every subscriber (proto3
// strings are UTF-8) and the turn ended for nobody.
TEST_F(TextChatsTest, ALongChineseErrorEndsTheChatWithAMessageThatParses) {
  std::string msg;
  for (int i = 0; i < 150; ++i) msg += "\xe9\x94\x99";  // 450 bytes; the cut at 300 falls on a boundary...
  msg = "x" + msg;                                      // ...unless shifted by one
  Start("z1", "x", "k1", "c1");
  port_.requests.back().chunk(
      Sse("conversation.chat.failed", {{"id", "ch"}, {"last_error", {{"code", 4013}, {"msg", msg}}}}));
  const v1::TurnEnded sent = Ended("z1");
  std::string wire;
  ASSERT_TRUE(sent.SerializeToString(&wire));
  v1::TurnEnded got;
  ASSERT_TRUE(got.ParseFromString(wire)) << "the TurnEnded would be dropped by every subscriber";
  EXPECT_EQ(got.error().rfind("4013: x\xe9\x94\x99", 0), 0u);
  Start("z2", "x", "k2", "c2");
  // An error event without a code: its data goes into the reason, cut at 200 bytes (here inside the character).
  port_.requests.back().chunk("event:error\ndata:{\"d\":\"" + std::string(193, 'y') + "\xe9\x94\x99\"}\n\n");
  ASSERT_TRUE(Ended("z2").SerializeToString(&wire));
  EXPECT_TRUE(got.ParseFromString(wire)) << Ended("z2").error();
}

TEST_F(TextChatsTest, BadRequestsAreRefusedWithAnEnd) {
  Start("e1", "", "k");
  EXPECT_EQ(Ended("e1").outcome(), v1::TurnEnded::FAILED);
  Start("e2", "x", "");
  EXPECT_EQ(Ended("e2").outcome(), v1::TurnEnded::FAILED);
  Start("a", "x", "k1", "c1");
  Start("b", "x", "k2", "c2");
  Start("c", "x", "k3", "c3");
  Start("d", "x", "k4", "c4");  // max_chats 3
  EXPECT_NE(Ended("d").error().find("too many"), std::string::npos);
  v1::TextChatRequest none;
  chats_->OnRequest(none, now_);  // no request id: counted, logged, dropped
  EXPECT_EQ(chats_->counters().refused, 4u);
  EXPECT_FALSE(port_.problems.empty());
}

}  // namespace
}  // namespace vb::session
