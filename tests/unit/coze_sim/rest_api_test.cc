// REST API: the {code,msg,data} envelope, error codes of §7, message paging,
// SSE bodies, tool outputs, and the /_sim/faults control endpoint.
#include "tools/coze-sim/rest_api.h"

#include <gtest/gtest.h>

#include "tools/coze-sim/ids.h"

namespace vb::cozesim {
namespace {

class RestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = Agent::BuiltIn();
    access_.tokens = {"test-token"};
    access_.bots = {"7000000000000000001"};
    api_ = std::make_unique<RestApi>(&store_, agent_.get(), &faults_, &access_);
  }
  Json Call(const std::string& method, const std::string& path, const std::string& query = "",
            const Json& body = nullptr, int* status = nullptr, std::string auth = "Bearer test-token") {
    HttpRequest r{method, path, query, body.is_null() ? "" : body.dump(), auth};
    last_ = api_->Handle(r);
    if (status) *status = last_.status;
    if (last_.content_type == "text/event-stream") return Json(last_.body);
    return Json::parse(last_.body);
  }
  // Parses an SSE body into (event, data) pairs.
  std::vector<std::pair<std::string, Json>> Events(const std::string& sse) {
    std::vector<std::pair<std::string, Json>> out;
    size_t pos = 0;
    while ((pos = sse.find("event:", pos)) != std::string::npos) {
      size_t nl = sse.find('\n', pos);
      std::string ev = sse.substr(pos + 6, nl - pos - 6);
      size_t dpos = sse.find("data:", nl);
      size_t end = sse.find("\n\n", dpos);
      out.emplace_back(ev, Json::parse(sse.substr(dpos + 5, end - dpos - 5)));
      pos = end;
    }
    return out;
  }
  Json Chat(const std::string& text, bool stream, const std::string& conv = "") {
    Json body = {{"bot_id", "7000000000000000001"},
                 {"user_id", "u"},
                 {"stream", stream},
                 {"additional_messages", {{{"role", "user"}, {"content", text}, {"content_type", "text"}}}}};
    return Call("POST", "/v3/chat", conv.empty() ? "" : "conversation_id=" + conv, body);
  }

  Store store_;
  std::unique_ptr<Agent> agent_;
  Faults faults_;
  AccessPolicy access_;
  std::unique_ptr<RestApi> api_;
  HttpResponse last_;
};

