// Server VAD: onset, prefix padding and silence duration counted in samples.
#include "tools/coze-sim/vad.h"

#include <gtest/gtest.h>

#include "tests/unit/coze_sim/test_util.h"

namespace vb::cozesim {
namespace {

TEST(Vad, StartsAndStopsWithPaddingAndSilence) {
  for (int silence_ms : {300, 500, 900}) {
    Vad vad(600, silence_ms);
    std::vector<VadEvent> ev;
    auto feed = [&](const std::vector<int16_t>& v) { vad.Feed(v.data(), v.size(), &ev); };
    feed(testing::Silence(16000, 1000));
    EXPECT_TRUE(ev.empty());
    feed(testing::Tone(16000, 700, 3000));
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, VadEvent::kStarted);
    feed(testing::Silence(16000, silence_ms - 50));
    EXPECT_EQ(ev.size(), 1u) << "a pause shorter than silence_duration_ms does not stop";
    feed(testing::Silence(16000, 100));
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[1].kind, VadEvent::kStopped);
    EXPECT_NEAR(double(ev[1].utterance.size()) / 16, 600 + 700 + silence_ms, 30) << silence_ms;
  }
}

TEST(Vad, IgnoresShortClicksAndQuietNoise) {
  Vad vad(300, 500);
  std::vector<VadEvent> ev;
  auto click = testing::Tone(16000, 20, 10000);
  auto noise = testing::Tone(16000, 2000, 30);
  vad.Feed(noise.data(), noise.size(), &ev);
  vad.Feed(click.data(), click.size(), &ev);
  vad.Feed(noise.data(), noise.size(), &ev);
  EXPECT_TRUE(ev.empty());
}

TEST(Vad, OddChunkSizes) {
  Vad vad(0, 200);
  std::vector<VadEvent> ev;
  auto all = testing::Silence(16000, 300);
  auto t = testing::Tone(16000, 500);
  all.insert(all.end(), t.begin(), t.end());
  auto s = testing::Silence(16000, 400);
  all.insert(all.end(), s.begin(), s.end());
  for (size_t i = 0; i < all.size(); i += 37) vad.Feed(all.data() + i, std::min<size_t>(37, all.size() - i), &ev);
  ASSERT_EQ(ev.size(), 2u);
}

}  // namespace
}  // namespace vb::cozesim
