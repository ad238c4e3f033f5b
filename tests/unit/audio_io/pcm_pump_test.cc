// PcmPump over the fault-injecting fakes, on a hand-driven clock: a device
// that vanishes mid-stream is reported once, retried with back-off and used
// again when it returns; short reads and xruns keep the stream; a stall trips
// the watchdog; a lost sink keeps rendering on time into nothing.
#include "actors/common/pcm_pump.h"

#include <gtest/gtest.h>

#include "actors/common/fault_pcm.h"
#include "tests/unit/audio_io/manual_loop.h"

namespace vb::audio {
namespace {

constexpr int64_t kMs = 1'000'000;

struct SourceRig {
  testing::ManualLoop loop;
  FaultSource* dev = nullptr;
  std::unique_ptr<PcmPump> pump;
  std::vector<int16_t> got;  // every sample delivered
  int lost = 0, back = 0, discontinuities = 0;
  std::string why;
  int64_t outage_ms = -1;
  bool gap_free = true;  // consecutive ramp values between discontinuities
  bool expect_any = true;

  SourceRig() {
    auto src = std::make_unique<FaultSource>(PcmFormat{16000, 1}, [this] { return loop.NowNs(); });
    dev = src.get();
    PumpConfig pc;
    pc.what = "test mic";
    PcmPump::Hooks hooks;
    hooks.discontinuity = [this] { ++discontinuities, expect_any = true; };
    hooks.lost = [this](const std::string& w) { ++lost, why = w; };
    hooks.back = [this](int64_t ms) { ++back, outage_ms = ms; };
    pump = std::make_unique<PcmPump>(
        loop, pc, std::move(src),
        [this](const int16_t* pcm, size_t n, int64_t, int64_t, bool) {
          for (size_t i = 0; i < n; ++i) {
            if (!expect_any && !got.empty() && pcm[i] != int16_t((got.back() + 1) % 32768)) gap_free = false;
            expect_any = false;
            got.push_back(pcm[i]);
          }
        },
        nullptr, std::move(hooks));
  }
};

TEST(PcmPump, StreamsAClockedSourceAtItsPace) {
  SourceRig r;
  r.pump->Start();
  r.loop.AdvanceMs(1000);
  EXPECT_NEAR(double(r.got.size()), 16000, 200);
  EXPECT_TRUE(r.gap_free);
  EXPECT_EQ(r.lost, 0);
  EXPECT_EQ(r.pump->counters().xruns, 0u);
}

TEST(PcmPump, DeviceVanishesMidStreamIsReportedOnceRetriedAndReopenedWhenItReturns) {
  SourceRig r;
  r.pump->Start();
  r.loop.AdvanceMs(500);
  ASSERT_GT(r.got.size(), 7000u);
  r.dev->Vanish();
  r.loop.AdvanceMs(20);
  EXPECT_EQ(r.lost, 1);
  EXPECT_NE(r.why.find("vanished"), std::string::npos) << r.why;
  EXPECT_FALSE(r.pump->is_open());
  EXPECT_TRUE(r.pump->lost());
  const size_t before = r.got.size();
  // Retries at +250, +500, +1000, +2000 ms (250 doubling, capped at 2000):
  // all fail, and the loss is still reported once.
  r.loop.AdvanceMs(2980);
  EXPECT_EQ(r.dev->failed_opens(), 4u);
  EXPECT_EQ(r.lost, 1);
  EXPECT_EQ(r.pump->counters().device_lost, 1u);
  EXPECT_EQ(r.got.size(), before);
  r.dev->Return();
  r.loop.AdvanceMs(1100);  // the retry at +4000 ms opens it
  EXPECT_EQ(r.back, 1);
  EXPECT_NEAR(double(r.outage_ms), 4000, 30);
  EXPECT_TRUE(r.pump->is_open());
  EXPECT_FALSE(r.pump->lost());
  r.loop.AdvanceMs(500);
  EXPECT_GT(r.got.size(), before + 7000);
  EXPECT_TRUE(r.gap_free);          // samples after the return follow each other again
  EXPECT_GE(r.discontinuities, 2);  // lost, reopened
  EXPECT_EQ(r.pump->counters().device_back, 1u);
}

TEST(PcmPump, DeviceMissingAtStartIsReportedAndUsedOnceItAppears) {
  SourceRig r;
  r.dev->Vanish();
  r.pump->Start();
  EXPECT_EQ(r.lost, 1);
  EXPECT_NE(r.why.find("no such device"), std::string::npos) << r.why;
  r.loop.AdvanceMs(600);
  r.dev->Return();
  r.loop.AdvanceMs(600);
  EXPECT_EQ(r.back, 1);
  EXPECT_GT(r.got.size(), 0u);
}

TEST(PcmPump, ShortReadsLoseNothing) {
  SourceRig r;
  r.dev->ShortIo(7);
  r.pump->Start();
  r.loop.AdvanceMs(1000);
  EXPECT_NEAR(double(r.got.size()), 16000, 200);
  EXPECT_TRUE(r.gap_free);
  EXPECT_EQ(r.pump->counters().xruns, 0u);
  EXPECT_EQ(r.lost, 0);
}

TEST(PcmPump, XrunIsCountedAsADiscontinuityAndTheStreamGoesOn) {
  SourceRig r;
  r.pump->Start();
  r.loop.AdvanceMs(300);
  const int disc = r.discontinuities;
  r.dev->Xrun();
  r.loop.AdvanceMs(300);
  EXPECT_EQ(r.pump->counters().xruns, 1u);
  EXPECT_EQ(r.pump->xruns_total(), 1u);
  EXPECT_EQ(r.discontinuities, disc + 1);
  EXPECT_EQ(r.lost, 0);
  EXPECT_TRUE(r.gap_free);
  EXPECT_NEAR(double(r.got.size()), 9600 - 160, 400);  // what was queued at the xrun is lost
}

TEST(PcmPump, ScriptedFaultsApplyAsTheClockPasses) {
  SourceRig r;
  const int64_t t0 = r.loop.NowNs();
  r.dev->Script(
      {{t0 + 200 * kMs, FaultStep::kXrun}, {t0 + 400 * kMs, FaultStep::kVanish}, {t0 + 700 * kMs, FaultStep::kReturn}});
  r.pump->Start();
  r.loop.AdvanceMs(1500);
  EXPECT_EQ(r.pump->counters().xruns, 1u);
  EXPECT_EQ(r.lost, 1);
  EXPECT_EQ(r.back, 1);  // retries at +250 (fails, 650 ms) and +500 (works, 900 ms)
  EXPECT_NEAR(double(r.outage_ms), 500, 30);
}

TEST(PcmPump, AStallTripsTheWatchdogAndTheDeviceIsReopened) {
  SourceRig r;
  r.pump->Start();
  r.loop.AdvanceMs(300);
  r.dev->Stall(true);
  r.loop.AdvanceMs(1900);
  EXPECT_EQ(r.lost, 0) << "2 s without samples is not yet a stall";
  r.loop.AdvanceMs(400);
  EXPECT_EQ(r.lost, 1);
  EXPECT_EQ(r.pump->counters().stalls, 1u);
  EXPECT_NE(r.why.find("no samples for"), std::string::npos) << r.why;
  r.dev->Stall(false);
  const size_t before = r.got.size();
  r.loop.AdvanceMs(500);
  EXPECT_EQ(r.back, 1);
  EXPECT_GT(r.got.size(), before + 3000);
}

// ---- Sink ------------------------------------------------------------------

struct SinkRig {
  testing::ManualLoop loop;
  FaultSink* dev = nullptr;
  std::unique_ptr<PcmPump> pump;
  uint64_t rendered = 0, played = 0;
  int lost = 0, back = 0;
  std::string why;