TEST_F(RestTest, AuthAndEnvelope) {
  int status = 0;
  Json j = Call("POST", "/v1/conversation/create", "", Json::object(), &status, "Bearer wrong");
  EXPECT_EQ(status, 401);
  EXPECT_EQ(j["code"], 4100);
  j = Call("POST", "/v1/conversation/create", "", Json::object(), &status, "");
  EXPECT_EQ(j["code"], 4100);
  j = Call("POST", "/v1/conversation/create", "", {{"bot_id", "7000000000000000001"}}, &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(j["code"], 0);
  EXPECT_EQ(j["msg"], "");
  EXPECT_EQ(j["data"]["id"].get<std::string>().size(), 19u);
  EXPECT_TRUE(j["detail"]["logid"].is_string());
  EXPECT_EQ(Call("POST", "/v1/conversation/create", "", {{"bot_id", "1"}})["code"], 4006);
  EXPECT_EQ(Call("GET", "/v1/conversation/retrieve", "conversation_id=42")["code"], 4002);
  EXPECT_EQ(Call("GET", "/nope", "", nullptr, &status)["code"], 4200);
  EXPECT_EQ(status, 404);
  HttpRequest bad{"POST", "/v1/conversation/create", "", "{nope", "Bearer test-token"};
  EXPECT_EQ(Json::parse(api_->Handle(bad).body)["code"], 4000);
}

TEST_F(RestTest, MessagesCreateListAndPaging) {
  std::string cid = Call("POST", "/v1/conversation/create", "", Json::object())["data"]["id"];
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(Call("POST", "/v1/conversation/message/create", "conversation_id=" + cid,
                   {{"role", "user"}, {"content", "m" + std::to_string(i)}, {"content_type", "text"}})["code"],
              0);
  EXPECT_EQ(Call("POST", "/v1/conversation/message/create", "conversation_id=" + cid, {{"role", "user"}})["code"],
            4000);
  Json page = Call("POST", "/v1/conversation/message/list", "conversation_id=" + cid, {{"order", "asc"}, {"limit", 2}});
  ASSERT_EQ(page["code"], 0);
  ASSERT_EQ(page["data"].size(), 2u);
  EXPECT_EQ(page["data"][0]["content"], "m0");
  EXPECT_TRUE(page["has_more"].get<bool>());
  Json next = Call("POST", "/v1/conversation/message/list", "conversation_id=" + cid,
                   {{"order", "asc"}, {"limit", 2}, {"before_id", page["last_id"]}});
  EXPECT_EQ(next["data"][0]["content"], "m2");
  Json desc = Call("POST", "/v1/conversation/message/list", "conversation_id=" + cid, Json::object());
  EXPECT_EQ(desc["data"][0]["content"], "m4");
  EXPECT_FALSE(desc["has_more"].get<bool>());
  Json cleared = Call("POST", "/v1/conversations/" + cid + "/clear");
  EXPECT_EQ(cleared["data"]["conversation_id"], cid);
  EXPECT_NE(cleared["data"]["id"], cid);
  EXPECT_EQ(Call("GET", "/v1/conversation/retrieve", "conversation_id=" + cid)["data"]["last_section_id"],
            cleared["data"]["id"]);
}

TEST_F(RestTest, StreamedChatEndsWithDone) {
  Json sse = Chat("hello", true);
  auto ev = Events(sse.get<std::string>());
  ASSERT_GE(ev.size(), 6u);
  EXPECT_EQ(ev.front().first, "conversation.chat.created");
  EXPECT_EQ(ev.front().second["status"], "created");
  EXPECT_EQ(ev[1].first, "conversation.chat.in_progress");
  EXPECT_EQ(ev.back().first, "done");
  EXPECT_EQ(ev.back().second, "[DONE]");
  EXPECT_EQ(ev[ev.size() - 2].first, "conversation.chat.completed");
  std::string text;
  for (auto& [e, d] : ev)
    if (e == "conversation.message.delta") text += d["content"].get<std::string>();
  EXPECT_EQ(text.rfind("Hello!", 0), 0u);
}

TEST_F(RestTest, NonStreamedChatRetrieveAndMessages) {
  Json j = Chat("what time is it", false);
  ASSERT_EQ(j["code"], 0);
  EXPECT_EQ(j["data"]["status"], "in_progress");
  std::string q = "conversation_id=" + j["data"]["conversation_id"].get<std::string>() +
                  "&chat_id=" + j["data"]["id"].get<std::string>();
  Json r = Call("GET", "/v3/chat/retrieve", q);
  EXPECT_EQ(r["data"]["status"], "completed");
  Json m = Call("GET", "/v3/chat/message/list", q);
  ASSERT_EQ(m["code"], 0);
  bool answer = false;
  for (auto& msg : m["data"])
    answer = answer || (msg["type"] == "answer" && msg["content"].get<std::string>().rfind("It is", 0) == 0);
  EXPECT_TRUE(answer);
  EXPECT_EQ(Call("POST", "/v3/chat/cancel", "",
                 {{"conversation_id", j["data"]["conversation_id"]}, {"chat_id", j["data"]["id"]}})["code"],
            4104);
  Json body = {{"bot_id", "7000000000000000001"}, {"stream", false}, {"auto_save_history", false}};
  EXPECT_EQ(Call("POST", "/v3/chat", "", body)["code"], 4007);
}

TEST_F(RestTest, ToolOutputsResumeAndRunningChatBlocks) {
  Json sse = Chat("what is the weather in berlin", true);
  auto ev = Events(sse.get<std::string>());
  Json ra;
  for (auto& [e, d] : ev)
    if (e == "conversation.chat.requires_action") ra = d;
  ASSERT_FALSE(ra.is_null());
  std::string cid = ra["conversation_id"], chat = ra["id"];
  std::string call = ra["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"];
  EXPECT_TRUE(Chat("hello", true, cid).is_string()) << "requires_action does not block new chats (SSE, not an error)";
  Json out = Call("POST", "/v3/chat/submit_tool_outputs", "conversation_id=" + cid + "&chat_id=" + chat,
                  {{"stream", true}, {"tool_outputs", {{{"tool_call_id", call}, {"output", "cloudy"}}}}});
  auto ev2 = Events(out.get<std::string>());
  std::string text;
  for (auto& [e, d] : ev2)
    if (e == "conversation.message.delta") text += d["content"].get<std::string>();
  EXPECT_EQ(text, "The weather in berlin: cloudy.");
  EXPECT_EQ(ev2.back().first, "done");
  Json again = Call("POST", "/v3/chat/submit_tool_outputs", "conversation_id=" + cid + "&chat_id=" + chat,
                    {{"tool_outputs", {{{"tool_call_id", call}, {"output", "cloudy"}}}}});
  EXPECT_EQ(again["code"], 4000);
}

TEST_F(RestTest, CancelWhileRequiringAction) {
  Json sse = Chat("what is the weather in rome", true);
  Json ra;
  for (auto& [e, d] : Events(sse.get<std::string>()))
    if (e == "conversation.chat.requires_action") ra = d;
  Json c = Call("POST", "/v3/chat/cancel", "", {{"conversation_id", ra["conversation_id"]}, {"chat_id", ra["id"]}});
  EXPECT_EQ(c["code"], 0);
  EXPECT_EQ(c["data"]["status"], "canceled");
}

TEST_F(RestTest, FaultsEndpointAndInjectedCodes) {
  HttpRequest set{"POST", "/_sim/faults", "", R"({"error_code":4008})", ""};
  EXPECT_EQ(api_->Handle(set).status, 200);
  EXPECT_EQ(Call("POST", "/v1/conversation/create", "", Json::object())["code"], 4008);
  HttpRequest bad{"POST", "/_sim/faults", "", R"({"explode":1})", ""};
  EXPECT_EQ(api_->Handle(bad).status, 400);
  HttpRequest reset{"POST", "/_sim/faults", "", R"({"reset":true})", ""};
  EXPECT_EQ(Json::parse(api_->Handle(reset).body)["error_code"], 0);
  EXPECT_EQ(Call("POST", "/v1/conversation/create", "", Json::object())["code"], 0);
}

}  // namespace
}  // namespace vb::cozesim
