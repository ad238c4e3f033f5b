// The WAV path of the demo with real processes: Opus packets on
// session.audio → vb-decoder → vb-playback → a WAV file (what the user would
// hear), Interrupt/cancel on the way, and vb-capture playing a WAV file as
// the microphone in real time and offline.
#include <opus/opus.h>

#include <cmath>

#include "actors/common/wav.h"
#include "tests/integration/audio_io/audio_fixture.h"

namespace vb::testing {
namespace {

// 20 ms Opus packets of a 440 Hz sine at 16 kHz.
std::vector<std::string> OpusSine(int packets) {
  int err = 0;
  OpusEncoder* enc = opus_encoder_create(16000, 1, OPUS_APPLICATION_VOIP, &err);
  std::vector<std::string> out;
  std::vector<int16_t> pcm(320);
  int64_t t = 0;
  for (int p = 0; p < packets; ++p) {
    for (auto& s : pcm) s = int16_t(10000 * std::sin(2 * M_PI * 440 * double(t++) / 16000));
    unsigned char buf[1500];
    int len = opus_encode(enc, pcm.data(), 320, buf, sizeof buf);
    out.emplace_back(reinterpret_cast<char*>(buf), size_t(std::max(len, 0)));
  }
  opus_encoder_destroy(enc);
  return out;
}

class AudioWavTest : public AudioFixture {
 protected:
  void SendPackets(const std::string& turn, const std::vector<std::string>& packets, bool end) {
    if (!audio_.valid()) audio_ = node_->Advertise(bus::topics::kSessionAudio);
    ASSERT_TRUE(RunUntil(
        loop_, [&] { return node_->HasSubscriber(audio_); }, 5000ms));
    for (size_t i = 0; i < packets.size(); ++i) {
      v1::EncodedAudio p;
      p.set_codec(v1::CODEC_OPUS);
      p.set_sample_rate(16000);
      p.set_channels(1);
      p.set_duration_us(20000);
      p.set_packet_index(i);
      p.set_data(packets[i]);
      p.set_end_of_turn_audio(end && i + 1 == packets.size());
      bus::PublishOptions o;
      o.turn_id = turn;
      o.origin_ns = bus::MonoNs();
      audio_.Publish(p, o);
    }
  }
  bus::Publisher<v1::EncodedAudio> audio_;
};

TEST_F(AudioWavTest, ReplyPacketsEndUpInTheWavFileAndCancelledTurnsDoNot) {
  const std::string out = dir_.File("reply.wav");
  WriteConfig("decoder: {}\nplayback:\n  sink: wav\n  wav: {path: " + out + ", realtime: false}\n");
  StartBroker();
  StartActor("decoder");
  StartActor("playback");
  Connect();
  ASSERT_TRUE(AwaitBeat("decoder") && AwaitBeat("playback"));
  // Playback's subscription has reached the decoder (else its first frames are lost).
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return FreshBeat("decoder") && Extra("decoder", "audio_out_listeners") == 1; }, 5000ms));
  // Subscriptions reach the broker before the heartbeat: packets published now arrive.
  SendPackets("t1", OpusSine(50), true);  // 1 s
  ASSERT_TRUE(AwaitEvent(v1::PlaybackEvent::DRAINED, "t1", 5000ms)) << ReadFile(Log("playback"));
  EXPECT_NE(FindEvent(v1::PlaybackEvent::STARTED, "t1"), nullptr);

  // A cancelled turn: Interrupt names it, then its packets come late.
  Interrupt("t2");
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return FreshBeat("decoder") && Extra("decoder", "packets_in") == 50; }, 3000ms));
  SendPackets("t2", OpusSine(25), true);
  // t3 plays after it, proving the pipeline still runs.
  SendPackets("t3", OpusSine(10), true);
  ASSERT_TRUE(AwaitEvent(v1::PlaybackEvent::DRAINED, "t3", 5000ms));
  ASSERT_TRUE(FreshBeat("decoder"));
  EXPECT_EQ(Extra("decoder", "dropped_cancelled"), 25);
  EXPECT_EQ(FindEvent(v1::PlaybackEvent::STARTED, "t2"), nullptr);

  actors_["playback"].Stop(SIGTERM, 5000ms);
  audio::PcmBuffer wav;
  ASSERT_TRUE(audio::ReadWav(out, &wav).ok());
  EXPECT_EQ(wav.sample_rate, 16000u);
  // t1 (1 s + a padded end frame) and t3 (0.2 s + end frame), nothing of t2.
  EXPECT_EQ(wav.frames(), size_t(51 * 320 + 11 * 320));
  EXPECT_GT(Rms(wav.samples, 800, 16000), 5000) << "the reply is not the sine that was sent";
}

