// The persisted conversation (StateStore) and base-URL parsing (Url): what a
// restart reads back, what a corrupt file does, what config may name.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "actors/session/coze_client.h"
#include "actors/session/state_store.h"
#include "tests/support/process.h"

namespace vb::session {
namespace {

TEST(StateStore, SavesAndLoadsTheConversationCreatingDirectories) {
  testing::TempDir dir;
  StateStore store(dir.File("a/b/session-kitchen.json"));
  SessionState st;
  ASSERT_TRUE(store.Load(&st).ok());  // missing: empty, not an error
  EXPECT_TRUE(st.conversation_id.empty());
  ASSERT_TRUE(store.Save({"7355621520000001431", "bot-1", "api.coze.cn"}).ok());
  SessionState back;
  ASSERT_TRUE(StateStore(dir.File("a/b/session-kitchen.json")).Load(&back).ok());
  EXPECT_EQ(back.conversation_id, "7355621520000001431");
  EXPECT_EQ(back.bot_id, "bot-1");
  EXPECT_EQ(back.service, "api.coze.cn");
  // Replaced atomically: no temporary file is left behind.
  EXPECT_FALSE(std::ifstream(dir.File("a/b/session-kitchen.json.tmp")).good());
  ASSERT_TRUE(store.Save({"2", "bot-1", "api.coze.cn"}).ok());
  ASSERT_TRUE(store.Load(&back).ok());
  EXPECT_EQ(back.conversation_id, "2");
}

// The directory is made once, not at every save (twice a second while
// streaming); one removed under a running session is made again.
TEST(StateStore, MakesTheDirectoryAgainIfItVanished) {
  testing::TempDir dir;
  const std::string path = dir.File("a/b/session-kitchen.json");
  StateStore store(path);
  ASSERT_TRUE(store.Save({"1", "bot-1", "api.coze.cn"}).ok());
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(rmdir(dir.File("a/b").c_str()), 0);
  ASSERT_EQ(rmdir(dir.File("a").c_str()), 0);
  Status st = store.Save({"2", "bot-1", "api.coze.cn"});
  ASSERT_TRUE(st.ok()) << st.message();
  SessionState back;
  ASSERT_TRUE(StateStore(path).Load(&back).ok());
  EXPECT_EQ(back.conversation_id, "2");
  struct stat sb;
  ASSERT_EQ(stat(dir.File("a/b").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
}

TEST(StateStore, KeepsTheResumePoint) {
  testing::TempDir dir;
  StateStore store(dir.File("s.json"));
  SessionState st{"7355621520000001431", "bot-1", "api.coze.cn"};
  st.turn_id = "7355621520000009999";
  st.mode = "wake_word";
  st.listening = st.streaming = st.has_samples = true;
  st.resend_from = 123456789012ull;
  st.saved_at_ms = 1796313868123;
  ASSERT_TRUE(store.Save(st, /*durable=*/false).ok());
  SessionState back;
  ASSERT_TRUE(store.Load(&back).ok());
  EXPECT_EQ(back.turn_id, st.turn_id);
  EXPECT_EQ(back.mode, "wake_word");
  EXPECT_TRUE(back.listening && back.streaming && back.has_samples);
  EXPECT_EQ(back.resend_from, st.resend_from);
  EXPECT_EQ(back.saved_at_ms, st.saved_at_ms);
}

// Issue 16: the device streamed when the point was written (resend_from is
// in its numbering) comes back; a file written before the field existed
// loads with "" (the session's own device) and the rest of its point.
TEST(StateStore, KeepsTheDeviceOfTheResumePointAndReadsOldFilesWithout) {
  testing::TempDir dir;
  StateStore store(dir.File("s.json"));
  SessionState st{"c", "bot-1", "api.coze.cn"};
  st.device = "kitchen";
  st.streaming = st.has_samples = true;
  st.resend_from = 9600000;
  ASSERT_TRUE(store.Save(st, /*durable=*/false).ok());
  SessionState back;
  ASSERT_TRUE(store.Load(&back).ok());
  EXPECT_EQ(back.device, "kitchen");
  EXPECT_EQ(back.resend_from, 9600000u);
  dir.Write("old.json", R"({"conversation_id": "c", "bot_id": "bot-1", "service": "api.coze.cn", "turn_id": "",
    "mode": "continuous", "listening": false, "streaming": true, "has_samples": true, "resend_from": 48000,
    "saved_at_ms": 1796313868123, "texts": []})");
  ASSERT_TRUE(StateStore(dir.File("old.json")).Load(&back).ok());
  EXPECT_EQ(back.device, "");
  EXPECT_TRUE(back.streaming && back.has_samples);
  EXPECT_EQ(back.resend_from, 48000u);
  EXPECT_EQ(back.saved_at_ms, 1796313868123);
}

// Texts accepted and not yet answered survive the process (issue 12); a
// text that is not valid UTF-8 is stored mended, never a crash.
TEST(StateStore, KeepsTheTextsNotYetAnswered) {
  testing::TempDir dir;
  StateStore store(dir.File("s.json"));
  SessionState st{"c", "bot-1", "api.coze.cn"};
  st.texts.push_back({"what time is it", "vb-123", "cmd-1", 1796313868000});
  st.texts.push_back({std::string("bad \xff utf8"), "r2", "", 1796313869000});
  ASSERT_TRUE(store.Save(st, /*durable=*/false).ok());
  SessionState back;
  ASSERT_TRUE(store.Load(&back).ok());
  ASSERT_EQ(back.texts.size(), 2u);
  EXPECT_EQ(back.texts[0], st.texts[0]);
  EXPECT_EQ(back.texts[1].request_id, "r2");
  EXPECT_NE(back.texts[1].text.find("utf8"), std::string::npos);
  EXPECT_EQ(back.texts[1].queued_at_ms, 1796313869000);
}

TEST(StateStore, CorruptFileIsAnErrorNotACrash) {
  testing::TempDir dir;
  dir.Write("s.json", "{\"conversation_id\": 12, trunc");
  SessionState st;
  EXPECT_FALSE(StateStore(dir.File("s.json")).Load(&st).ok());
  dir.Write("t.json", "{\"conversation_id\": 12}");
  ASSERT_TRUE(StateStore(dir.File("t.json")).Load(&st).ok());
  EXPECT_TRUE(st.conversation_id.empty());  // wrong type: ignored
}

TEST(Url, ParsesTheBasesConfigMayName) {
  Url u;
  ASSERT_TRUE(Url::Parse("wss://ws.coze.cn", &u));
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "ws.coze.cn");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.path, "");
  EXPECT_EQ(u.Display(), "ws.coze.cn");
  ASSERT_TRUE(Url::Parse("http://127.0.0.1:8080/prefix/", &u));
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.path, "/prefix");
  EXPECT_EQ(u.Display(), "127.0.0.1:8080/prefix");
  // Credentials or queries in a base URL would end up in logs: refused.
  EXPECT_FALSE(Url::Parse("wss://user:secret@ws.coze.cn", &u));
  EXPECT_FALSE(Url::Parse("wss://ws.coze.cn/v1?authorization=Bearer%20x", &u));
  EXPECT_FALSE(Url::Parse("ftp://x", &u));
  EXPECT_FALSE(Url::Parse("ws://host:99999", &u));
  EXPECT_FALSE(Url::Parse("ws://:80", &u));
}

}  // namespace
}  // namespace vb::session
