// ConnectionManager: vb-session's connect / retry / stall / bot-change policy,
// driven by a fake clock and a fake transport, with the real SessionCore
// (what the person notices: when the session reconnects, to which bot, with
// which conversation, and that a text said while offline still goes out).
#include "actors/session/connection_manager.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <tuple>

namespace vb::session {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

int64_t MonoNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The transport, the clock and the reports. The clock starts at the real
// monotonic time (SessionCore stamps some sends with it) and only moves when
// a test advances it.
struct FakeNet : ConnectionPort {
  int64_t now = MonoNow();
  struct Timer {
    int64_t due;
    std::function<void()> fn;
  };
  std::map<TimerId, Timer> timers;
  TimerId next_timer = 1;
  std::vector<std::string> opened;  // path and query of each OpenSocket
  std::vector<int64_t> opened_at;   // when
  uint64_t gen = 0;
  int closes = 0;
  struct Post {
    std::string path;
    Json body;
    HttpDone done;
  };
  std::vector<Post> posts;
  std::vector<std::tuple<int, std::string, bool>> errors;
  std::map<std::string, int> counts;
  std::map<std::string, std::string> saved;  // bot → persisted conversation
  std::vector<std::string> bots;             // BotChanged
  bool healthy = true;

  uint64_t OpenSocket(const std::string& path) override {
    opened.push_back(path);
    opened_at.push_back(now);
    return ++gen;
  }
  void CloseSocket() override { ++closes; }
  void PostJson(const std::string& path, std::string body, HttpDone done) override {
    posts.push_back({path, Json::parse(body), std::move(done)});
  }
  int64_t Now() override { return now; }
  TimerId After(std::chrono::nanoseconds delay, std::function<void()> fn) override {
    timers[next_timer] = {now + delay.count(), std::move(fn)};
    return next_timer++;
  }
  void CancelTimer(TimerId id) override { timers.erase(id); }
  void PublishError(int code, const std::string& message, bool fatal) override {
    errors.emplace_back(code, message, fatal);
  }
  void Count(const char* counter) override { ++counts[counter]; }
  void Healthy() override { healthy = true; }
  void Degraded(const std::string&) override { healthy = false; }
  std::string SavedConversation(const std::string& bot) override {
    auto it = saved.find(bot);
    return it == saved.end() ? "" : it->second;
  }
  void BotChanged(const std::string& bot) override { bots.push_back(bot); }

  // Moves the clock on by `d`, firing the timers that fall due, in order.
  void Advance(std::chrono::nanoseconds d) {
    const int64_t end = now + d.count();
    for (;;) {
      auto next = timers.end();
      for (auto it = timers.begin(); it != timers.end(); ++it)
        if (it->second.due <= end && (next == timers.end() || it->second.due < next->second.due)) next = it;
      if (next == timers.end()) break;
      now = std::max(now, next->second.due);
      auto fn = std::move(next->second.fn);
      timers.erase(next);
      fn();
    }
    now = end;
  }
  // Answers the last conversation/create.
  void AnswerCreate(int status, const std::string& body, const std::string& error = "") {
    ASSERT_FALSE(posts.empty());
    auto done = std::move(posts.back().done);
    ASSERT_TRUE(done) << "answered twice";
    done(status, body, error);
  }
};

// What the core says: frames sent on the WebSocket, events, acks.
struct CorePort : SessionPort {
  std::vector<Json> sent;
  std::vector<v1::SessionEvent> events;
  std::vector<std::pair<std::string, v1::CommandAck::Result>> acks;
  ConnectionManager* cm = nullptr;  // as the adapter: published events go by it (4002)
  bool SendText(std::string text, int64_t) override {
    sent.push_back(Json::parse(text));
    return true;
  }
  void PublishEvent(const v1::SessionEvent& e, const std::string&) override {
    events.push_back(e);
    if (cm) cm->OnPublished(e);
  }
  void PublishAudio(const v1::EncodedAudio&, const std::string&, int64_t) override {}
  void Ack(const std::string& id, v1::CommandAck::Result r, const std::string&) override { acks.emplace_back(id, r); }
  std::vector<Json> Sent(const std::string& type) const {
    std::vector<Json> r;
    for (const auto& j : sent)
      if (j["event_type"] == type) r.push_back(j);
    return r;
  }
};

std::string Ev(const std::string& type, Json data = nullptr) {
  Json j = {{"id", "e"}, {"event_type", type}};
  if (!data.is_null()) j["data"] = data;
  return j.dump();
}

std::string Created(const std::string& id) { return Json{{"code", 0}, {"msg", ""}, {"data", {{"id", id}}}}.dump(); }

v1::DialogCommand TextCmd(const std::string& text, const std::string& command_id) {
  v1::DialogCommand c;
  c.set_command_id(command_id);
  c.mutable_text_input()->set_text(text);
  c.mutable_text_input()->set_request_id("req-" + command_id);
  return c;
}

struct ConnTest : ::testing::Test {
  FakeNet net;
  CorePort port;
  std::unique_ptr<SessionCore> core;
  std::unique_ptr<ConnectionManager> cm;

