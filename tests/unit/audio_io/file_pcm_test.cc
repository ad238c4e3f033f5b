// WAV file source (looping, end), silence source and WAV sink.
#include "actors/common/file_pcm.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace vb::audio {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/vb_file_pcm_XXXXXX";
  return mkdtemp(tmpl);
}

TEST(FilePcm, WavSourceReadsLoopsAndEnds) {
  std::string dir = TempDir();
  PcmBuffer pcm;
  pcm.sample_rate = 8000;
  pcm.channels = 2;
  for (int i = 0; i < 100; ++i) pcm.samples.insert(pcm.samples.end(), {int16_t(i), int16_t(-i)});
  ASSERT_TRUE(WriteWav(dir + "/a.wav", pcm).ok());

  WavFileSource once(dir + "/a.wav", false);
  ASSERT_TRUE(once.Open().ok());
  EXPECT_EQ(once.format().sample_rate, 8000u);
  EXPECT_EQ(once.format().channels, 2u);
  std::vector<int16_t> buf(2 * 64);
  size_t got = 0;
  ASSERT_TRUE(once.Read(buf.data(), 64, &got, nullptr).ok());
  EXPECT_EQ(got, 64u);
  EXPECT_EQ(buf[2 * 63 + 1], -63);
  EXPECT_FALSE(once.at_end());
  ASSERT_TRUE(once.Read(buf.data(), 64, &got, nullptr).ok());
  EXPECT_EQ(got, 36u);
  EXPECT_TRUE(once.at_end());

  WavFileSource looped(dir + "/a.wav", true);
  ASSERT_TRUE(looped.Open().ok());
  std::vector<int16_t> big(2 * 250);
  ASSERT_TRUE(looped.Read(big.data(), 250, &got, nullptr).ok());
  EXPECT_EQ(got, 250u);
  EXPECT_EQ(big[2 * 230], 30);  // third pass, sample 30
  EXPECT_EQ(looped.loops(), 2u);
  EXPECT_FALSE(looped.at_end());

  WavFileSource missing(dir + "/none.wav", false);
  EXPECT_FALSE(missing.Open().ok());
}

TEST(FilePcm, WavSinkWritesAReadableFileAsItGoes) {
  std::string dir = TempDir();
  WavFileSink sink(dir + "/out.wav", {16000, 1}, 160);
  ASSERT_TRUE(sink.Open().ok());
  std::vector<int16_t> v(320, 1234);
  size_t written = 0;
  ASSERT_TRUE(sink.Write(v.data(), 320, &written, nullptr).ok());
  EXPECT_EQ(written, 320u);
  // Readable before Close (header patched on flush).
  PcmBuffer back;
  ASSERT_TRUE(ReadWav(dir + "/out.wav", &back).ok());
  EXPECT_EQ(back.frames(), 320u);
  sink.Close();
  ASSERT_TRUE(ReadWav(dir + "/out.wav", &back).ok());
  EXPECT_EQ(back.samples[100], 1234);
}

TEST(FilePcm, SilenceIsZeros) {
  SilenceSource s({16000, 2});
  ASSERT_TRUE(s.Open().ok());
  std::vector<int16_t> buf(20, 5);
  size_t got = 0;
  ASSERT_TRUE(s.Read(buf.data(), 10, &got, nullptr).ok());
  EXPECT_EQ(got, 10u);
  for (auto v : buf) EXPECT_EQ(v, 0);
}

}  // namespace
}  // namespace vb::audio
