// The frame detectors: each must tell espeak speech from quiet noise, and
// ours must follow a stationary noise floor.
#include "actors/wakevad/voice_detector.h"

#include <gtest/gtest.h>

#include "tests/unit/wakevad/test_audio.h"

namespace vb::wakevad {
namespace {
using namespace test_audio;

// Fraction of frames in [from, to) samples the detector calls speech.
double SpeechFraction(VoiceDetector& d, const std::vector<int16_t>& pcm, size_t from, size_t to) {
  int frames = 0, speech = 0;
  d.Reset();
  for (size_t i = 0; i + kFrameSamples <= pcm.size(); i += kFrameSamples) {
    float p = d.Process(std::span<const int16_t>(pcm.data() + i, kFrameSamples));
    if (i >= from && i + kFrameSamples <= to) {
      ++frames;
      speech += p >= 0.5f ? 1 : 0;
    }
  }
  return frames ? double(speech) / frames : 0;
}

TEST(VoiceDetector, EveryDetectorSeparatesSpeechFromQuietNoise) {
  auto speech = Speak("the quick brown fox jumps over the lazy dog");
  ASSERT_GT(speech.size(), 16000u) << "espeak-ng / sox failed";
  std::vector<int16_t> pcm = Noise(4000, -65);
  const size_t speech_from = pcm.size();
  Append(&pcm, speech);
  const size_t speech_to = pcm.size();
  auto tail = Noise(1500, -65, 2);
  Append(&pcm, tail);
  // Mix low noise under the speech too, as a microphone would.
  auto under = Noise(int(speech.size() / 16), -65, 3);
  for (size_t i = 0; i < under.size(); ++i) pcm[speech_from + i] += under[i];

  for (const auto& name : DetectorNames()) {
    std::unique_ptr<VoiceDetector> d;
    ASSERT_TRUE(MakeDetector(name, {}, &d).ok()) << name;
    EXPECT_EQ(d->name(), name);
    // Skip the first 3 s: adaptive detectors learn the noise there (speex
    // takes the longest).
    double in_noise = SpeechFraction(*d, pcm, 48000, speech_from);
    double in_tail = SpeechFraction(*d, pcm, speech_to + 8000, pcm.size());
    double in_speech = SpeechFraction(*d, pcm, speech_from, speech_to);
    EXPECT_LT(in_noise, 0.1) << name;
    EXPECT_LT(in_tail, 0.1) << name;
    EXPECT_GT(in_speech, 0.5) << name;
  }
}

TEST(VoiceDetector, EnergyFloorFollowsStationaryNoise) {
  EnergyDetector d({});
  auto noise = Noise(4000, -35);
  float p = 1;
  for (size_t i = 0; i + kFrameSamples <= noise.size(); i += kFrameSamples)
    p = d.Process(std::span<const int16_t>(noise.data() + i, kFrameSamples));
  EXPECT_LT(p, 0.5f) << "loud but steady noise is not speech";
  EXPECT_GT(d.floor_db(), -50);
  // A voice 15 dB above that noise is.
  auto voice = Voiced(200, -20);
  for (size_t i = 0; i < voice.size(); i += kFrameSamples) {
    auto mixed = std::vector<int16_t>(voice.begin() + i, voice.begin() + i + kFrameSamples);
    for (int k = 0; k < kFrameSamples; ++k) mixed[k] += noise[i + k] / 2;
    p = d.Process(mixed);
  }
  EXPECT_GT(p, 0.5f);
}

TEST(VoiceDetector, UnknownNameIsRejected) {
  std::unique_ptr<VoiceDetector> d;
  EXPECT_FALSE(MakeDetector("magic", {}, &d).ok());
  EXPECT_EQ(d, nullptr);
}

}  // namespace
}  // namespace vb::wakevad
