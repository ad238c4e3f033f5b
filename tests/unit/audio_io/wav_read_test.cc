// ReadWav on damaged files (regressions found by tests/fuzz/wav_reader_fuzz).
#include "actors/common/wav.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <string>

namespace vb::audio {
namespace {

std::string WriteTemp(const std::string& bytes) {
  char tmpl[] = "/tmp/vb_wav_read_XXXXXX";
  int fd = mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  FILE* f = fdopen(fd, "wb");
  fwrite(bytes.data(), 1, bytes.size(), f);
  fclose(f);
  return tmpl;
}

std::string Le32(uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; }

// Issue 18 (fuzzing): a chunk whose size is 0xFFFFFFF8 made the chunk walk
// add 8 + size in 32 bits, i.e. 0, so ReadWav looped forever on the file —
// a capture actor pointed at a damaged WAV hung at start.
TEST(WavRead, Issue18_ChunkSizeNear4GiBIsAnErrorNotAHang) {
  std::string fmt = std::string("fmt ") + Le32(16) +
                    std::string("\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00", 16);
  std::string junk = std::string("junk") + Le32(0xFFFFFFF8u) + "abcd";
  std::string data = std::string("data") + Le32(4) + std::string("\x01\x00\x02\x00", 4);
  std::string body = "WAVE" + fmt + junk + data;
  std::string path = WriteTemp("RIFF" + Le32(uint32_t(body.size())) + body);
  PcmBuffer pcm;
  Status st = ReadWav(path, &pcm);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no fmt or data chunk"), std::string::npos) << st.message();
  remove(path.c_str());
}

TEST(WavRead, ChunksBeforeDataAreSkipped) {
  std::string fmt = std::string("fmt ") + Le32(16) +
                    std::string("\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00", 16);
  std::string list = std::string("LIST") + Le32(5) + "INFOx" + std::string(1, '\0');  // odd size: padded
  std::string data = std::string("data") + Le32(4) + std::string("\x01\x00\x02\x00", 4);
  std::string body = "WAVE" + fmt + list + data;
  std::string path = WriteTemp("RIFF" + Le32(uint32_t(body.size())) + body);
  PcmBuffer pcm;
  ASSERT_TRUE(ReadWav(path, &pcm).ok());
  EXPECT_EQ(pcm.sample_rate, 16000u);
  ASSERT_EQ(pcm.samples.size(), 2u);
  EXPECT_EQ(pcm.samples[0], 1);
  EXPECT_EQ(pcm.samples[1], 2);
  remove(path.c_str());
}

}  // namespace
}  // namespace vb::audio
