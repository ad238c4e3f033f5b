// AvatarLibrary: listings, persona parsing, and refusal of paths.
#include "actors/gateway/avatar_library.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace vb::gateway {
namespace {

class AvatarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vb-gw-avatars-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ + "/avatars");
    std::filesystem::create_directories(root_ + "/bg/sub");
    std::ofstream(root_ + "/bg/room.png") << "x";
    std::ofstream(root_ + "/bg/beach.jpg") << "x";
    std::ofstream(root_ + "/bg/.hidden") << "x";
    std::ofstream(root_ + "/avatars/mao.yaml") << R"(name: Mao
bot_id: "7400000000000000001"
voice: {voice_id: "voice-mao", speech_rate: 20}
persona_prompt: "You are Mao, a cheerful cat."
model_info:
  model_path: live2d/mao.model3.json
  expressions: [smile, sad]
  motions: [idle]
)";
    std::ofstream(root_ + "/avatars/plain.yml") << "name: Plain\n";
    std::ofstream(root_ + "/avatars/broken.yaml") << "name: [unclosed\n";
    std::ofstream(root_ + "/avatars/badrate.yaml") << "name: X\nvoice: {speech_rate: fast}\n";
    std::ofstream(root_ + "/avatars/notes.txt") << "name: Not an avatar\n";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(AvatarTest, ListsBackgroundsAndAvatars) {
  AvatarLibrary lib(root_ + "/avatars", root_ + "/bg");
  std::vector<std::string> bg;
  ASSERT_TRUE(lib.ListBackgrounds(&bg).ok());
  EXPECT_EQ(bg, (std::vector<std::string>{"beach.jpg", "room.png"}));
  std::vector<AvatarEntry> av;
  ASSERT_TRUE(lib.ListAvatars(&av).ok());
  ASSERT_EQ(av.size(), 2u);
  EXPECT_EQ(av[0].filename, "mao.yaml");
  EXPECT_EQ(av[0].name, "Mao");
  EXPECT_EQ(av[1].filename, "plain.yml");
}

TEST_F(AvatarTest, LoadsAPersona) {
  AvatarLibrary lib(root_ + "/avatars", "");
  AvatarConfig c;
  ASSERT_TRUE(lib.Load("mao.yaml", &c).ok());
  EXPECT_EQ(c.name, "Mao");
  EXPECT_EQ(c.bot_id, "7400000000000000001");
  EXPECT_EQ(c.voice_id, "voice-mao");
  ASSERT_TRUE(c.speech_rate.has_value());
  EXPECT_EQ(*c.speech_rate, 20);
  EXPECT_EQ(c.persona_prompt, "You are Mao, a cheerful cat.");
  EXPECT_EQ(c.model_path, "live2d/mao.model3.json");
  EXPECT_EQ(c.expressions, (std::vector<std::string>{"smile", "sad"}));
  EXPECT_EQ(c.conf_uid, "mao");
  std::vector<std::string> none;
  EXPECT_TRUE(lib.ListBackgrounds(&none).ok());
  EXPECT_TRUE(none.empty());
}

TEST_F(AvatarTest, RefusesPathsAndBrokenFiles) {
  AvatarLibrary lib(root_ + "/avatars", "");
  AvatarConfig c;
  for (const char* bad : {"../avatars/mao.yaml", "/etc/passwd", "missing.yaml", "notes.txt", ".yaml", ""})
    EXPECT_EQ(lib.Load(bad, &c).code(), Status::Code::kInvalid) << bad;
  EXPECT_EQ(lib.Load("broken.yaml", &c).code(), Status::Code::kConfig);
  EXPECT_EQ(lib.Load("badrate.yaml", &c).code(), Status::Code::kConfig);
}

}  // namespace
}  // namespace vb::gateway
