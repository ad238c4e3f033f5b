// CaptureCore (vb-capture's logic) over a fault-injecting microphone: a
// device that vanishes mid-stream is reported (the actor goes DEGRADED),
// its figures keep coming for the heartbeat, and capture goes on when it
// returns, with the lost time shown as a jump of sample_index.
#include "actors/capture/capture_core.h"

#include <gtest/gtest.h>

#include "actors/common/fault_pcm.h"
#include "tests/unit/audio_io/manual_loop.h"

namespace vb::capture {
namespace {

struct Rig {
  audio::testing::ManualLoop loop;
  audio::FaultSource* dev = nullptr;
  std::unique_ptr<CaptureCore> core;
  std::vector<v1::AudioFrame> frames;
  std::vector<std::string> lost;
  int back = 0, stopped = -1;

  explicit Rig(audio::PcmFormat fmt = {48000, 2}) {
    auto src = std::make_unique<audio::FaultSource>(
        fmt, [this] { return loop.NowNs(); }, fmt.sample_rate / 10);
    dev = src.get();
    CaptureOptions o;
    CaptureCore::Outputs out;
    out.frame = [this](const v1::AudioFrame& f, int64_t) { frames.push_back(f); };
    out.lost = [this](const std::string& why) { lost.push_back(why); };
    out.back = [this] { ++back; };
    out.stop = [this](int code) { stopped = code; };
    core = std::make_unique<CaptureCore>(o, loop, std::move(out), std::move(src));
    bool file_error = true;
    EXPECT_TRUE(core->Init(&file_error).ok());
    EXPECT_FALSE(file_error);
  }
  std::map<std::string, int64_t> Figures() {
    std::map<std::string, int64_t> f;
    core->Figures(&f);
    return f;
  }
};

TEST(CaptureCore, DeviceVanishesMidStreamReportsKeepsFiguresAndResumesWhenItReturns) {
  Rig r;
  r.core->Start();
  r.loop.AdvanceMs(1000);
  // 48 kHz stereo converted to 16 kHz mono 20 ms frames, one every 20 ms.
  ASSERT_GE(r.frames.size(), 45u);
  EXPECT_EQ(r.frames.back().sample_rate(), 16000u);
  EXPECT_EQ(r.frames.back().pcm().size(), 320u * 2);
  EXPECT_EQ(r.Figures()["device_open"], 1);

  r.dev->Vanish();
  r.loop.AdvanceMs(50);
  ASSERT_EQ(r.lost.size(), 1u);
  EXPECT_NE(r.lost[0].find("vanished"), std::string::npos);
  const size_t before = r.frames.size();
  const uint64_t last_index = r.frames.back().sample_index();
  r.loop.AdvanceMs(1000);
  EXPECT_EQ(r.frames.size(), before) << "no frames while the device is gone";
  auto f = r.Figures();  // what the heartbeat shows meanwhile
  EXPECT_EQ(f["device_open"], 0);
  EXPECT_EQ(f["device_lost"], 1);
  EXPECT_EQ(r.lost.size(), 1u) << "reported once";

  r.dev->Return();
  r.loop.AdvanceMs(1500);
  EXPECT_EQ(r.back, 1);
  ASSERT_GT(r.frames.size(), before + 20);
  // The first frame after the outage says how much time was lost.
  const uint64_t resumed = r.frames[before].sample_index();
  EXPECT_GT(resumed, last_index + 320 + 16000) << "sample_index jumps over the outage";
  f = r.Figures();
  EXPECT_EQ(f["device_open"], 1);
  EXPECT_EQ(f["device_back"], 1);
  EXPECT_GT(f["samples_skipped"], 16000);
  EXPECT_EQ(r.stopped, -1);
}

TEST(CaptureCore, OverrunIsCountedAndFramesGoOn) {
  Rig r;
  r.core->Start();
  r.loop.AdvanceMs(400);
  r.dev->Xrun();
  r.loop.AdvanceMs(400);
  auto f = r.Figures();
  EXPECT_EQ(f["xruns"], 1);
  EXPECT_EQ(f["xruns_total"], 1);
  EXPECT_TRUE(r.lost.empty());
  EXPECT_GE(r.frames.size(), 35u);
}

TEST(CaptureCore, SilentRunningDeviceIsDeclaredLostByTheWatchdog) {
  Rig r;
  r.core->Start();
  r.loop.AdvanceMs(500);
  r.dev->Stall(true);
  r.loop.AdvanceMs(2500);
  ASSERT_EQ(r.lost.size(), 1u);
  EXPECT_NE(r.lost[0].find("no samples for"), std::string::npos) << r.lost[0];
}

TEST(CaptureCore, DeviceThatCannotBeFramedStopsWithAConfigError) {
  Rig r({16000, 2});
  CaptureOptions o;
  o.reference_channel = 5;  // a channel the device does not have
  auto src = std::make_unique<audio::FaultSource>(audio::PcmFormat{16000, 2}, [&r] { return r.loop.NowNs(); });
  int stopped = -1;
  CaptureCore::Outputs out;
  out.frame = [](const v1::AudioFrame&, int64_t) {};
  out.stop = [&stopped](int code) { stopped = code; };
  CaptureCore core(o, r.loop, std::move(out), std::move(src));
  bool file_error = false;
  ASSERT_TRUE(core.Init(&file_error).ok());
  core.Start();
  EXPECT_EQ(stopped, kExitConfig);
}

}  // namespace
}  // namespace vb::capture
