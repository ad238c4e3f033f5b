// Log-bucket histogram (see stats.h).
#include "bus/stats.h"

#include <algorithm>
#include <cmath>

namespace vb::bus {
namespace {
const double kLogBase = std::log(1.01);
}

int Histogram::Bucket(double v) {
  if (v <= 0.1) return 0;
  int b = int(std::log(v / 0.1) / kLogBase);
  return std::clamp(b, 0, kBuckets - 1);
}

double Histogram::Value(int bucket) { return 0.1 * std::exp((bucket + 0.5) * kLogBase); }

void Histogram::Add(double value_us) {
  ++buckets_[Bucket(value_us)];
  ++count_;
  max_ = std::max(max_, value_us);
}

double Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  uint64_t rank = uint64_t(std::ceil(p / 100.0 * double(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen >= rank) return std::min(Value(b), max_);
  }
  return max_;
}

void Histogram::Reset() {
  buckets_.fill(0);
  count_ = 0;
  max_ = 0;
}

}  // namespace vb::bus
