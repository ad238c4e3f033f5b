// DashboardFeed: mic level at a low rate, restarts, staleness.
#include "actors/gateway/dashboard_feed.h"

#include <gtest/gtest.h>

#include <cmath>

namespace vb::gateway {
namespace {

constexpr int64_t kMs = 1'000'000;

v1::AudioFrame Tone(int16_t amplitude) {
  v1::AudioFrame f;
  f.set_sample_rate(16000);
  f.set_channels(1);
  std::string pcm(640, '\0');
  for (int i = 0; i < 320; ++i) {
    int16_t s = (i % 2) ? amplitude : int16_t(-amplitude);
    std::memcpy(&pcm[i * 2], &s, 2);
  }
  f.set_pcm(pcm);
  return f;
}

TEST(DashboardFeed, MicLevelOncePerInterval) {
  DashboardFeed feed;
  int64_t now = 1000 * kMs;
  int messages = 0;
  Json last;
  for (int i = 0; i < 50; ++i) {  // one second of 20 ms frames
    if (auto m = feed.OnAudio(Tone(3277), now)) {
      ++messages;
      last = *m;
    }
    now += 20 * kMs;
  }
  EXPECT_GE(messages, 8);
  EXPECT_LE(messages, 10);
  EXPECT_NEAR(last["rms_db"].get<double>(), -20.0, 0.2);  // 3277/32768 = -20 dBFS
  EXPECT_NEAR(last["peak_db"].get<double>(), -20.0, 0.2);
  for (int i = 0; i < 10; ++i, now += 20 * kMs) feed.OnAudio(Tone(0), now);
  EXPECT_EQ(feed.Snapshot()["mic_level"]["rms_db"], -96.0);
}

TEST(DashboardFeed, CountsRestartsAndStaleActors) {
  DashboardFeed feed;
  v1::Heartbeat hb;
  hb.set_actor("session");
  hb.set_kind("session");
  hb.set_state(v1::Heartbeat::ACTIVE);
  hb.set_pid(100);
  hb.set_uptime_ms(5000);
  auto m = feed.OnHeartbeat(hb, 1000 * kMs);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["restarts"], 0);
  EXPECT_EQ((*m)["state"], "ACTIVE");
  hb.set_pid(200);
  hb.set_uptime_ms(100);
  m = feed.OnHeartbeat(hb, 2000 * kMs);
  EXPECT_EQ((*m)["restarts"], 1);
  EXPECT_TRUE(feed.CheckStale(3000 * kMs).empty());
  auto stale = feed.CheckStale(6000 * kMs);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0]["state"], "STALE");
  EXPECT_TRUE(feed.CheckStale(7000 * kMs).empty());  // reported once
  EXPECT_EQ(feed.Snapshot()["actors"].size(), 1u);
}

TEST(DashboardFeed, KeepsAnEventLogOfStalesAndRestarts) {
  DashboardFeed feed({.max_events = 3});
  v1::Heartbeat hb;
  hb.set_actor("afe");
  hb.set_kind("afe");
  hb.set_pid(100);
  hb.set_uptime_ms(5000);
  feed.OnHeartbeat(hb, 1000 * kMs);
  EXPECT_TRUE(feed.TakeEvents().empty());  // a first beat is no event
  feed.CheckStale(6000 * kMs);             // crashed: silent
  hb.set_pid(101);
  hb.set_uptime_ms(10);
  feed.OnHeartbeat(hb, 7000 * kMs);  // restarted
  auto live = feed.TakeEvents();
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0]["type"], "actor_event");
  EXPECT_EQ(live[0]["event"], "stale");
  EXPECT_EQ(live[0]["actor"], "afe");
  EXPECT_EQ(live[1]["event"], "restarted");
  EXPECT_NE(live[1]["detail"].get<std::string>().find("101"), std::string::npos);
  EXPECT_GT(live[1]["at_ms"].get<int64_t>(), 1'600'000'000'000);  // wall clock
  EXPECT_TRUE(feed.TakeEvents().empty());                         // each sent once
  // Kept for pages opened later, the last max_events only.
  feed.CheckStale(12000 * kMs);
  feed.OnHeartbeat(hb, 13000 * kMs);  // the same pid beats again
  Json events = feed.Snapshot()["events"];
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["event"], "restarted");
  EXPECT_EQ(events[1]["event"], "stale");
  EXPECT_EQ(events[2]["event"], "back");
}

TEST(DashboardFeed, DialogStateNames) {
  DashboardFeed feed;
  v1::DialogState s;
  s.set_state(v1::STATE_LISTENING);
  s.set_mode(v1::MODE_PUSH_TO_TALK);
  Json m = feed.OnDialogState(s);
  EXPECT_EQ(m["state"], "LISTENING");
  EXPECT_EQ(m["mode"], "PUSH_TO_TALK");
  EXPECT_EQ(feed.Snapshot()["dialog_state"]["state"], "LISTENING");
}

// Issue 12: a flood of invented actor names fills the table, but once they
// are stale a real actor that starts later still gets a row.
TEST(DashboardFeed, InventedActorNamesCannotLockRealOnesOut) {
  DashboardFeed feed;
  v1::Heartbeat hb;
  hb.set_state(v1::Heartbeat::ACTIVE);
  for (int i = 0; i < 100000; ++i) {
    hb.set_actor("fake-" + std::to_string(i));
    feed.OnHeartbeat(hb, 1000 * kMs);
  }
  EXPECT_EQ(feed.Snapshot()["actors"].size(), 64u);
  hb.set_actor("session");
  EXPECT_FALSE(feed.OnHeartbeat(hb, 2000 * kMs)) << "the fakes are not stale yet";
  EXPECT_TRUE(feed.OnHeartbeat(hb, 6000 * kMs));
  EXPECT_EQ(feed.Snapshot()["actors"].size(), 64u);
  EXPECT_EQ(feed.evicted(), 1u);
}

}  // namespace
}  // namespace vb::gateway
