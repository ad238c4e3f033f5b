// Arbitration by signal (issue 16 item 3), with fake wake and speech
// reports: the device that hears the person best answers, whatever order
// the reports arrive in; a device heard alone waits at most the window.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "actors/control/arbiter.h"

namespace vb::control {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// 16 kHz s16le: `noise_db` of white noise throughout, a 1 kHz tone of
// `speech_db` (dBFS RMS) over [speech_from, speech_to) samples.
std::string Pcm(size_t samples, double noise_db, double speech_db, size_t speech_from, size_t speech_to,
                uint32_t seed = 1) {
  std::string out(samples * 2, '\0');
  const double noise_rms = 32768.0 * std::pow(10.0, noise_db / 20.0);
  const double tone_peak = 32768.0 * std::pow(10.0, speech_db / 20.0) * std::sqrt(2.0);
  uint32_t x = seed;
  for (size_t i = 0; i < samples; ++i) {
    x = x * 1664525u + 1013904223u;
    const double u = (double(x >> 8) / double(1 << 24)) * 2.0 - 1.0;  // uniform: RMS = 1/sqrt(3)
    double v = u * noise_rms * std::sqrt(3.0);
    if (i >= speech_from && i < speech_to) v += tone_peak * std::sin(2 * M_PI * 1000.0 * double(i) / 16000.0);
    const int16_t s = int16_t(std::clamp(v, -32768.0, 32767.0));
    std::memcpy(&out[2 * i], &s, 2);
  }
  return out;
}

// A wake report: 1 s of context, the phrase in its last 0.6 s.
Report Wake(const std::string& device, double noise_db, double speech_db, double score, Clock::time_point at,
            uint32_t seed = 1) {
  v1::WakeEvent w;
  w.set_context_start_sample(100000);
  w.set_start_sample(100000 + 6400);
  w.set_end_sample(100000 + 16000);
  w.set_context_pcm(Pcm(16000, noise_db, speech_db, 6400, 16000, seed));
  w.set_score(score);
  Report r;
  r.device = device;
  r.wake = true;
  r.score = score;
  r.signal = MeasureWake(w);
  r.at = at;
  r.wake_event = w;
  return r;
}

ArbiterOptions Two() {
  ArbiterOptions o;
  o.devices = 2;
  o.window = milliseconds(200);
  return o;
}

TEST(ArbiterTest, MeasuresSpeechAboveTheDevicesOwnNoiseFloor) {
  const Report r = Wake("kitchen", -50, -20, 0, Clock::now());
  EXPECT_NEAR(r.signal.level_db, -20, 1.0);
  EXPECT_NEAR(r.signal.floor_db, -50, 3.0);
  EXPECT_NEAR(r.signal.snr_db(), 30, 3.0);
  v1::VadEvent v;
  v.set_preroll_start_sample(0);
  v.set_sample_index(4800);
  v.set_preroll_pcm(Pcm(8000, -40, -25, 4800, 8000));
  EXPECT_NEAR(MeasureVad(v).snr_db(), 15, 3.0);
}

TEST(ArbiterTest, TheCloserDeviceWinsEvenWhenItsReportArrivesLast) {
  Arbiter a(Two());
  const auto t0 = Clock::now();
  // The office is farther (6 dB quieter over a noisier room) but its report is first.
  EXPECT_FALSE(a.Offer(Wake("office", -45, -26, -900, t0), t0));
  auto d = a.Offer(Wake("kitchen", -50, -20, -1500, t0 + milliseconds(80)), t0 + milliseconds(80));
  ASSERT_TRUE(d);  // both reported: no need to wait for the window
  EXPECT_EQ(d->chosen.device, "kitchen");
  ASSERT_EQ(d->stood_down.size(), 1u);
  EXPECT_EQ(d->stood_down[0].device, "office");
  EXPECT_EQ(d->waited, milliseconds(80));
  EXPECT_NE(d->why.find("kitchen"), std::string::npos);
}

TEST(ArbiterTest, ThreeDecibelsApartWithDifferentNoiseStillPicksTheBetterSignal) {
  for (int order = 0; order < 2; ++order) {
    Arbiter a(Two());
    const auto t0 = Clock::now();
    Report near = Wake("kitchen", -48, -22, -1000, t0, 7);  // 26 dB over its floor
    Report far = Wake("office", -50, -27, -1000, t0, 8);    // 23 dB over its floor
    std::optional<Decision> d;
    if (order == 0) {
      a.Offer(near, t0);
      d = a.Offer(far, t0 + milliseconds(5));
    } else {
      a.Offer(far, t0);
      d = a.Offer(near, t0 + milliseconds(5));
    }
    ASSERT_TRUE(d);
    EXPECT_EQ(d->chosen.device, "kitchen") << "order " << order;
  }
}

TEST(ArbiterTest, ADeviceHeardAloneWaitsAtMostTheWindow) {
  Arbiter a(Two());
  const auto t0 = Clock::now();
  EXPECT_FALSE(a.Offer(Wake("kitchen", -50, -20, -1000, t0), t0));
  ASSERT_TRUE(a.NextDeadline());
  EXPECT_EQ(*a.NextDeadline(), t0 + milliseconds(200));
  EXPECT_FALSE(a.Tick(t0 + milliseconds(199)));
  auto d = a.Tick(t0 + milliseconds(200));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->chosen.device, "kitchen");
  EXPECT_TRUE(d->stood_down.empty());
  EXPECT_EQ(d->waited, milliseconds(200));
  EXPECT_FALSE(a.NextDeadline());
}

TEST(ArbiterTest, WithOneDeviceTheWakeIsNotDelayedAtAll) {
  ArbiterOptions o;
  o.devices = 1;
  Arbiter a(o);
  const auto t0 = Clock::now();
  auto d = a.Offer(Wake("local", -50, -20, -1000, t0), t0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->waited, milliseconds(0));
}

TEST(ArbiterTest, ALateCopyOfTheSameUtteranceStandsDown) {
  Arbiter a(Two());
  const auto t0 = Clock::now();
  a.Offer(Wake("kitchen", -50, -20, -1000, t0), t0);
  ASSERT_TRUE(a.Tick(t0 + milliseconds(200)));
  // The office's report of the same phrase, stuck on its link: no new decision.
  EXPECT_FALSE(a.Offer(Wake("office", -50, -10, -500, t0 + milliseconds(250)), t0 + milliseconds(250)));
  EXPECT_FALSE(a.NextDeadline());
  EXPECT_EQ(a.late(), 1u);
  // Later, it is a new utterance.
  EXPECT_FALSE(a.Offer(Wake("office", -50, -20, -1000, t0 + milliseconds(900)), t0 + milliseconds(900)));
  auto d = a.Tick(t0 + milliseconds(1100));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->chosen.device, "office");
}

TEST(ArbiterTest, WithinTheTieTheHigherWakeScoreWins) {
  Arbiter a(Two());
  const auto t0 = Clock::now();
  a.Offer(Wake("kitchen", -50, -20, -3000, t0, 3), t0);
  auto d = a.Offer(Wake("office", -50, -20.3, -800, t0 + milliseconds(10), 4), t0 + milliseconds(10));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->chosen.device, "office");
}

}  // namespace
}  // namespace vb::control
