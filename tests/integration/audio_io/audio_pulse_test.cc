// Real ALSA without a sound card: a private PulseAudio with a null sink
// (tests/tools/pulse_env.sh); vb-playback plays to ALSA device `pulse`, and
// vb-capture records the sink's monitor through the same device, so the
// microphone hears the speaker. What a user would notice: sustained real-time
// audio without xruns, a flush that silences the speaker within 40 ms, and a
// sound server that stops and comes back without anyone restarting the actors.
#include <signal.h>

#include <cmath>

#include "tests/integration/audio_io/audio_fixture.h"

namespace vb::testing {
namespace {

constexpr int kAmp = 10000;

class AudioPulseTest : public AudioFixture {
 protected:
  void SetUp() override {
    AudioFixture::SetUp();
    pulse_ = std::make_unique<PulseServer>(dir_.File("pulse"));
    ASSERT_TRUE(pulse_->Start());
    // Playback with its defaults; capture wakes every 5 ms so that frame
    // arrival times bound the flush latency tightly. Both ask for SCHED_FIFO
    // as a deployment would (CI machines are busy); without it they still run.
    WriteConfig(
        "capture:\n  source: alsa\n  rt_priority: 20\n  alsa: {device: pulse, rate: 16000, channels: 1, period_ms: 5}\n"
        "playback:\n  sink: alsa\n  rt_priority: 20\n  alsa: {device: pulse}\n");
    node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioMic, [this](const auto& m) {
      mic_.push_back({m.msg, m.header.origin_ns()});
      mic_rx_.push_back(bus::MonoNs());
    });
    StartBroker();
    Connect();
    StartActor("capture", pulse_->env());
    StartActor("playback", pulse_->env());
    ASSERT_TRUE(AwaitBeat("capture") && AwaitBeat("playback"));
  }
  void TearDown() override {
    AudioFixture::TearDown();
    pulse_.reset();
  }
  // Publishes a continuous 440 Hz tone of `turn` on audio.out, 20 ms frames
  // in real time, while the loop runs.
  void StartTone(const std::string& turn) {
    StopTone();
    if (!out_.valid()) out_ = node_->Advertise(bus::topics::kAudioOut);
    ASSERT_TRUE(RunUntil(
        loop_, [&] { return node_->HasSubscriber(out_); }, 5000ms));
    turn_ = turn;
    tone_start_ns_ = bus::MonoNs();
    tone_sent_ = 0;
    tone_timer_ = loop_.AddTimer(std::chrono::milliseconds(10), [this] {
      // Frames due by now plus 40 ms ahead (the jitter buffer absorbs our timer's jitter).
      while (tone_sent_ * 20'000'000 < bus::MonoNs() - tone_start_ns_ + 40'000'000) {
        v1::AudioFrame f;
        f.set_sample_rate(16000);
        f.set_channels(1);
        f.set_sample_index(tone_sent_ * 320);
        std::vector<int16_t> pcm(320);
        for (size_t i = 0; i < 320; ++i)
          pcm[i] = int16_t(kAmp * std::sin(2 * M_PI * 440 * double(tone_sent_ * 320 + i) / 16000));
        f.set_pcm(std::string(reinterpret_cast<char*>(pcm.data()), 640));
        bus::PublishOptions o;
        o.turn_id = turn_;
        o.origin_ns = bus::MonoNs();
        out_.Publish(f, o);
        ++tone_sent_;
      }
    });
  }
  void StopTone() {
    if (tone_timer_) loop_.CancelTimer(tone_timer_);
    tone_timer_ = 0;
  }
  // True once the microphone has heard the tone for `ms` in a row.
  bool AwaitHeard(int ms, std::chrono::milliseconds timeout) {
    size_t from = mic_.size();
    return RunUntil(
        loop_,
        [&] {
          int run = 0;
          for (size_t i = from; i < mic_.size(); ++i) run = Rms(Pcm(mic_[i].first)) > kAmp / 4 ? run + 20 : 0;
          return run >= ms;
        },
        timeout);
  }
  // A freshly started sound server reports a settling capture latency for a
  // few seconds; measurements start once capture stamps agree with when the
  // frames arrive (within 30 ms over the last half second).
  bool AwaitCaptureSettled(std::chrono::milliseconds timeout) {
    return RunUntil(
        loop_,
        [&] {
          if (mic_.size() < 25) return false;
          for (size_t k = mic_.size() - 25; k < mic_.size(); ++k)
            if (mic_rx_[k] - (mic_[k].second + 20'000'000) > 30'000'000) return false;
          return true;
        },
        timeout);
  }

