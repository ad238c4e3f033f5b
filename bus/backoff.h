// Backoff: the restart and reconnect policy of the Paranoid Pirate pattern —
// the first retry after `initial`, doubling up to `max`, optionally with
// jitter (so many clients don't retry in lockstep), and back to `initial`
// once the thing has been healthy for `reset_after`.
//
// Pure arithmetic on times passed in: unit-testable without clocks.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace vb::bus {

class Backoff {
 public:
  using Duration = std::chrono::milliseconds;
  Backoff(Duration initial = Duration(1000), Duration max = Duration(32000),
          Duration reset_after = Duration(60000), double jitter = 0.0)
      : initial_(initial), max_(max), reset_after_(reset_after), jitter_(jitter), next_(initial) {}

  // The thing failed after running for `ran`. Returns the delay before the
  // next attempt.
  Duration Failed(Duration ran) {
    if (ran >= reset_after_) next_ = initial_;
    Duration d = next_;
    next_ = std::min(max_, next_ * 2);
    ++failures_;
    if (jitter_ > 0) {
      std::uniform_real_distribution<double> u(1.0 - jitter_, 1.0 + jitter_);
      d = Duration(int64_t(double(d.count()) * u(rng_)));
    }
    return d;
  }
  // Succeeded (e.g. a reconnect worked): the next failure starts from the
  // beginning only if it comes after `reset_after` (see Failed()).
  void Reset() { next_ = initial_; }
  uint64_t failures() const { return failures_; }
  Duration next() const { return next_; }

 private:
  Duration initial_, max_, reset_after_;
  double jitter_;
  Duration next_;
  uint64_t failures_ = 0;
  std::minstd_rand rng_{std::random_device{}()};
};

}  // namespace vb::bus
