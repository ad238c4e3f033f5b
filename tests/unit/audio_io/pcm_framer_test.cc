// PcmFramer: conversion to 16 kHz mono, framing, capture timestamps with the
// device delay accounted, sample_index jumps after a loss, reference channel.
#include "actors/common/pcm_framer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace vb::audio {
namespace {

struct Got {
  v1::AudioFrame frame;
  int64_t origin;
};

class FramerTest : public ::testing::Test {
 protected:
  void Init(PcmFormat in, FramerConfig c = {}) {
    ASSERT_TRUE(framer_.Init(in, c, [this](const v1::AudioFrame& f, int64_t o) { got_.push_back({f, o}); }).ok());
  }
  std::vector<int16_t> Samples(size_t i) {
    const auto& pcm = got_[i].frame.pcm();
    std::vector<int16_t> v(pcm.size() / 2);
    memcpy(v.data(), pcm.data(), pcm.size());
    return v;
  }
  PcmFramer framer_;
  std::vector<Got> got_;
};

TEST_F(FramerTest, StereoAt48kBecomes16kMonoFramesOf20ms) {
  Init({48000, 2});
  std::vector<int16_t> in(480 * 2);
  int64_t t = 0;
  for (int block = 0; block < 100; ++block) {  // 1 s
    for (size_t i = 0; i < 480; ++i, ++t) {
      int16_t s = int16_t(10000 * std::sin(2 * M_PI * 500 * double(t) / 48000));
      in[2 * i] = s;
      in[2 * i + 1] = s;
    }
    framer_.Push(in.data(), 480, 1'000'000'000 + int64_t(block + 1) * 10'000'000, 0);
  }
  ASSERT_GE(got_.size(), 49u);
  ASSERT_LE(got_.size(), 50u);
  for (size_t i = 0; i < got_.size(); ++i) {
    EXPECT_EQ(got_[i].frame.sample_rate(), 16000u);
    EXPECT_EQ(got_[i].frame.channels(), 1u);
    EXPECT_EQ(got_[i].frame.pcm().size(), 640u);
    EXPECT_EQ(got_[i].frame.sample_index(), i * 320);
    EXPECT_EQ(got_[i].frame.reference_channel(), -1);
  }
  auto s = Samples(10);
  double e = 0;
  for (auto v : s) e += double(v) * v;
  EXPECT_NEAR(std::sqrt(e / double(s.size())), 10000 / std::sqrt(2.0), 500);
}

TEST_F(FramerTest, OriginIsTheCaptureTimeOfTheFirstSampleWithDelayAccounted) {
  Init({16000, 1});
  std::vector<int16_t> in(160);
  const int64_t t0 = 5'000'000'000;  // capture time of sample 0
  const int64_t delay = 320;         // 20 ms still in the device at each read
  for (int k = 0; k < 50; ++k) {
    // Read at the time the block's last sample + delay was captured, plus
    // wake-up lateness on some reads (which must not move the stamps).
    int64_t now = t0 + int64_t(k + 1) * 10'000'000 + delay * 62'500 + (k % 3 == 0 ? 3'000'000 : 0);
    framer_.Push(in.data(), 160, now, delay);
  }
  ASSERT_GE(got_.size(), 24u);
  for (size_t i = 0; i < got_.size(); ++i) {
    EXPECT_NEAR(double(got_[i].origin), double(t0 + int64_t(i) * 20'000'000), 100'000) << i;
    EXPECT_EQ(got_[i].frame.play_ns(), got_[i].origin);
  }
}

TEST_F(FramerTest, ATransientDelayOverestimateHealsWithinTwoSeconds) {
  // A sound server reporting 500 ms of delay for its first second (PulseAudio
  // does while it settles its latency), then the truth: 10 ms.
  Init({16000, 1});
  std::vector<int16_t> in(160);
  const int64_t t0 = 5'000'000'000;
  for (int k = 0; k < 500; ++k) {  // 5 s
    int64_t delay = k < 100 ? 8000 : 160;
    int64_t now = t0 + int64_t(k + 1) * 10'000'000 + 160 * 62'500;  // truly 10 ms behind
    framer_.Push(in.data(), 160, now, delay);
  }
  ASSERT_GE(got_.size(), 240u);
  for (size_t i = 175; i < got_.size(); ++i)  // from 3.5 s on
    EXPECT_NEAR(double(got_[i].origin), double(t0 + int64_t(i) * 20'000'000), 100'000) << i;
}

TEST_F(FramerTest, LossMakesTheSampleIndexJumpByTheTimeThatPassed) {
  Init({16000, 1});
  std::vector<int16_t> in(320);
  int64_t now = 1'000'000'000;
  for (int k = 0; k < 5; ++k) framer_.Push(in.data(), 320, now += 20'000'000, 0);
  framer_.Discontinuity();
  now += 100'000'000;  // 100 ms lost
  for (int k = 0; k < 5; ++k) framer_.Push(in.data(), 320, now += 20'000'000, 0);
  ASSERT_EQ(got_.size(), 10u);
  EXPECT_EQ(got_[4].frame.sample_index(), 4u * 320);
  EXPECT_NEAR(double(got_[5].frame.sample_index()), 5 * 320 + 1600, 2);
  EXPECT_NEAR(double(got_[5].origin - got_[4].origin), 120e6, 1e5);
  EXPECT_NEAR(double(framer_.samples_skipped()), 1600, 2);
}

TEST_F(FramerTest, HardwareReferenceRidesAsChannelOne) {
  FramerConfig c;
  c.reference_channel = 2;
  Init({16000, 3}, c);
  std::vector<int16_t> in(320 * 3);
  for (size_t i = 0; i < 320; ++i) {
    in[3 * i] = 100;
    in[3 * i + 1] = 300;   // mic = mean of channels 0 and 1
    in[3 * i + 2] = -777;  // the loopback
  }
  framer_.Push(in.data(), 320, 1'000'000'000, 0, false);
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].frame.channels(), 2u);
  EXPECT_EQ(got_[0].frame.reference_channel(), 1);
  auto s = Samples(0);
  EXPECT_EQ(s[0], 200);
  EXPECT_EQ(s[1], -777);
}

TEST_F(FramerTest, RejectsChannelsTheDeviceDoesNotHave) {
  FramerConfig c;
  c.reference_channel = 1;
  EXPECT_FALSE(framer_.Init({16000, 1}, c, [](auto&, int64_t) {}).ok());
  c.reference_channel = -1;
  c.mic_channel = 4;
  EXPECT_FALSE(framer_.Init({16000, 2}, c, [](auto&, int64_t) {}).ok());
}

}  // namespace
}  // namespace vb::audio