TEST_F(AudioWavTest, RealTimeWavSinkFlushesWithinAFadeOnInterrupt) {
  const std::string out = dir_.File("reply.wav");
  WriteConfig("decoder: {}\nplayback:\n  sink: wav\n  wav: {path: " + out + ", realtime: true}\n");
  StartBroker();
  StartActor("decoder");
  StartActor("playback");
  Connect();
  ASSERT_TRUE(AwaitBeat("decoder") && AwaitBeat("playback"));
  // Playback's subscription has reached the decoder (else its first frames are lost).
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return FreshBeat("decoder") && Extra("decoder", "audio_out_listeners") == 1; }, 5000ms));
  SendPackets("t1", OpusSine(90), false);  // 1.8 s, arriving at once as agents send
  ASSERT_TRUE(AwaitEvent(v1::PlaybackEvent::STARTED, "t1", 5000ms));
  int64_t started = bus::MonoNs();
  RunUntil(
      loop_, [&] { return bus::MonoNs() - started > 500'000'000; }, 1000ms);
  Interrupt("");
  ASSERT_TRUE(AwaitEvent(v1::PlaybackEvent::FLUSHED, "t1", 2000ms));
  const auto* flushed = FindEvent(v1::PlaybackEvent::FLUSHED, "t1");
  std::cout << "FLUSHED latency (WAV sink, real time): " << flushed->latency_ns() / 1e6 << " ms\n";
  // Fade 5 ms + one 10 ms period ≈ 15 ms; the bound is the product's 40 ms
  // (a normal-priority timer on a busy machine may tick a period late).
  EXPECT_LE(flushed->latency_ns(), 40'000'000);
  EXPECT_EQ(FindEvent(v1::PlaybackEvent::DRAINED, "t1"), nullptr);

  actors_["playback"].Stop(SIGTERM, 5000ms);
  audio::PcmBuffer wav;
  ASSERT_TRUE(audio::ReadWav(out, &wav).ok());
  // About 0.5 s played, then a fade: far less than the 1.8 s sent.
  double seconds = double(wav.frames()) / 16000;
  EXPECT_GT(seconds, 0.4);
  EXPECT_LT(seconds, 0.8);
  // The last 10 ms are the end of the fade and silence: no cut-off click.
  size_t n = wav.samples.size();
  EXPECT_LT(std::abs(wav.samples[n - 1]), 200);
  EXPECT_GT(Rms(wav.samples, 1600, n - 320), 5000);
}

TEST_F(AudioWavTest, PromptsAreMixedOverSpeechAndAudioRefSaysWhatWasPlayed) {
  const std::string out = dir_.File("reply.wav");
  WriteConfig("playback:\n  sink: wav\n  wav: {path: " + out + ", realtime: true}\n");
  StartBroker();
  StartActor("playback");
  std::vector<std::pair<v1::AudioFrame, int64_t>> ref;
  // Paired with when playback published it (not when the test got to it).
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioRef, [&](const auto& m) {
    ref.push_back({m.msg, m.header.mono_ns()});
  });
  Connect();
  ASSERT_TRUE(AwaitBeat("playback"));
  v1::DialogCommand c;
  c.mutable_play_prompt()->set_name("wake");
  Command(c);
  c.mutable_play_prompt()->set_name("no-such-prompt");
  Command(c);
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return FreshBeat("playback") && Extra("playback", "prompts") == 1; }, 3000ms));
  EXPECT_EQ(Extra("playback", "unknown_prompts"), 1);
  // audio.ref carries the chime, stamped with when it plays, 16 kHz mono 20
  // ms, then says silence again: the whole chime has been played (and
  // written) before playback is stopped.
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        bool loud = false;
        for (auto& [f, at] : ref) {
          if (!f.synthetic_silence() && Rms(Pcm(f)) > 2000) loud = true;
          else if (loud && f.synthetic_silence()) return true;  // not the gap inside the chime
        }
        return false;
      },
      3000ms));
  for (auto& [f, at] : ref) {
    EXPECT_EQ(f.sample_rate(), 16000u);
    EXPECT_EQ(f.channels(), 1u);
    EXPECT_EQ(f.pcm().size(), 640u);
    EXPECT_LT(std::abs(f.play_ns() - at), 100'000'000) << "play_ns far from now for a WAV sink";
  }
  actors_["playback"].Stop(SIGTERM, 5000ms);
  audio::PcmBuffer wav;
  ASSERT_TRUE(audio::ReadWav(out, &wav).ok());
  // The WAV holds the chime (about a quarter second), not idle silence.
  EXPECT_GT(wav.frames(), 16000u / 5);
  EXPECT_LT(wav.frames(), 16000u / 2);
  EXPECT_GT(Rms(wav.samples), 2000);
}