  // When the microphone went silent after `after_ns`: the time of the sample
  // after the last loud one, by capture's stamps (*stamped) and as an upper
  // bound from when its frame reached us (*received: it cannot have been
  // captured later than that, minus the samples after it in the frame).
  void SilenceOnset(int64_t after_ns, int64_t* stamped, int64_t* received) {
    *stamped = *received = 0;
    for (size_t k = 0; k < mic_.size(); ++k) {
      const auto& [f, origin] = mic_[k];
      if (mic_rx_[k] < after_ns - 300'000'000) continue;
      auto s = Pcm(f);
      for (size_t i = 0; i < s.size(); ++i) {
        if (std::abs(s[i]) <= 300) continue;
        *stamped = origin + int64_t(i + 1) * 62'500;
        *received = mic_rx_[k] - int64_t(s.size() - i - 1) * 62'500;
      }
    }
  }

  std::unique_ptr<PulseServer> pulse_;
  std::vector<std::pair<v1::AudioFrame, int64_t>> mic_;
  std::vector<int64_t> mic_rx_;  // when each mic frame reached the test
  bus::Publisher<v1::AudioFrame> out_;
  bus::Loop::TimerId tone_timer_ = 0;
  std::string turn_;
  int64_t tone_start_ns_ = 0;
  int64_t tone_sent_ = 0;
};

TEST_F(AudioPulseTest, SustainedRealTimeLoopWithoutXruns) {
  StartTone("t1");
  // The first samples after a sound server starts take a moment.
  ASSERT_TRUE(AwaitHeard(500, 15000ms)) << ReadFile(Log("capture")) << ReadFile(Log("playback"));
  ASSERT_TRUE(AwaitCaptureSettled(10000ms));
  ASSERT_TRUE(FreshBeat("capture") && FreshBeat("playback"));
  // Rates are the actors' own counters over the time between the heartbeats
  // that carried them (stamped when sent): how late a heartbeat reaches the
  // test on a busy machine does not enter.
  const int64_t cap0 = Extra("capture", "frames_out"), play0 = Extra("playback", "frames_written");
  const int64_t cap_t0 = BeatNs("capture"), play_t0 = BeatNs("playback");
  const int64_t cap_x0 = Extra("capture", "xruns_total"), play_x0 = Extra("playback", "xruns_total");
  const int64_t under0 = Extra("playback", "underruns");
  const size_t mic0 = mic_.size();
  const int64_t t0 = bus::MonoNs();
  RunUntil(
      loop_, [&] { return bus::MonoNs() - t0 > 10'000'000'000; }, 11000ms);
  ASSERT_TRUE(FreshBeat("capture") && FreshBeat("playback"));
  const double secs = double(bus::MonoNs() - t0) / 1e9;
  const double cap_fps = double(Extra("capture", "frames_out") - cap0) * 1e9 / double(BeatNs("capture") - cap_t0);
  const double play_rate =
      double(Extra("playback", "frames_written") - play0) * 1e9 / double(BeatNs("playback") - play_t0);
  size_t loud = 0;
  for (size_t i = mic0; i < mic_.size(); ++i) loud += Rms(Pcm(mic_[i].first)) > kAmp / 4;
  const int64_t cap_x = Extra("capture", "xruns_total") - cap_x0, play_x = Extra("playback", "xruns_total") - play_x0;
  const int64_t under = Extra("playback", "underruns") - under0;
  std::cout << "sustained " << secs << " s: capture " << cap_fps << " frames/s, playback " << play_rate
            << " samples/s, capture xruns " << cap_x << ", playback xruns " << play_x << ", jitter underruns " << under
            << ", mic frames hearing the tone " << loud << "/" << mic_.size() - mic0 << "\n";
  EXPECT_EQ(cap_x, 0);
  EXPECT_EQ(play_x, 0);
  EXPECT_EQ(under, 0);
  EXPECT_EQ(Extra("capture", "device_lost"), 0);
  EXPECT_NEAR(cap_fps, 50, 2);
  EXPECT_NEAR(play_rate, 16000, 400);
  EXPECT_GE(loud, (mic_.size() - mic0) * 98 / 100) << "the microphone lost the speaker";
  // Contiguous capture: no sample_index jumps.
  for (size_t i = mic0 + 1; i < mic_.size(); ++i)
    ASSERT_EQ(mic_[i].first.sample_index(), mic_[i - 1].first.sample_index() + 320) << i;
}

TEST_F(AudioPulseTest, InterruptSilencesTheSpeakerWithin40ms) {
  std::vector<double> measured, by_stamps, reported;
  for (int round = 0; round < 3; ++round) {
    const std::string turn = "f" + std::to_string(round);
    StartTone(turn);
    ASSERT_TRUE(AwaitHeard(600, 15000ms)) << "round " << round;
    ASSERT_TRUE(AwaitCaptureSettled(10000ms)) << "round " << round;
    const int64_t t = bus::MonoNs();
    Interrupt("");
    StopTone();
    ASSERT_TRUE(AwaitEvent(v1::PlaybackEvent::FLUSHED, turn, 2000ms));
    // Let the microphone record well past the silence.
    RunUntil(
        loop_, [&] { return !mic_.empty() && mic_.back().second > t + 300'000'000; }, 3000ms);
    int64_t stamped = 0, received = 0;
    SilenceOnset(t, &stamped, &received);
    ASSERT_GT(received, 0);
    measured.push_back(double(received - t) / 1e6);
    // No click: around the cut no step is steeper than the tone's own
    // (2π·440/16000·10000 ≈ 1728 per sample).
    int max_step = 0;
    for (size_t k = 1; k < mic_.size(); ++k) {
      if (mic_[k].second < stamped - 40'000'000 || mic_[k].second > stamped + 20'000'000) continue;
      auto prev = Pcm(mic_[k - 1].first), cur = Pcm(mic_[k].first);
      int last = prev.back();
      for (int16_t v : cur) {
        max_step = std::max(max_step, std::abs(v - last));
        last = v;
      }
    }
    EXPECT_LE(max_step, 2000) << "a click at the flush, round " << round;
    by_stamps.push_back(double(stamped - t) / 1e6);
    reported.push_back(double(FindEvent(v1::PlaybackEvent::FLUSHED, turn)->latency_ns()) / 1e6);
    EXPECT_EQ(FindEvent(v1::PlaybackEvent::DRAINED, turn), nullptr);
  }
  {
    // The device geometry measured (its line in playback's log).
    const std::string log = ReadFile(Log("playback"));
    const size_t at = log.find(" ch, period ");
    if (at != std::string::npos)
      std::cout << "playback device: " << log.substr(at + 5, log.find('\n', at) - at - 5) << "\n";
  }
  std::cout << "flush → silence at the monitor, upper bound from frame arrival (ms):";
  for (double m : measured) std::cout << " " << m;
  std::cout << "; by capture stamps (ms):";
  for (double m : by_stamps) std::cout << " " << m;
  std::cout << "; playback's own FLUSHED latency (ms):";
  for (double r : reported) std::cout << " " << r;
  std::cout << "\n";
  // On capture's timeline (the sound server's delay accounted, checked above
  // to agree with arrival times): within 40 ms. The arrival-time bound adds
  // capture's and the bus's own latency, and this test process is not
  // real-time on a busy machine: it only guards the stamps against a gross
  // error (CI measures ~30 ms; a scheduling stall of the test must not fail it).
  for (double m : by_stamps) EXPECT_LE(m, 40.0);
  for (double m : measured) EXPECT_LE(m, 150.0);
}

TEST_F(AudioPulseTest, SoundServerRestartIsSurvived) {
  StartTone("t1");
  ASSERT_TRUE(AwaitHeard(300, 15000ms));
  pulse_->Stop();
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return FindEvent(v1::PlaybackEvent::DEVICE_ERROR, "") != nullptr; }, 5000ms))
      << ReadFile(Log("playback"));
  ASSERT_TRUE(WaitForText(Log("capture"), "capture device lost", 5000ms)) << ReadFile(Log("capture"));
  ASSERT_TRUE(pulse_->Start());
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return FindEvent(v1::PlaybackEvent::DEVICE_BACK, "") != nullptr; }, 10000ms))
      << ReadFile(Log("playback"));
  ASSERT_TRUE(WaitForText(Log("capture"), "capture device back", 10000ms)) << ReadFile(Log("capture"));
  // The loop works again: the microphone hears the speaker.
  StartTone("t2");
  ASSERT_TRUE(AwaitHeard(300, 15000ms)) << ReadFile(Log("capture")) << ReadFile(Log("playback"));
  ASSERT_TRUE(FreshBeat("capture") && FreshBeat("playback"));
  // One outage: one line and one count each, not one per retry.
  EXPECT_EQ(CountInLog("capture", "device lost"), 1u) << ReadFile(Log("capture"));
  EXPECT_EQ(CountInLog("playback", "device lost"), 1u) << ReadFile(Log("playback"));
  EXPECT_EQ(Extra("capture", "device_lost"), 1);
  EXPECT_EQ(Extra("capture", "device_back"), 1);
  EXPECT_EQ(Extra("playback", "device_lost"), 1);
  EXPECT_EQ(Extra("playback", "device_back"), 1);
  EXPECT_EQ(beats_["capture"].state(), v1::Heartbeat::ACTIVE);
  EXPECT_EQ(beats_["playback"].pid(), actors_["playback"].pid()) << "restarted instead of recovering";
}

}  // namespace
}  // namespace vb::testing

