// Client message validation: every refusal is a 400 naming the problem.
#include "actors/gateway/protocol.h"

#include <gtest/gtest.h>

namespace vb::gateway {
namespace {

ProtocolError Parse(const std::string& text, ClientMessage* m = nullptr) {
  ClientMessage scratch;
  return ParseClientMessage(text, m ? m : &scratch);
}

TEST(Protocol, ParsesTheSpecMessages) {
  ClientMessage m;
  ASSERT_TRUE(Parse(R"({"type":"authorize","token":"t","id":"1","timestamp":1732723200.123})", &m).ok());
  EXPECT_EQ(m.type, ClientType::kAuthorize);
  EXPECT_EQ(m.token, "t");
  EXPECT_EQ(m.id, "1");
  ASSERT_TRUE(Parse(R"({"type":"chat_message","content":"Hello!","user_id":"user_001","agent_id":"agent_001",
                        "session_id":"s","images":[],"limit":5,"metadata":{"k":1}})",
                    &m)
                  .ok());
  EXPECT_EQ(m.type, ClientType::kChatMessage);
  EXPECT_EQ(m.content, "Hello!");
  EXPECT_EQ(m.limit, 5);
  ASSERT_TRUE(Parse(R"({"type":"interrupt_stream"})", &m).ok());
  EXPECT_TRUE(m.turn_id.empty());
  ASSERT_TRUE(Parse(R"({"type":"switch_avatar_config","file":"mao.yaml"})", &m).ok());
  EXPECT_EQ(m.file, "mao.yaml");
  for (const char* t : {"pong", "fetch_backgrounds", "fetch_avatar_configs", "dashboard_subscribe"})
    EXPECT_TRUE(Parse(std::string(R"({"type":")") + t + "\"}").ok()) << t;
}

TEST(Protocol, RefusesMalformedInput) {
  for (const char* bad : {"",
                          "{",
                          "null",
                          "[]",
                          "\"x\"",
                          R"({"no_type":1})",
                          R"({"type":5})",
                          R"({"type":"unknown_thing"})",
                          R"({"type":"authorize"})",
                          R"({"type":"authorize","token":1})",
                          R"({"type":"chat_message","content":"x","agent_id":"a"})",
                          R"({"type":"chat_message","content":"","agent_id":"a","user_id":"u"})",
                          R"({"type":"chat_message","content":"x","agent_id":"a","user_id":"u","limit":"10"})",
                          R"({"type":"chat_message","content":"x","agent_id":"a","user_id":"u","images":"a.png"})",
                          R"({"type":"chat_message","content":"x","agent_id":"a","user_id":"u","metadata":[]})",
                          R"({"type":"switch_avatar_config"})",
                          R"({"type":"push_to_talk","down":"yes"})",
                          R"({"type":"set_mode","mode":"loud"})",
                          R"({"type":"pong","id":{}})",
                          R"({"type":"pong","timestamp":"now"})"}) {
    ProtocolError e = Parse(bad);
    EXPECT_EQ(e.code, 400) << bad;
    EXPECT_FALSE(e.message.empty()) << bad;
  }
  EXPECT_NE(Parse(R"({"type":"chat_message","content":"x","agent_id":"a"})").message.find("user_id"),
            std::string::npos);
}

TEST(Protocol, ServerMessagesSerialiseEvenInvalidUtf8) {
  Json m = ServerMessage("stream_token");
  m["chunk"] = std::string("bad \xff byte");
  Frame f = Serialize(m);
  Json back = Json::parse(*f);
  EXPECT_EQ(back["type"], "stream_token");
  EXPECT_GT(back["timestamp"].get<double>(), 1.6e9);
}

TEST(Protocol, UuidsAreVersion4AndDistinct) {
  std::string a = NewUuid(), b = NewUuid();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace vb::gateway