TEST_F(AudioWavTest, CaptureWavSourceIsPacedInRealTimeThenSilence) {
  // 0.6 s of a 48 kHz stereo tone: converted to 16 kHz mono.
  audio::PcmBuffer in;
  in.sample_rate = 48000;
  in.channels = 2;
  for (int i = 0; i < 28800; ++i) {
    int16_t s = int16_t(8000 * std::sin(2 * M_PI * 300 * i / 48000.0));
    in.samples.push_back(s);
    in.samples.push_back(s);
  }
  ASSERT_TRUE(audio::WriteWav(dir_.File("in.wav"), in).ok());
  WriteConfig("capture:\n  source: wav\n  wav: {path: " + dir_.File("in.wav") + ", realtime: true, at_end: silence}\n");
  std::vector<std::pair<v1::AudioFrame, int64_t>> frames;
  std::vector<int64_t> sent;  // when capture published each frame
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioMic, [&](const auto& m) {
    frames.push_back({m.msg, m.header.origin_ns()});
    sent.push_back(m.header.mono_ns());
  });
  StartBroker();
  Connect();
  StartActor("capture");
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return frames.size() >= 95; }, 15000ms))
      << ReadFile(Log("capture"));
  // 50 frames went out over about a second: real time (capture's publish
  // stamps, so a stall of the test itself does not enter).
  const double secs = double(sent[94] - sent[44]) / 1e9;
  EXPECT_NEAR(secs, 1.0, 0.25);
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto& f = frames[i].first;
    EXPECT_EQ(f.sample_rate(), 16000u);
    EXPECT_EQ(f.channels(), 1u);
    EXPECT_EQ(f.sample_index(), frames[0].first.sample_index() + i * 320) << i;
    EXPECT_EQ(f.synthetic_silence(), f.sample_index() >= 9600) << i;
    if (i > 0) {
      EXPECT_NEAR(double(frames[i].second - frames[i - 1].second), 20e6, 1e5);
    }
  }
  // The tone (not its start, which a late subscription may miss), then silence.
  for (const auto& [f, origin] : frames) {
    if (f.sample_index() == 20 * 320) {
      EXPECT_GT(Rms(Pcm(f)), 4500);
    }
  }
  EXPECT_EQ(Rms(Pcm(frames.back().first)), 0);
}

TEST_F(AudioWavTest, OfflineCaptureRunsFasterThanRealTimeAndExits) {
  audio::PcmBuffer in;
  in.sample_rate = 16000;
  for (int i = 0; i < 16000 * 3; ++i) in.samples.push_back(int16_t(i % 100));
  ASSERT_TRUE(audio::WriteWav(dir_.File("in.wav"), in).ok());
  WriteConfig("capture:\n  source: wav\n  wav: {path: " + dir_.File("in.wav") + ", realtime: false, at_end: exit}\n");
  size_t frames = 0;
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioMic, [&](const auto&) { ++frames; });
  StartBroker();
  Connect();
  // The broker sees our subscription before capture starts publishing.
  RunUntil(
      loop_, [] { return false; }, 200ms);
  const int64_t t0 = bus::MonoNs();
  StartActor("capture");
  EXPECT_EQ(actors_["capture"].Wait(10000ms), 0) << ReadFile(Log("capture"));
  EXPECT_LT(double(bus::MonoNs() - t0) / 1e9, 2.5) << "3 s of audio took real time";
  // It waited for us to listen: every frame of the file arrived.
  RunUntil(
      loop_, [&] { return frames >= 150; }, 2000ms);
  EXPECT_EQ(frames, 150u);
  EXPECT_NE(ReadFile(Log("capture")).find("end of"), std::string::npos);
}

}  // namespace
}  // namespace vb::testing
