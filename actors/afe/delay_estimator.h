// DelayEstimator: measures where the echo really sits relative to the
// reference the aligner pairs with each mic sample. Timestamps from two
// devices (or a sound server) can be off by a constant few ms either way; an
// echo that arrives before its paired reference is non-causal and no linear
// canceller can remove it. The estimator cross-correlates the mic against
// the reference, both decimated on the shared sample grid, over a range of
// lags; a lag seen twice in a row with a clear correlation peak is reported,
// and the front end moves its bulk delay so the echo lands a small guard
// inside the canceller's tail.
//
// Cost: one correlation (window × lags at the decimated rate, 4000 × 1200
// multiply-adds) per interval, about 0.5 ms of CPU. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vb::afe {

struct DelayEstimatorConfig {
  int sample_rate = 16000;
  int decimation = 8;        // 16 kHz → 2 kHz: enough for speech
  double window_s = 2.0;     // mic audio per correlation
  double interval_s = 1.0;   // how often to estimate
  double min_lag_ms = -150;  // echo up to this much before its paired reference
  double max_lag_ms = 450;   // … or this much after
  double min_corr = 0.35;    // peak normalised correlation to believe it
  double agree_ms = 2.0;     // two successive estimates this close confirm
};

class DelayEstimator {
 public:
  explicit DelayEstimator(const DelayEstimatorConfig& config);

  // Reference samples at grid positions pos … pos+n-1.
  void AddReference(int64_t pos, const int16_t* x, size_t n);
  // Mic samples paired with reference positions pos … pos+n-1.
  void AddMic(int64_t pos, const int16_t* x, size_t n);
  // True when a new confirmed estimate is ready: the echo in the mic trails
  // its paired reference by *lag_ms (negative: it comes before it).
  bool Poll(double* lag_ms, double* corr);
  // Forget the mic history (after the pairing moved).
  void RestartMic();

  double last_lag_ms() const { return last_lag_ms_; }
  double last_corr() const { return last_corr_; }
  uint64_t estimates() const { return estimates_; }

 private:
  struct Ring {
    std::vector<float> sum;
    std::vector<int64_t> bin;  // decimated position held by each slot
    void Init(size_t n);
    void Add(int64_t pos, const int16_t* x, size_t n, int decimation);
    float At(int64_t b) const;
    bool Has(int64_t b) const;
  };
  bool Correlate(double* lag_ms, double* corr);

  DelayEstimatorConfig config_;
  Ring mic_, ref_;
  int64_t mic_latest_ = INT64_MIN;  // highest mic bin seen
  int64_t next_at_ = INT64_MIN;     // mic bin at which to estimate next
  bool have_candidate_ = false;
  double candidate_ms_ = 0;
  double last_lag_ms_ = 0, last_corr_ = 0;
  uint64_t estimates_ = 0;
  std::vector<float> m_, r_;
};

}  // namespace vb::afe