  static ConnectionOptions Options() {
    ConnectionOptions o;
    o.bot_id = "bot-1";
    o.device_id = "42";
    o.ws_service = "ws.test";
    o.api_service = "api.test";
    o.reconnect_initial = milliseconds(1000);
    o.reconnect_max = milliseconds(32000);
    o.reconnect_jitter = 0;
    o.seed = 7;
    o.stall_timeout = seconds(20);
    o.stall_check = seconds(1);
    return o;
  }
  void Make(ConnectionOptions o = Options()) {
    CoreOptions co;
    co.mode = v1::MODE_PUSH_TO_TALK;
    co.service = "coze test";
    core = std::make_unique<SessionCore>(co, &port);
    std::string err;
    ASSERT_TRUE(core->Init(&err)) << err;
    cm = std::make_unique<ConnectionManager>(std::move(o), core.get(), &net);
    port.cm = cm.get();
  }
  // The server accepts the connection and applies our chat.update.
  void ServerAccepts() {
    cm->OnOpened(net.gen);
    cm->OnText(net.gen, Ev("chat.created"), net.now);
    cm->OnText(net.gen, Ev("chat.updated", Json::object()), net.now);
  }
  std::string LastChatUpdateConversation() const {
    auto u = port.Sent("chat.update");
    return u.empty() ? "(none)" : u.back()["data"]["chat_config"].value("conversation_id", "");
  }
};

TEST_F(ConnTest, AConfiguredConversationConnectsAtOnceWithoutREST) {
  auto o = Options();
  o.conversation_id = "conv-fixed";
  Make(o);
  cm->Start();
  EXPECT_TRUE(net.posts.empty());
  ASSERT_EQ(net.opened.size(), 1u);
  EXPECT_EQ(net.opened[0], "/v1/chat?bot_id=bot-1&device_id=42");
  ServerAccepts();
  EXPECT_EQ(LastChatUpdateConversation(), "conv-fixed");
  EXPECT_TRUE(core->connected());
}

TEST_F(ConnTest, APersistedConversationOfThisBotIsContinued) {
  net.saved["bot-1"] = "conv-saved";
  net.saved["bot-0"] = "conv-of-another-bot";
  Make();
  cm->Start();
  EXPECT_TRUE(net.posts.empty());
  ASSERT_EQ(net.opened.size(), 1u);
  ServerAccepts();
  EXPECT_EQ(LastChatUpdateConversation(), "conv-saved");
}

TEST_F(ConnTest, WithoutAPersistedConversationOneIsCreatedBeforeConnecting) {
  net.saved["bot-0"] = "conv-of-another-bot";
  Make();
  cm->Start();
  ASSERT_EQ(net.posts.size(), 1u);
  EXPECT_EQ(net.posts[0].path, "/v1/conversation/create");
  EXPECT_EQ(net.posts[0].body, (Json{{"bot_id", "bot-1"}}));
  EXPECT_TRUE(net.opened.empty()) << "no WebSocket before the conversation exists";
  net.AnswerCreate(200, Created("conv-new"));
  ASSERT_EQ(net.opened.size(), 1u);
  ServerAccepts();
  EXPECT_EQ(LastChatUpdateConversation(), "conv-new");
}

TEST_F(ConnTest, AFailingConnectRetriesAfterDoublingDelaysUpToTheMaxAndAnOpenResetsThem) {
  net.saved["bot-1"] = "conv-1";
  Make();
  cm->Start();
  ASSERT_EQ(net.opened.size(), 1u);
  const int64_t expected_ms[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000};
  for (int64_t ms : expected_ms) {
    const size_t opens = net.opened.size();
    cm->OnClosed(net.gen, "connection refused", 0);
    EXPECT_TRUE(cm->retry_pending());
    net.Advance(milliseconds(ms - 1));
    EXPECT_EQ(net.opened.size(), opens) << "reconnected before " << ms << " ms";
    net.Advance(milliseconds(1));
    ASSERT_EQ(net.opened.size(), opens + 1) << "no reconnect after " << ms << " ms";
  }
  EXPECT_EQ(net.counts["retries"], 7);
  EXPECT_EQ(net.counts["disconnects"], 7);
  EXPECT_FALSE(net.healthy);

  ServerAccepts();
  EXPECT_TRUE(net.healthy);
  const size_t opens = net.opened.size();
  cm->OnClosed(net.gen, "peer closed", 0);
  net.Advance(milliseconds(999));
  EXPECT_EQ(net.opened.size(), opens);
  net.Advance(milliseconds(1));
  EXPECT_EQ(net.opened.size(), opens + 1) << "the delay starts again at 1 s once a connection opened";
}

TEST_F(ConnTest, JitteredDelaysStayWithinTheirBand) {
  net.saved["bot-1"] = "conv-1";
  auto o = Options();
  o.reconnect_jitter = 0.25;
  Make(o);
  cm->Start();
  int64_t nominal = 1000;
  for (int i = 0; i < 6; ++i, nominal = std::min<int64_t>(nominal * 2, 32000)) {
    cm->OnClosed(net.gen, "refused", 0);
    const int64_t closed_at = net.now;
    const size_t opens = net.opened.size();
    while (net.opened.size() == opens) net.Advance(milliseconds(1));
    const int64_t waited_ms = (net.opened_at.back() - closed_at) / 1'000'000;
    EXPECT_GE(waited_ms, nominal * 3 / 4 - 1);
    EXPECT_LE(waited_ms, nominal * 5 / 4 + 1);
  }
}

TEST_F(ConnTest, AFailedConversationCreateIsRetriedAndAPersonIsToldWhenTheTokenIsRefused) {
  Make();
  cm->Start();
  net.AnswerCreate(500, "oops");
  ASSERT_EQ(net.errors.size(), 1u);
  EXPECT_EQ(std::get<0>(net.errors[0]), 500);
  EXPECT_FALSE(std::get<2>(net.errors[0])) << "a server error is not for a person to fix";
  EXPECT_FALSE(net.healthy);
  net.Advance(milliseconds(999));
  EXPECT_EQ(net.posts.size(), 1u);
  net.Advance(milliseconds(1));
  ASSERT_EQ(net.posts.size(), 2u) << "retried after 1 s";
  net.AnswerCreate(401, Json{{"code", 4100}, {"msg", "bad token"}}.dump());
  ASSERT_EQ(net.errors.size(), 2u);
  EXPECT_EQ(std::get<0>(net.errors[1]), 4100);
  EXPECT_TRUE(std::get<2>(net.errors[1])) << "a refused token is fatal: a person must act";
  EXPECT_NE(std::get<1>(net.errors[1]).find("bad token"), std::string::npos);
  net.Advance(milliseconds(2000));
  ASSERT_EQ(net.posts.size(), 3u) << "retried after 2 s";
  net.AnswerCreate(200, Created("conv-9"));
  EXPECT_TRUE(net.healthy);
  ASSERT_EQ(net.opened.size(), 1u);
  EXPECT_EQ(net.opened[0], "/v1/chat?bot_id=bot-1&device_id=42");
}

TEST_F(ConnTest, ARefusedCertificateIsSaidOnceThenEvery10sAndAgainAfterAConnectionOpened) {
  net.saved["bot-1"] = "conv-1";
  Make();
  cm->Start();
  const std::string tls = "TLS to ws.test:443: the server's certificate is signed by an unknown CA";
  auto tls_errors = [&] {
    int n = 0;
    for (const auto& [code, msg, fatal] : net.errors) n += code == ConnectionManager::kTlsErrorCode && fatal;
    return n;
  };
  cm->OnClosed(net.gen, tls, 0);
  EXPECT_EQ(tls_errors(), 1);
  net.Advance(seconds(1));
  cm->OnClosed(net.gen, tls, 0);
  net.Advance(seconds(2));
  cm->OnClosed(net.gen, tls, 0);
  EXPECT_EQ(tls_errors(), 1) << "not at every retry";
  net.Advance(seconds(8));  // 11 s after the first
  cm->OnClosed(net.gen, tls, 0);
  EXPECT_EQ(tls_errors(), 2) << "again after 10 s, for late joiners";
  net.Advance(seconds(10));
  ServerAccepts();
  cm->OnClosed(net.gen, tls, 0);
  EXPECT_EQ(tls_errors(), 3) << "a connection opened in between: it is news again";
  cm->OnClosed(net.gen, "handshake refused", 403);
  ASSERT_FALSE(net.errors.empty());
  EXPECT_EQ(std::get<0>(net.errors.back()), 403);
  EXPECT_TRUE(std::get<2>(net.errors.back()));
}

TEST_F(ConnTest, AStalledConnectionIsDroppedAndReopenedAndTheOwedTextGoesAgain) {
  net.saved["bot-1"] = "conv-1";
  Make();
  cm->Start();
  ServerAccepts();
  const uint64_t stuck = net.gen;
  // The core stamps the text it sends with the real clock: the fake one
  // catches up with it first, so the 20 s are counted from the send.
  net.now = std::max(net.now, MonoNow());
  core->OnCommandAt(TextCmd("what time is it", "c1"), net.now);
  ASSERT_EQ(port.Sent("conversation.message.create").size(), 1u);
  net.Advance(seconds(19));
  EXPECT_EQ(net.closes, 0) << "20 s of silence are allowed";
  EXPECT_EQ(net.counts["stalls"], 0);
  net.Advance(seconds(2));
  EXPECT_EQ(net.counts["stalls"], 1);
  EXPECT_EQ(net.closes, 1);
  EXPECT_FALSE(core->connected());
  EXPECT_EQ(net.opened.size(), 1u);
  net.Advance(seconds(1));
  ASSERT_EQ(net.opened.size(), 2u) << "reconnected 1 s after the stall";

  // The stuck connection's late reports change nothing.
  const size_t events = port.events.size();
  cm->OnText(stuck, Ev("conversation.chat.created", {{"id", "chat-old"}, {"conversation_id", "conv-1"}}), net.now);
  EXPECT_EQ(port.events.size(), events);
  cm->OnClosed(stuck, "closed late", 0);
  EXPECT_EQ(net.counts["retries"], 1);

  ServerAccepts();
  auto texts = port.Sent("conversation.message.create");
  ASSERT_EQ(texts.size(), 2u) << "the text the stuck server never answered is sent again";
  EXPECT_EQ(texts[1]["data"]["content"], "what time is it");
}

TEST_F(ConnTest, ABotChangeReconnectsToTheNewBotWithItsConversationAndKeepsTheQueuedText) {
  net.saved["bot-1"] = "conv-1";
  Make();
  cm->Start();
  ServerAccepts();
  cm->OnClosed(net.gen, "peer closed", 0);  // offline: a retry for bot-1 waits
  ASSERT_TRUE(cm->retry_pending());
  core->OnCommandAt(TextCmd("play some jazz", "c1"), net.now);
  ASSERT_FALSE(port.acks.empty());
  EXPECT_EQ(port.acks.back().second, v1::CommandAck::QUEUED);

  v1::DialogCommand change;
  change.mutable_session_config()->set_bot_id("bot-2");
  core->OnCommandAt(change, net.now);
  EXPECT_EQ(cm->bot_id(), "bot-2");
  EXPECT_EQ(net.bots, std::vector<std::string>{"bot-2"});
  EXPECT_FALSE(cm->retry_pending()) << "the old bot's retry is void";
  ASSERT_EQ(net.posts.size(), 1u) << "nothing persisted for bot-2: a conversation is created";
  EXPECT_EQ(net.posts[0].body, (Json{{"bot_id", "bot-2"}}));
  const size_t opens = net.opened.size();
  net.Advance(seconds(5));
  EXPECT_EQ(net.opened.size(), opens) << "no connection before bot-2's conversation exists";

  net.AnswerCreate(200, Created("conv-2"));
  ASSERT_EQ(net.opened.size(), opens + 1);
  EXPECT_EQ(net.opened.back(), "/v1/chat?bot_id=bot-2&device_id=42");
  ServerAccepts();
  EXPECT_EQ(LastChatUpdateConversation(), "conv-2");
  auto texts = port.Sent("conversation.message.create");
  ASSERT_EQ(texts.size(), 1u) << "the text queued before the change goes to the new bot";
  EXPECT_EQ(texts[0]["data"]["content"], "play some jazz");

  v1::DialogCommand same;
  same.mutable_session_config()->set_bot_id("bot-2");
  core->OnCommandAt(same, net.now);
  EXPECT_EQ(net.opened.size(), opens + 1) << "the same bot again: no reconnect";
}

TEST_F(ConnTest, ABotChangeWhileAConversationIsBeingCreatedIgnoresTheOldBotsAnswer) {
  Make();
  cm->Start();
  ASSERT_EQ(net.posts.size(), 1u);
  auto old_done = std::move(net.posts[0].done);
  v1::DialogCommand change;
  change.mutable_session_config()->set_bot_id("bot-2");
  core->OnCommandAt(change, net.now);
  ASSERT_EQ(net.posts.size(), 2u);
  EXPECT_EQ(net.posts[1].body, (Json{{"bot_id", "bot-2"}}));
  old_done(200, Created("conv-of-bot-1"), "");
  EXPECT_TRUE(net.opened.empty()) << "bot-1's conversation is not used for bot-2";
  net.AnswerCreate(200, Created("conv-2"));
  ASSERT_EQ(net.opened.size(), 1u);
  ServerAccepts();
  EXPECT_EQ(LastChatUpdateConversation(), "conv-2");
}

TEST_F(ConnTest, ShutdownDuringARetryOpensNothingMore) {
  net.saved["bot-1"] = "conv-1";
  Make();
  cm->Start();
  ServerAccepts();
  cm->OnClosed(net.gen, "peer closed", 0);
  ASSERT_TRUE(cm->retry_pending());
  cm->Stop();
  EXPECT_FALSE(cm->retry_pending());
  EXPECT_TRUE(net.timers.empty()) << "no timer of the manager is left";
  net.Advance(seconds(120));
  EXPECT_EQ(net.opened.size(), 1u);
  EXPECT_TRUE(net.posts.empty());
  cm->OnOpened(net.gen);
  cm->OnClosed(net.gen, "late", 0);
  EXPECT_FALSE(core->connected());
  EXPECT_EQ(net.counts["retries"], 1);
}

TEST_F(ConnTest, ShutdownWhileCreatingAConversationConnectsNothing) {
  Make();
  cm->Start();
  ASSERT_EQ(net.posts.size(), 1u);
  cm->Stop();
  net.AnswerCreate(200, Created("conv-late"));
  EXPECT_TRUE(net.opened.empty());
  net.Advance(seconds(60));
  EXPECT_TRUE(net.opened.empty());
  EXPECT_EQ(net.posts.size(), 1u);
}

TEST_F(ConnTest, AnUnknownConversationIsReplacedAtMostOnceIn10s) {
  Make();
  cm->Start();
  net.AnswerCreate(200, Created("conv-1"));
  ServerAccepts();
  const std::string unknown = Ev("error", {{"code", 4002}, {"msg", "conversation not found"}});
  cm->OnText(net.gen, unknown, net.now);
  ASSERT_EQ(net.posts.size(), 2u) << "a new conversation is created";
  net.AnswerCreate(200, Created("conv-2"));
  EXPECT_EQ(net.opened.size(), 1u) << "connected: the same WebSocket is reconfigured";
  EXPECT_EQ(LastChatUpdateConversation(), "conv-2");
  net.Advance(seconds(5));
  cm->OnText(net.gen, unknown, net.now);
  EXPECT_EQ(net.posts.size(), 2u) << "not twice within 10 s";
  net.Advance(seconds(6));
  cm->OnText(net.gen, unknown, net.now);
  EXPECT_EQ(net.posts.size(), 3u);
}

TEST_F(ConnTest, AConfiguredConversationIsNeverReplaced) {
  auto o = Options();
  o.conversation_id = "conv-fixed";
  Make(o);
  cm->Start();
  ServerAccepts();
  cm->OnText(net.gen, Ev("error", {{"code", 4002}, {"msg", "conversation not found"}}), net.now);
  EXPECT_TRUE(net.posts.empty());
}

}  // namespace
}  // namespace vb::session
