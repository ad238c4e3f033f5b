// Cross-correlation delay estimate on decimated streams (see the header).
#include "actors/afe/delay_estimator.h"

#include <algorithm>
#include <cmath>

namespace vb::afe {
namespace {

// The correlation's inner product, the estimator's whole cost (window ×
// lags multiply-adds a second): eight float partial sums the compiler keeps
// in vector registers, added up in double. Exact enough to rank lags (the
// decimated samples are at most 32767, a window 4000 of them).
double Dot(const float* a, const float* b, size_t n) {
  constexpr size_t kLanes = 8;
  float acc[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k];
  double sum = 0;
  for (float v : acc) sum += v;
  for (; i < n; ++i) sum += double(a[i]) * b[i];
  return sum;
}

}  // namespace

void DelayEstimator::Ring::Init(size_t n) {
  sum.assign(n, 0.0f);
  bin.assign(n, INT64_MIN);
}

void DelayEstimator::Ring::Add(int64_t pos, const int16_t* x, size_t n, int decimation) {
  const int64_t cap = int64_t(sum.size());
  for (size_t i = 0; i < n; ++i) {
    int64_t p = pos + int64_t(i);
    int64_t b = p >= 0 ? p / decimation : -((-p + decimation - 1) / decimation);
    size_t slot = size_t(((b % cap) + cap) % cap);
    if (bin[slot] != b) {
      bin[slot] = b;
      sum[slot] = 0.0f;
    }
    sum[slot] += float(x[i]) / float(decimation);
  }
}

bool DelayEstimator::Ring::Has(int64_t b) const {
  const int64_t cap = int64_t(sum.size());
  return bin[size_t(((b % cap) + cap) % cap)] == b;
}

float DelayEstimator::Ring::At(int64_t b) const {
  const int64_t cap = int64_t(sum.size());
  size_t slot = size_t(((b % cap) + cap) % cap);
  return bin[slot] == b ? sum[slot] : 0.0f;
}

DelayEstimator::DelayEstimator(const DelayEstimatorConfig& config) : config_(config) {
  const double bins_per_s = double(config.sample_rate) / config.decimation;
  // The reference must reach back a window, the largest lag and the margin
  // kept behind the newest mic audio.
  size_t span = size_t(bins_per_s * (config.window_s + config.max_lag_ms / 1000.0 - config.min_lag_ms / 1000.0 + 1.0));
  mic_.Init(span);
  ref_.Init(span);
}

void DelayEstimator::AddReference(int64_t pos, const int16_t* x, size_t n) { ref_.Add(pos, x, n, config_.decimation); }

void DelayEstimator::AddMic(int64_t pos, const int16_t* x, size_t n) {
  mic_.Add(pos, x, n, config_.decimation);
  mic_latest_ = std::max(mic_latest_, (pos + int64_t(n)) / config_.decimation - 1);
}

void DelayEstimator::RestartMic() {
  mic_.Init(mic_.sum.size());
  mic_latest_ = next_at_ = INT64_MIN;
  have_candidate_ = false;
}

bool DelayEstimator::Poll(double* lag_ms, double* corr) {
  if (mic_latest_ == INT64_MIN) return false;
  const double bins_per_s = double(config_.sample_rate) / config_.decimation;
  if (next_at_ == INT64_MIN) {
    next_at_ = mic_latest_ + int64_t(bins_per_s * config_.window_s);  // fill a window first
    return false;
  }
  if (mic_latest_ < next_at_) return false;
  next_at_ = mic_latest_ + int64_t(bins_per_s * config_.interval_s);
  double lag = 0, c = 0;
  if (!Correlate(&lag, &c)) {
    have_candidate_ = false;
    return false;
  }
  ++estimates_;
  last_lag_ms_ = lag;
  last_corr_ = c;
  bool confirmed = have_candidate_ && std::abs(lag - candidate_ms_) <= config_.agree_ms;
  have_candidate_ = true;
  candidate_ms_ = lag;
  if (!confirmed) return false;
  *lag_ms = lag;
  *corr = c;
  return true;
}

bool DelayEstimator::Correlate(double* lag_ms, double* corr) {
  const double bins_per_s = double(config_.sample_rate) / config_.decimation;
  const int64_t window = int64_t(bins_per_s * config_.window_s);
  const int64_t lo = int64_t(std::floor(config_.min_lag_ms / 1000.0 * bins_per_s));
  const int64_t hi = int64_t(std::ceil(config_.max_lag_ms / 1000.0 * bins_per_s));
  // End the window early enough that the reference after it (negative lags)
  // has arrived.
  const int64_t end = mic_latest_ + 1 + std::min<int64_t>(lo, 0);
  const int64_t start = end - window;
  m_.resize(size_t(window));
  size_t present = 0;
  double mm = 0;
  for (int64_t i = 0; i < window; ++i) {
    present += mic_.Has(start + i);
    m_[size_t(i)] = mic_.At(start + i);
    mm += double(m_[size_t(i)]) * m_[size_t(i)];
  }
  if (present < size_t(window) * 9 / 10 || mm <= 0) return false;
  // r_[k] = reference at bin start - hi + k: every lag reads a slice of it.
  const int64_t rlen = window + (hi - lo);
  r_.resize(size_t(rlen));
  for (int64_t k = 0; k < rlen; ++k) r_[size_t(k)] = ref_.At(start - hi + k);
  // Sliding reference energy for the normalisation.
  double rr = 0;
  const int64_t first = hi - hi;  // offset of lag `hi` in r_
  for (int64_t i = 0; i < window; ++i) rr += double(r_[size_t(first + i)]) * r_[size_t(first + i)];
  double best = 0;
  int64_t best_lag = 0;
  for (int64_t lag = hi; lag >= lo; --lag) {
    const int64_t off = hi - lag;  // mic[i] pairs with r_[off + i]
    if (lag != hi) {
      double out = r_[size_t(off - 1)], in = r_[size_t(off + window - 1)];
      rr += in * in - out * out;
    }
    if (rr <= mm * 1e-6) continue;  // no reference here
    double n = Dot(m_.data(), &r_[size_t(off)], size_t(window)) / std::sqrt(mm * rr);
    if (n > best) {
      best = n;
      best_lag = lag;
    }
  }
  if (best < config_.min_corr) return false;
  *lag_ms = double(best_lag) * 1000.0 / bins_per_s;
  *corr = best;
  return true;
}

}  // namespace vb::afe
