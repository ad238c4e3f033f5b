// Histogram: percentiles of durations (or any positive values) with bounded
// memory — log-spaced buckets, 1 % relative resolution, from 0.1 µs to ~100 s.
// Used for handler timing in heartbeats and for latency in the sniffer.
#pragma once

#include <array>
#include <cstdint>

namespace vb::bus {

class Histogram {
 public:
  void Add(double value_us);
  // p in [0, 100]; 0 if empty.
  double Percentile(double p) const;
  double max() const { return max_; }
  uint64_t count() const { return count_; }
  void Reset();

 private:
  static constexpr int kBuckets = 2100;  // 1.01^2100 * 0.1 µs ≈ 1e8 µs
  static int Bucket(double v);
  static double Value(int bucket);
  std::array<uint32_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  double max_ = 0;
};

}  // namespace vb::bus
