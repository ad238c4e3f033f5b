// Small runtime pieces: back-off arithmetic, histogram percentiles,
// sequence-gap accounting, topic table.
#include <gtest/gtest.h>

#include "bus/backoff.h"
#include "bus/seq_tracker.h"
#include "bus/stats.h"
#include "bus/topics.h"
#include "bus/wire.h"

namespace vb::bus {
namespace {

using Ms = std::chrono::milliseconds;

TEST(BackoffTest, DoublesToMaxAndResetsAfterHealthyMinute) {
  Backoff b(Ms(1000), Ms(32000), Ms(60000));
  std::vector<int64_t> got;
  for (int i = 0; i < 8; ++i) got.push_back(b.Failed(Ms(10)).count());
  EXPECT_EQ(got, (std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000}));
  EXPECT_EQ(b.Failed(Ms(59999)).count(), 32000);  // not quite a healthy minute
  EXPECT_EQ(b.Failed(Ms(60000)).count(), 1000);   // healthy for a minute: start over
  EXPECT_EQ(b.Failed(Ms(10)).count(), 2000);
}

TEST(BackoffTest, JitterStaysWithinBounds) {
  Backoff b(Ms(1000), Ms(32000), Ms(60000), 0.25);
  for (int i = 0; i < 50; ++i) {
    b.Reset();
    auto d = b.Failed(Ms(0)).count();
    EXPECT_GE(d, 750);
    EXPECT_LE(d, 1250);
  }
}

TEST(HistogramTest, PercentilesWithinOnePercent) {
  Histogram h;
  for (int i = 1; i <= 1000; ++i) h.Add(double(i));
  EXPECT_NEAR(h.Percentile(50), 500, 6);
  EXPECT_NEAR(h.Percentile(99), 990, 11);
  EXPECT_EQ(h.max(), 1000);
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0);
}

TEST(SeqTrackerTest, CountsGapsPerPublisherAndTopic) {
  SeqTracker t;
  EXPECT_EQ(t.Observe("a", "x/1", 5), 0u);  // first seen: losses before are not ours
  EXPECT_EQ(t.Observe("a", "x/1", 8), 2u);
  EXPECT_EQ(t.Observe("b", "x/1", 1), 0u);
  EXPECT_EQ(t.Observe("b", "x/1", 2), 0u);
  EXPECT_EQ(t.Observe("a", "y/1", 1), 0u);
  EXPECT_EQ(t.total_lost(), 2u);
  EXPECT_EQ(t.Rows().size(), 3u);
}

TEST(TopicsTest, TableIsSoundAndSplitWorks) {
  static_assert(detail::TopicTableIsSound());
  std::string_view base, dev;
  ASSERT_TRUE(SplitTopic("audio.mic/kitchen", &base, &dev));
  EXPECT_EQ(base, "audio.mic");
  EXPECT_EQ(dev, "kitchen");
  EXPECT_FALSE(SplitTopic("nodevice", &base, &dev));
  EXPECT_FALSE(SplitTopic("/x", &base, &dev));
}

// Issue 12: a spoofed seq far ahead is a restart, not billions of drops.
TEST(SeqTrackerTest, ImplausibleJumpIsARestartNotALoss) {
  SeqTracker t;
  t.Observe("a", "voice.vad/x", 1);
  t.Observe("a", "voice.vad/x", 5);  // 3 lost: a real gap
  EXPECT_EQ(t.Observe("a", "voice.vad/x", 999'999'999'999), 0u);
  EXPECT_EQ(t.Observe("a", "voice.vad/x", 1'000'000'000'001), 1u);  // counting resumes from there
  EXPECT_EQ(t.total_lost(), 4u);
  EXPECT_EQ(t.total_restarts(), 1u);
  EXPECT_EQ(t.Observe("a", "voice.vad/x", 1), 0u);  // back to 1: restarted for real
  EXPECT_EQ(t.total_restarts(), 2u);
}

// Issue 12: 100,000 fake publisher names cost a fixed amount, evictions are
// counted, and a live publisher seen often keeps its entry.
TEST(SeqTrackerTest, BoundedByCapacityLeastRecentlySeenEvicted) {
  SeqTracker t(100);
  uint64_t live_seq = 0;
  for (int i = 0; i < 100000; ++i) {
    t.Observe("fake-" + std::to_string(i), "actor.heartbeat/x", 1);
    if (i % 50 == 0) t.Observe("live", "actor.heartbeat/x", ++live_seq);
  }
  EXPECT_EQ(t.size(), 100u);
  EXPECT_EQ(t.evictions(), 100000u + 1u - 100u);
  bool live_kept = false;
  for (const auto& r : t.Rows())
    if (r.source == "live") live_kept = r.entry.received == live_seq && r.entry.lost == 0;
  EXPECT_TRUE(live_kept);
  EXPECT_EQ(t.Rows().front().source, "fake-99999");  // most recently seen first
}

}  // namespace
}  // namespace vb::bus
