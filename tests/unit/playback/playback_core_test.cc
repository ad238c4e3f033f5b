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

  explicit Rig(std::function<void(PlaybackOptions&)> tune = nullptr) {
    auto sink = std::make_unique<audio::FaultSink>(
        audio::PcmFormat{16000, 1}, [this] { return loop.NowNs(); }, 320);
    dev = sink.get();
    PlaybackOptions o;
    if (tune) tune(o);
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
  const size_t refs_back = r.refs;
  EXPECT_GT(refs_back, refs) << "audio.ref again";
  r.Reply("t2", 400);
  r.loop.AdvanceMs(600);
  EXPECT_GT(r.dev->written().size(), heard + 6000) << "the next reply is heard";
  EXPECT_GE(r.refs, refs_back + 20) << "and goes to audio.ref";
}

TEST(PlaybackCore, ReferenceFramesAreStampedWithWhenTheyLeaveTheSpeaker) {
  Rig r([](PlaybackOptions& o) { o.idle_stop_ms = 0; });  // idle silence played and referenced
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

// Between turns the device is stopped (no wake-ups for silence) and the next
// reply or prompt starts it again at once.
TEST(PlaybackCore, IdleDeviceStopsAndTheNextReplyOrPromptStartsItAtOnce) {
  Rig r([](PlaybackOptions& o) { o.idle_stop_ms = 500; });
  r.core->Start();
  r.Reply("t1", 400);
  r.loop.AdvanceMs(700);
  ASSERT_GE(r.When(v1::PlaybackEvent::DRAINED), 0);
  r.loop.AdvanceMs(600);  // idle_stop_ms (500) after the reply
  std::map<std::string, int64_t> f;
  r.core->Figures(&f);
  EXPECT_EQ(f["device_parks"], 1);
  EXPECT_TRUE(r.core->pump().parked());
  const size_t written = r.dev->written().size(), refs = r.refs;
  r.loop.AdvanceMs(3000);
  EXPECT_EQ(r.dev->written().size(), written) << "no silence written while idle";
  EXPECT_EQ(r.refs, refs) << "and no reference for it";
  r.core->Figures(&f);
  EXPECT_EQ(f["device_open"], 1);
  EXPECT_EQ(f["device_lost"], 0) << "a stopped device is not a stalled one";

  // The next reply: its first sample is written within the jitter target
  // (60 ms) and a period, as from a running device.
  const size_t events = r.events.size();
  r.Reply("t2", 400);
  EXPECT_FALSE(r.core->pump().parked());
  size_t first = 0;
  for (int ms = 0; ms < 200 && !first; ms += 5) {
    r.loop.AdvanceMs(5);
    for (size_t i = written; i < r.dev->written().size(); ++i)
      if (r.dev->written()[i] != 0) {
        first = size_t(ms) + 5;
        break;
      }
  }
  EXPECT_GT(first, 0u);
  EXPECT_LE(first, 70u) << "first sample of the reply written after " << first << " ms";
  r.loop.AdvanceMs(1200);
  bool started = false;
  for (size_t i = events; i < r.events.size(); ++i) started |= r.events[i].kind() == v1::PlaybackEvent::STARTED;
  EXPECT_TRUE(started);
  EXPECT_TRUE(r.core->pump().parked()) << "stopped again after the reply";

  // A prompt starts it too.
  const size_t before_prompt = r.dev->written().size();
  v1::DialogCommand c;
  c.mutable_play_prompt()->set_name("wake");
  r.core->OnCommand(c);
  r.loop.AdvanceMs(20);
  EXPECT_FALSE(r.core->pump().parked());
  EXPECT_GT(r.dev->written().size(), before_prompt);

  // A device that vanishes while stopped is still found lost.
  r.loop.AdvanceMs(2000);
  ASSERT_TRUE(r.core->pump().parked());
  r.dev->Vanish();
  r.loop.AdvanceMs(300);
  EXPECT_GE(r.When(v1::PlaybackEvent::DEVICE_ERROR), 0);
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

// A rewritable queue (sink pulse): deep, yet the flush takes back its tail
// and the fade continues the sample that plays before it.
TEST(PlaybackCore, InterruptRewritesADeepQueueFromJustAfterWhatPlays) {
  Rig r;
  // 80 ms queued: without the rewind a flush would wait for it to play out.
  auto sink = std::make_unique<audio::FaultSink>(
      audio::PcmFormat{16000, 1}, [&r] { return r.loop.NowNs(); }, 1280);
  sink->EnableRewind(160);
  r.dev = sink.get();
  PlaybackCore::Outputs out;
  out.ref = [](const v1::AudioFrame&, int64_t) {};
  out.event = [&r](const v1::PlaybackEvent& e) { r.events.push_back(e); };
  PlaybackOptions o;
  o.sink = PlaybackOptions::Sink::kPulse;  // its pacing (20 ms blocks) over the fake
  r.core = std::make_unique<PlaybackCore>(o, r.loop, std::move(out), std::move(sink));
  ASSERT_TRUE(r.core->Init().ok());
  r.core->Start();
  r.loop.AdvanceMs(100);
  // A ramp, so that a cut anywhere but at the fade would be a step.
  for (int at = 0; at < 3000; at += 20) {
    v1::AudioFrame f;
    f.set_sample_rate(16000);
    f.set_channels(1);
    std::vector<int16_t> pcm(320);
    for (size_t k = 0; k < pcm.size(); ++k) pcm[k] = int16_t(2000 + (k % 64) * 10);
    f.set_pcm(pcm.data(), pcm.size() * 2);
    f.set_end_of_turn(at + 20 >= 3000);
    r.core->OnAudio(f, "t1", r.loop.NowNs());
  }
  r.loop.AdvanceMs(500);
  ASSERT_GE(r.dev->queued(), 1000u) << "the queue is deep";
  v1::DialogCommand cmd;
  cmd.mutable_interrupt()->set_turn_id("t1");
  r.core->OnCommand(cmd);
  r.loop.AdvanceMs(200);
  const int64_t i = r.When(v1::PlaybackEvent::FLUSHED);
  ASSERT_GE(i, 0);
  // Margin (10 ms) + fade (5 ms), not the 80 ms queue.
  EXPECT_LE(r.events[size_t(i)].latency_ns(), 20'000'000);
  std::map<std::string, int64_t> figures;
  r.core->Figures(&figures);
  EXPECT_GE(figures["device_rewinds"], 1);  // the silence before the reply is rewritten too
  // What plays: silence, the ramp, a fade, silence; from the ramp's start on
  // no step larger than its own.
  const auto& w = r.dev->written();
  ASSERT_GT(w.size(), 8000u);
  size_t start = 0;
  while (start < w.size() && w[start] == 0) ++start;
  ASSERT_LT(start, w.size());
  int max_step = 0;
  for (size_t k = start + 1; k < w.size(); ++k) max_step = std::max(max_step, std::abs(w[k] - w[k - 1]));
  EXPECT_LE(max_step, 700) << "a click where the queue was rewritten";  // the ramp wraps by 630; a cut: ≥ 2000
  for (size_t k = w.size() - 320; k < w.size(); ++k) ASSERT_EQ(w[k], 0) << "silent after the flush";
}

}  // namespace
}  // namespace vb::playback