  SinkRig() {
    auto sink = std::make_unique<FaultSink>(PcmFormat{16000, 2}, [this] { return loop.NowNs(); });
    dev = sink.get();
    PumpConfig pc;
    pc.what = "test speaker";
    pc.period_ms = 5;
    pc.device_period_ms = 5;
    pc.history_frames = 1280;
    PcmPump::Hooks hooks;
    hooks.lost = [this](const std::string& w) { ++lost, why = w; };
    hooks.back = [this](int64_t) { ++back; };
    pump = std::make_unique<PcmPump>(
        loop, pc, std::move(sink),
        [this](int16_t* out, size_t n, int64_t, int64_t) {
          for (size_t i = 0; i < n; ++i) out[i] = int16_t((rendered + i) % 30000 + 1);
          rendered += n;
          return true;
        },
        [this](const int16_t*, size_t n, int64_t) { played += n; }, std::move(hooks));
  }
};

TEST(PcmPump, SinkKeepsTheDeviceQueueFullAndUpmixes) {
  SinkRig r;
  r.pump->Start();
  r.loop.AdvanceMs(1000);
  // 1 s played plus the queue (640 frames) kept full.
  EXPECT_NEAR(double(r.played), 16000 + 640, 200);
  ASSERT_GE(r.dev->written().size(), 4u);
  EXPECT_EQ(r.dev->written()[0], r.dev->written()[1]);  // mono copied to both channels
  EXPECT_EQ(r.dev->xruns(), 0u);
}

TEST(PcmPump, LostSinkKeepsRenderingOnTimeIntoNothingAndIsUsedAgainWhenBack) {
  SinkRig r;
  r.pump->Start();
  r.loop.AdvanceMs(500);
  r.dev->Vanish();
  r.loop.AdvanceMs(10);
  EXPECT_EQ(r.lost, 1);
  const uint64_t rendered = r.rendered, played = r.played;
  r.loop.AdvanceMs(1000);
  EXPECT_NEAR(double(r.rendered - rendered), 16000, 200) << "what plays still ends on time";
  EXPECT_EQ(r.played, played) << "nothing reached a speaker";
  r.dev->Return();
  r.loop.AdvanceMs(1600);  // the retry at +2000 ms after the loss opens it
  EXPECT_EQ(r.back, 1);
  EXPECT_GT(r.played, played + 8000);
}

TEST(PcmPump, SinkThatTakesNothingTripsTheWatchdog) {
  SinkRig r;
  r.pump->Start();
  r.loop.AdvanceMs(200);
  r.dev->Stall(true);
  r.loop.AdvanceMs(2400);
  EXPECT_EQ(r.lost, 1);
  EXPECT_NE(r.why.find("device took nothing for"), std::string::npos) << r.why;
}

TEST(PcmPump, SinkShortWritesLoseNothingAndAnUnderrunKeepsTheStream) {
  SinkRig r;
  r.dev->ShortIo(33);
  r.pump->Start();
  r.loop.AdvanceMs(300);
  EXPECT_EQ(r.pump->counters().xruns, 0u);
  // Every rendered frame reached the device, in order (the rest of a short
  // write goes first next time).
  const auto& w = r.dev->written();
  for (size_t k = 0; k + 2 < w.size(); k += 2) ASSERT_EQ(w[k + 2], int16_t(w[k] % 30000 + 1)) << k;
  r.dev->Xrun();
  r.loop.AdvanceMs(300);
  EXPECT_EQ(r.pump->counters().xruns, 1u);
  EXPECT_EQ(r.lost, 0);
  EXPECT_GT(r.played, 9000u);
}

TEST(PcmPump, DropDeviceQueueHandsBackWhatWasUnplayed) {
  SinkRig r;
  r.pump->Start();
  r.loop.AdvanceMs(100);
  std::vector<int16_t> unplayed;
  ASSERT_TRUE(r.pump->DropDeviceQueue(&unplayed));
  EXPECT_GT(unplayed.size(), 0u);
  EXPECT_LE(unplayed.size(), 640u);
  EXPECT_EQ(unplayed.back(), int16_t((r.played - 1) % 30000 + 1));  // the last frame written
  EXPECT_EQ(r.dev->queued(), 0u);
  EXPECT_EQ(r.pump->counters().queue_drops, 1u);
}

}  // namespace
}  // namespace vb::audio
