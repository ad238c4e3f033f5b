// BackfillRing: what a restarted session gets back — the audio from the
// sample it asks for, trimmed at both ends, merged into few chunks, bounded
// by the ring's capacity; a stream that restarts (index going back) empties it.
#include "actors/wakevad/backfill_ring.h"

#include <gtest/gtest.h>

#include <vector>

namespace vb::wakevad {
namespace {

BackfillRing::Frame MakeFrame(uint64_t index, size_t samples) {
  BackfillRing::Frame f;
  f.sample_index = index;
  f.sample_rate = 16000;
  f.channels = 1;
  for (size_t i = 0; i < samples; ++i) {
    const int16_t v = int16_t((index + i) & 0x7fff);  // the sample's own index: checks alignment
    f.pcm.push_back(char(v & 0xff));
    f.pcm.push_back(char(v >> 8));
  }
  return f;
}

int16_t SampleAt(const BackfillRing::Frame& f, size_t i) {
  return int16_t(uint16_t(uint8_t(f.pcm[2 * i])) | uint16_t(uint8_t(f.pcm[2 * i + 1])) << 8);
}

TEST(BackfillRing, AnswersFromTheSampleAskedInFewAlignedChunks) {
  BackfillRing ring(16000 * 10);
  for (uint64_t i = 0; i < 150; ++i) ring.Append(MakeFrame(1000 + i * 320, 320));  // 3 s of 20 ms frames
  std::vector<BackfillRing::Frame> got;
  const uint64_t from = 1000 + 50 * 320 + 17;  // mid-frame
  uint64_t end = ring.Since(from, 0, 16000, [&](const auto& f) { got.push_back(f); });
  EXPECT_EQ(end, 1000 + 150 * 320);
  // 31 983 samples in chunks of whole frames, at most 1 s each, contiguous.
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sample_index, from);
  EXPECT_LE(got[0].samples(), 16000u);
  EXPECT_EQ(got[1].sample_index, got[0].end());
  EXPECT_EQ(got[1].end(), end);
  for (const auto& f : got)
    for (size_t i = 0; i < f.samples(); i += 97) EXPECT_EQ(SampleAt(f, i), int16_t((f.sample_index + i) & 0x7fff));
}

TEST(BackfillRing, MaxSamplesAndCapacityBoundTheAnswer) {
  BackfillRing ring(3200);  // 200 ms
  for (uint64_t i = 0; i < 50; ++i) ring.Append(MakeFrame(i * 320, 320));
  EXPECT_EQ(ring.held_samples(), 3200u);
  EXPECT_EQ(ring.oldest(), 40u * 320);
  std::vector<BackfillRing::Frame> got;
  // Older than the ring: it answers from what it still holds.
  uint64_t end = ring.Since(0, 1000, 16000, [&](const auto& f) { got.push_back(f); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sample_index, 40u * 320);
  EXPECT_EQ(got[0].samples(), 1000u);
  EXPECT_EQ(end, 40u * 320 + 1000);
  // Newer than anything held: nothing, and the end is where it asked.
  got.clear();
  EXPECT_EQ(ring.Since(100000, 0, 16000, [&](const auto& f) { got.push_back(f); }), 100000u);
  EXPECT_TRUE(got.empty());
}

TEST(BackfillRing, GapsSplitChunksAndARestartedStreamEmptiesTheRing) {
  BackfillRing ring(16000);
  ring.Append(MakeFrame(0, 320));
  ring.Append(MakeFrame(640, 320));  // 320 samples lost upstream
  std::vector<BackfillRing::Frame> got;
  ring.Since(0, 0, 16000, [&](const auto& f) { got.push_back(f); });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].sample_index, 640u);
  ring.Append(MakeFrame(0, 320));  // vb-afe restarted
  EXPECT_EQ(ring.resets(), 1u);
  EXPECT_EQ(ring.held_samples(), 320u);
}

}  // namespace
}  // namespace vb::wakevad
