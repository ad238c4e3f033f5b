// TokenSet: loading from a list and a file; exact matches only.
#include "actors/gateway/token_auth.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

namespace vb::gateway {
namespace {

TEST(TokenSet, ChecksExactTokensOnly) {
  TokenSet t;
  EXPECT_FALSE(t.Check("anything"));
  t.AddList(" alpha , beta,,");
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.Check("alpha"));
  EXPECT_TRUE(t.Check("beta"));
  for (const char* bad : {"", "alph", "alphaa", "Alpha", "beta ", "alphabeta", "a"}) EXPECT_FALSE(t.Check(bad)) << bad;
}

TEST(TokenSet, FileAndGeneratedTokens) {
  char dir[] = "/tmp/vb-gw-tokens-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/tokens";
  std::ofstream(path) << "# comment\n  file-token  \n\n";
  TokenSet t;
  ASSERT_TRUE(t.AddFile(path).ok());
  EXPECT_TRUE(t.Check("file-token"));
  EXPECT_FALSE(t.AddFile(std::string(dir) + "/missing").ok());
  std::string gen = std::string(dir) + "/generated";
  ASSERT_TRUE(t.Generate(gen).ok());
  struct stat st;
  ASSERT_EQ(stat(gen.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  TokenSet reread;
  ASSERT_TRUE(reread.AddFile(gen).ok());
  ASSERT_EQ(reread.size(), 1u);
  EXPECT_EQ(t.size(), 2u);
  unlink(path.c_str());
  unlink(gen.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace vb::gateway
