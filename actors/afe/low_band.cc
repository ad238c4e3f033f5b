// LowBand (see low_band.h).
#include "actors/afe/low_band.h"

#include <cmath>

namespace vb::afe {

LowBand::LowBand(int sample_rate, size_t block) : block_(block) {
  const size_t n = 2 * block;
  const double hz_per_bin = double(sample_rate) / double(n);
  const size_t lo = size_t(std::ceil(100 / hz_per_bin)), hi = size_t(std::floor(700 / hz_per_bin));
  double wsum = 0;
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) {
    // Blackman: its side lobes fall below -58 dB, so a cue at 1.3 kHz or
    // above leaks nothing into the band that a voice could not beat.
    const double x = 2 * M_PI * double(i) / double(n - 1);
    w[i] = 0.42 - 0.5 * std::cos(x) + 0.08 * std::cos(2 * x);
    wsum += w[i];
  }
  // Laid out sample by sample, kLanes bins each (unused ones zero), so the
  // loop over bins vectorises.
  cos_.assign(n * kLanes, 0.0f);
  sin_.assign(n * kLanes, 0.0f);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = lo; k <= hi && k - lo < kLanes; ++k) {
      const double a = 2 * M_PI * double(k) * double(i) / double(n);
      cos_[i * kLanes + k - lo] = float(w[i] * std::cos(a));
      sin_[i * kLanes + k - lo] = float(w[i] * std::sin(a));
    }
  // A sine of amplitude A on a bin reads |X| = A * wsum / 2: scale so its
  // power reads A^2 / 2 (as a block's mean power would), in s16 units.
  scale_db_ = -20 * std::log10(wsum / 2);
}

namespace {
// Adds x[0..n) times the tables (c, s: `lanes` bins per sample) to re, im.
void Accumulate(const float* __restrict c, const float* __restrict s, const int16_t* __restrict x, size_t n,
                float* __restrict re, float* __restrict im, size_t lanes) {
  for (size_t i = 0; i < n; ++i, c += lanes, s += lanes) {
    const float v = float(x[i]);
    for (size_t k = 0; k < lanes; ++k) {
      re[k] += c[k] * v;
      im[k] += s[k] * v;
    }
  }
}
}  // namespace

double LowBand::Dbfs(const int16_t* prev, const int16_t* cur) const {
  alignas(64) float re[kLanes] = {}, im[kLanes] = {};
  if (prev) Accumulate(cos_.data(), sin_.data(), prev, block_, re, im, kLanes);
  Accumulate(cos_.data() + block_ * kLanes, sin_.data() + block_ * kLanes, cur, block_, re, im, kLanes);
  double power = 0;
  for (size_t k = 0; k < kLanes; ++k) power += double(re[k]) * re[k] + double(im[k]) * im[k];
  // Powers of the band's bins, summed (a sine spreads over ~3 of them, a
  // voice over all): as BlockDbfs, 0 dBFS is a full-scale square wave.
  return 10 * std::log10(power / 2 + 1e-3) + scale_db_ - 90.309;
}

}  // namespace vb::afe