namespace vb::testing {
namespace {

TEST_F(AudioPulseTest, CaptureOverrunIsRecoveredAndTheLossShowsInTheIndex) {
  StartTone("t1");
  ASSERT_TRUE(AwaitHeard(300, 15000ms));
  ASSERT_TRUE(AwaitCaptureSettled(10000ms));
  // Freeze capture for 400 ms: far longer than its 100 ms ALSA buffer.
  const size_t before = mic_.size();
  ASSERT_EQ(kill(actors_["capture"].pid(), SIGSTOP), 0);
  RunUntil(
      loop_, [] { return false; }, 400ms);
  ASSERT_EQ(kill(actors_["capture"].pid(), SIGCONT), 0);
  ASSERT_TRUE(WaitForText(Log("capture"), "capture overrun", 5000ms)) << ReadFile(Log("capture"));
  ASSERT_TRUE(AwaitHeard(300, 5000ms)) << "capture did not resume";
  ASSERT_TRUE(FreshBeat("capture"));
  EXPECT_GE(Extra("capture", "xruns_total"), 1);
  EXPECT_EQ(Extra("capture", "device_lost"), 0);
  // The samples lost show as one jump of sample_index of about the freeze.
  uint64_t jump = 0;
  for (size_t i = std::max<size_t>(before, 1); i < mic_.size(); ++i)
    jump = std::max<uint64_t>(jump, mic_[i].first.sample_index() - mic_[i - 1].first.sample_index() - 320);
  std::cout << "capture frozen 400 ms: sample_index jumped " << jump / 16 << " ms, samples_skipped "
            << Extra("capture", "samples_skipped") << ", xruns " << Extra("capture", "xruns_total") << ", frames "
            << mic_.size() - before << "\n";
  EXPECT_GT(jump, 16u * 200);
  EXPECT_LT(jump, 16u * 1000);
}

}  // namespace
}  // namespace vb::testing
