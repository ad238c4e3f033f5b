// PlaybackCore (vb-playback's logic) over a fault-injecting speaker: a device
// that vanishes mid-reply is reported (DEVICE_ERROR), the reply still ends on
// time (DRAINED) while nothing can be heard, and the device is used again
// when it returns (DEVICE_BACK, audio.ref again).
#include "actors/playback/playback_core.h"

#include <gtest/gtest.h>

#include "actors/common/fault_pcm.h"
#include "tests/unit/audio_io/manual_loop.h"

namespace vb::playback {
namespace {

struct Rig {
  audio::testing::ManualLoop loop;
  audio::FaultSink* dev = nullptr;
  std::unique_ptr<PlaybackCore> core;
  std::vector<v1::PlaybackEvent> events;
  size_t refs = 0;
  std::vector<std::pair<int64_t, uint64_t>> ref_stamps;  // play_ns, sample_index
  int lost = 0, back = 0;

  Rig() {
    auto sink = std::make_unique<audio::FaultSink>(
        audio::PcmFormat{16000, 1}, [this] { return loop.NowNs(); }, 320);
    dev = sink.get();
    PlaybackOptions o;
    PlaybackCore::Outputs out;
    out.ref = [this](const v1::AudioFrame& f, int64_t) {
      ++refs;
      ref_stamps.emplace_back(f.play_ns(), f.sample_index());
    };
    out.event = [this](const v1::PlaybackEvent& e) { events.push_back(e); };
    out.lost = [this](const std::string&) { ++lost; };
    out.back = [this] { ++back; };
    core = std::make_unique<PlaybackCore>(o, loop, std::move(out), std::move(sink));
    EXPECT_TRUE(core->Init().ok());
  }
  // `ms` of a tone for turn `turn`, in 20 ms frames; the last marks the end.
  void Reply(const std::string& turn, int ms) {
    for (int at = 0; at < ms; at += 20) {
      v1::AudioFrame f;
      f.set_sample_rate(16000);
      f.set_channels(1);
      std::vector<int16_t> pcm(320, 3000);
      f.set_pcm(pcm.data(), pcm.size() * 2);
      f.set_end_of_turn(at + 20 >= ms);
      core->OnAudio(f, turn, loop.NowNs());
    }
  }
  int64_t When(v1::PlaybackEvent::Kind kind) const {
    for (size_t i = 0; i < events.size(); ++i)
      if (events[i].kind() == kind) return int64_t(i);
    return -1;
  }
};

TEST(PlaybackCore, DeviceVanishesMidReplyTheReplyStillEndsOnTimeAndTheDeviceComesBack) {
  Rig r;
  r.core->Start();
  r.loop.AdvanceMs(100);
  r.Reply("t1", 2000);
  r.loop.AdvanceMs(500);
  ASSERT_GE(r.When(v1::PlaybackEvent::STARTED), 0);
  const uint64_t heard = r.dev->written().size();
  EXPECT_GT(heard, 6000u);
  r.dev->Vanish();
  r.loop.AdvanceMs(20);
  ASSERT_GE(r.When(v1::PlaybackEvent::DEVICE_ERROR), 0);
  EXPECT_EQ(r.lost, 1);
  const size_t refs = r.refs;
  // The rest of the reply (~1.5 s) plays into nothing, on time.
  r.loop.AdvanceMs(1700);
  EXPECT_GE(r.When(v1::PlaybackEvent::DRAINED), 0) << "the turn ends while the device is gone";
  EXPECT_FALSE(r.core->engine().speaking());
  EXPECT_EQ(r.refs, refs) << "no reference while nothing is heard";
  EXPECT_EQ(r.dev->written().size(), heard);
  std::map<std::string, int64_t> f;
  r.core->Figures(&f);
  EXPECT_EQ(f["device_open"], 0);
  EXPECT_EQ(f["device_lost"], 1);

  r.dev->Return();
  r.loop.AdvanceMs(2500);
  EXPECT_GE(r.When(v1::PlaybackEvent::DEVICE_BACK), 0);
  EXPECT_EQ(r.back, 1);
  EXPECT_GT(r.refs, refs + 50) << "audio.ref again";
  r.Reply("t2", 400);
  r.loop.AdvanceMs(600);
  EXPECT_GT(r.dev->written().size(), heard + 6000) << "the next reply is heard";
}

TEST(PlaybackCore, ReferenceFramesAreStampedWithWhenTheyLeaveTheSpeaker) {
  Rig r;
  r.core->Start();
  r.loop.AdvanceMs(3000);
  ASSERT_GE(r.ref_stamps.size(), 145u);  // 20 ms frames, idle silence included
  const auto& a = r.ref_stamps[r.ref_stamps.size() - 100];
  const auto& b = r.ref_stamps.back();
  EXPECT_EQ(b.second - a.second, 99u * 320);
  // One frame per 20 ms of speaker time: the stamps keep time with the samples.
  EXPECT_NEAR(double(b.first - a.first) / 1e6, 99 * 20.0, 2.0);
  // Each leaves the speaker after what the device holds (≤ 20 ms queue).
  EXPECT_GE(b.first, r.loop.NowNs() - 40'000'000);
}

TEST(PlaybackCore, InterruptSilencesWithinTheDeviceQueueAndAFade) {
  Rig r;
  r.core->Start();
  r.loop.AdvanceMs(100);
  r.Reply("t1", 3000);
  r.loop.AdvanceMs(500);
  v1::DialogCommand cmd;
  cmd.mutable_interrupt()->set_turn_id("t1");
  r.core->OnCommand(cmd);
  r.loop.AdvanceMs(100);
  const int64_t i = r.When(v1::PlaybackEvent::FLUSHED);
  ASSERT_GE(i, 0);
  // Queue (20 ms) + fade (5 ms) + one period of scheduling.
  EXPECT_LE(r.events[size_t(i)].latency_ns(), 40'000'000);
  const auto& w = r.dev->written();
  ASSERT_GT(w.size(), 400u);
  for (size_t k = w.size() - 320; k < w.size(); ++k) ASSERT_EQ(w[k], 0) << "silent after the flush";
}

}  // namespace
}  // namespace vb::playback
