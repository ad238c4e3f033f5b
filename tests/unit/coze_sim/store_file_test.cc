// The simulator's state file: conversations, their messages and chats come
// back after a restart (same ids, same history); a chat that was running
// when the server died comes back failed, so it does not block new chats;
// a corrupt file is an error, a missing one an empty start.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "tools/coze-sim/store.h"

namespace vb::cozesim {
namespace {

class StoreFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vb-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state.json";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_, path_;
};

TEST_F(StoreFileTest, ConversationsSurviveARestart) {
  std::string id, chat_id, running_id;
  {
    Store s;
    std::string err;
    ASSERT_TRUE(s.Open(path_, &err)) << err;  // missing file: empty start
    EXPECT_EQ(s.size(), 0u);
    Conversation& c = s.CreateConversation("7000000000000000001");
    id = c.id;
    // Written at once: the id is handed out before any later flush.
    std::ifstream in(path_);
    ASSERT_TRUE(in.good());
    Message m;
    m.content = "what time is it";
    s.AddMessage(c, m);
    chat_id = s.CreateChat(c, "").id;
    s.FindChat(id, chat_id)->status = "completed";
    running_id = s.CreateChat(c, "").id;
    s.FindChat(id, running_id)->status = "in_progress";
    s.Flush(true);
  }  // the server dies
  Store s;
  std::string err;
  ASSERT_TRUE(s.Open(path_, &err)) << err;
  Conversation* c = s.FindConversation(id);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->bot_id, "7000000000000000001");
  ASSERT_EQ(c->messages.size(), 1u);
  EXPECT_EQ(c->messages[0].content, "what time is it");
  EXPECT_EQ(s.UserTexts(*c), std::vector<std::string>{"what time is it"});
  ASSERT_NE(s.FindChat(id, chat_id), nullptr);
  EXPECT_EQ(s.FindChat(id, chat_id)->status, "completed");
  ASSERT_NE(s.FindChat(id, running_id), nullptr);
  EXPECT_EQ(s.FindChat(id, running_id)->status, "failed");
  EXPECT_EQ(s.RunningChat(*c), nullptr);
}

TEST_F(StoreFileTest, ChangesAreFlushedAtABoundedRate) {
  Store s;
  std::string err;
  ASSERT_TRUE(s.Open(path_, &err)) << err;
  Conversation& c = s.CreateConversation("b");
  EXPECT_FALSE(s.dirty());
  s.AddMessage(c, Message{});
  EXPECT_TRUE(s.dirty());
  s.Flush(true);
  EXPECT_FALSE(s.dirty());
  EXPECT_EQ(s.save_errors(), 0u);
}

TEST_F(StoreFileTest, CorruptFileIsAnError) {
  std::ofstream(path_) << "{not json";
  Store s;
  std::string err;
  EXPECT_FALSE(s.Open(path_, &err));
  EXPECT_NE(err.find(path_), std::string::npos);
}

}  // namespace
}  // namespace vb::cozesim
