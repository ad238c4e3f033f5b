// The recent-audio ring: indices survive wrap-around and requests for audio
// already overwritten are clipped, not garbage.
#include "actors/wakevad/pcm_history.h"

#include <gtest/gtest.h>

#include <numeric>

namespace vb::wakevad {
namespace {

int16_t At(const std::string& bytes, size_t i) {
  return int16_t(uint8_t(bytes[2 * i]) | uint8_t(bytes[2 * i + 1]) << 8);
}

TEST(PcmHistory, KeepsTheNewestSamplesByIndex) {
  PcmHistory h(100);
  h.Reset(1000);
  std::vector<int16_t> v(250);
  std::iota(v.begin(), v.end(), -100);
  h.Append(std::span<const int16_t>(v.data(), 70));
  h.Append(std::span<const int16_t>(v.data() + 70, 180));
  EXPECT_EQ(h.end_index(), 1250u);
  EXPECT_EQ(h.begin_index(), 1150u);
  std::string out;
  EXPECT_EQ(h.CopySince(1200, &out), 1200u);
  ASSERT_EQ(out.size(), 100u);
  EXPECT_EQ(At(out, 0), v[200]);
  EXPECT_EQ(At(out, 49), v[249]);
  // Older than held: clipped to the oldest kept sample.
  EXPECT_EQ(h.CopySince(0, &out), 1150u);
  EXPECT_EQ(out.size(), 200u);
  EXPECT_EQ(At(out, 0), v[150]);
}

TEST(PcmHistory, OversizedAppendKeepsItsTail) {
  PcmHistory h(10);
  h.Reset(0);
  std::vector<int16_t> v(25);
  std::iota(v.begin(), v.end(), 0);
  h.Append(v);
  EXPECT_EQ(h.end_index(), 25u);
  std::string out;
  EXPECT_EQ(h.CopySince(0, &out), 15u);
  EXPECT_EQ(At(out, 0), 15);
  EXPECT_EQ(At(out, 9), 24);
}

}  // namespace
}  // namespace vb::wakevad
