// ReferenceAligner: the mic block captured at t must read the reference that
// left the speaker at t − bulk delay, whatever the arrival order and jitter.
#include "actors/afe/reference_aligner.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace vb::afe {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = 1'000'000 * kMs;  // an arbitrary monotonic time

// A reference frame whose sample values count its grid position (mod 30000),
// so a read tells exactly which instant it came from.
std::vector<int16_t> Ramp(int64_t first, size_t n) {
  std::vector<int16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = int16_t(1 + (first + int64_t(i)) % 30000);
  return v;
}

TEST(ReferenceAligner, MicReadsTheReferencePlayedWhenItWasCaptured) {
  AlignerConfig cfg;
  ReferenceAligner a(cfg);
  // 1 s of reference, published well ahead of the mic (as playback does).
  for (int k = 0; k < 50; ++k) {
    auto f = Ramp(k * 320, 320);
    a.Push(kT0 + k * 20 * kMs, f.data(), f.size());
  }
  std::vector<int16_t> out(320);
  a.Fetch(kT0 + 100 * kMs, 320, out.data());  // 100 ms in = sample 1600
  EXPECT_EQ(out[0], Ramp(1600, 1)[0]);
  EXPECT_EQ(out[319], Ramp(1919, 1)[0]);
  EXPECT_TRUE(a.last_fetch_had_reference());
  EXPECT_EQ(a.counters().ref_gap, 0u);
  EXPECT_EQ(a.counters().lead_us, 900'000 - 20'000);
}

TEST(ReferenceAligner, BulkDelayShiftsThePairing) {
  AlignerConfig cfg;
  cfg.bulk_delay_ms = 30;
  ReferenceAligner a(cfg);
  for (int k = 0; k < 10; ++k) {
    auto f = Ramp(k * 320, 320);
    a.Push(kT0 + k * 20 * kMs, f.data(), f.size());
  }
  std::vector<int16_t> out(320);
  a.Fetch(kT0 + 100 * kMs, 320, out.data());
  EXPECT_EQ(out[0], Ramp(1600 - 480, 1)[0]);  // 30 ms = 480 samples earlier
}

TEST(ReferenceAligner, JitterWithinToleranceKeepsStreamsContiguous) {
  AlignerConfig cfg;
  cfg.tolerance_ms = 4;
  ReferenceAligner a(cfg);
  const int64_t jitter[] = {0, 3, -2, 1, -3, 2, 0, 3, -1, -3};
  std::vector<int16_t> out(320);
  for (int k = 0; k < 200; ++k) {
    auto f = Ramp(k * 320, 320);
    a.Push(kT0 + k * 20 * kMs + jitter[k % 10] * kMs, f.data(), f.size());
    if (k >= 5) {
      int m = k - 5;  // mic 100 ms behind, with its own jitter
      a.Fetch(kT0 + m * 20 * kMs - jitter[(k + 5) % 10] * kMs, 320, out.data());
      ASSERT_EQ(out[0], Ramp(m * 320, 1)[0]) << "frame " << m;
      ASSERT_EQ(out[319], Ramp(m * 320 + 319, 1)[0]) << "frame " << m;
    }
  }
  EXPECT_EQ(a.counters().ref_jumps, 0u);
  EXPECT_EQ(a.counters().mic_jumps, 0u);
  EXPECT_EQ(a.counters().ref_gap, 0u);
}

TEST(ReferenceAligner, LostReferenceFrameReadsSilenceAndIsCounted) {
  ReferenceAligner a(AlignerConfig{});
  for (int k = 0; k < 10; ++k) {
    if (k == 4) continue;  // lost on the bus
    auto f = Ramp(k * 320, 320);
    a.Push(kT0 + k * 20 * kMs, f.data(), f.size());
  }
  EXPECT_EQ(a.counters().ref_jumps, 1u);  // frame 5 is 20 ms past where 4 would have ended
  std::vector<int16_t> out(320);
  a.Fetch(kT0 + 80 * kMs, 320, out.data());
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](int16_t v) { return v == 0; }));
  EXPECT_EQ(a.counters().ref_gap, 320u);
  a.Fetch(kT0 + 100 * kMs, 320, out.data());
  EXPECT_EQ(out[0], Ramp(1600, 1)[0]);  // back on the stamps after the loss
}

TEST(ReferenceAligner, SilenceWhileNothingPlaysIsNotAGap) {
  ReferenceAligner a(AlignerConfig{});
  std::vector<int16_t> out(320);
  for (int m = 0; m < 10; ++m) a.Fetch(kT0 + m * 20 * kMs, 320, out.data());
  // Playback starts 100 ms ahead of the mic, after a pause.
  for (int k = 15; k < 30; ++k) {
    auto f = Ramp(k * 320, 320);
    a.Push(kT0 + k * 20 * kMs, f.data(), f.size());
  }
  for (int m = 10; m < 20; ++m) a.Fetch(kT0 + m * 20 * kMs, 320, out.data());
  EXPECT_EQ(out[0], Ramp(19 * 320, 1)[0]);
  EXPECT_EQ(a.counters().ref_gap, 0u);
  EXPECT_EQ(a.counters().ref_jumps, 0u);
  EXPECT_EQ(a.counters().ref_spans, 1u);
}

TEST(ReferenceAligner, LateReferenceIsCountedNotPlayedIntoThePast) {
  ReferenceAligner a(AlignerConfig{});
  std::vector<int16_t> out(320);
  auto f0 = Ramp(0, 320);
  a.Push(kT0, f0.data(), 320);
  a.Fetch(kT0, 320, out.data());
  a.Fetch(kT0 + 20 * kMs, 320, out.data());  // no reference yet for 20..40 ms
  EXPECT_EQ(a.counters().lead_us, -20'000);
  auto f1 = Ramp(320, 320);
  a.Push(kT0 + 20 * kMs, f1.data(), 320);  // arrives after its mic block
  EXPECT_EQ(a.counters().ref_late, 320u);
}

TEST(ReferenceAligner, ReferenceFarAheadOverwritesAndIsCounted) {
  AlignerConfig cfg;
  cfg.capacity_ms = 200;
  ReferenceAligner a(cfg);
  std::vector<int16_t> out(320);
  a.Fetch(kT0 - 20 * kMs, 320, out.data());
  for (int k = 0; k < 20; ++k) {  // 400 ms ahead into a 200 ms ring
    auto f = Ramp(k * 320, 320);
    a.Push(kT0 + k * 20 * kMs, f.data(), f.size());
  }
  EXPECT_GT(a.counters().ref_overrun, 0u);
}

}  // namespace
}  // namespace vb::afe
