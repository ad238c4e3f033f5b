// Backoff: the one restart and reconnect delay policy of voicebus (the
// Paranoid Pirate pattern) — the first retry after `initial`, doubling up to
// `max`, optionally with ±jitter (so a fleet of devices does not retry in
// lockstep), and back to `initial` after Reset() or once the thing has run
// healthy for `reset_after` before failing again. The launcher's crash loop,
// vb-session's reconnects and the PCM pump's device reopening all use it.
//
// Part of vb_base (no ZeroMQ). Pure arithmetic on durations passed in:
// unit-testable without clocks; with a seed the jitter is reproducible.
// Not thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace vb {

class Backoff {
 public:
  using Duration = std::chrono::milliseconds;
  static constexpr Duration kNeverReset = Duration::max();

  // jitter is clamped to [0, 1]; seed 0 draws one from std::random_device.
  Backoff(Duration initial = Duration(1000), Duration max = Duration(32000), Duration reset_after = Duration(60000),
          double jitter = 0.0, uint64_t seed = 0)
      : initial_(initial),
        max_(std::max(initial, max)),
        reset_after_(reset_after),
        jitter_(std::clamp(jitter, 0.0, 1.0)),
        next_(initial),
        rng_(seed ? seed : uint64_t(std::random_device{}()) << 32 ^ std::random_device{}()) {}

  // The thing failed after running for `ran`. Returns the delay before the
  // next attempt (never below 1 ms when jittered).
  Duration Failed(Duration ran) {
    if (ran >= reset_after_) next_ = initial_;
    Duration d = next_;
    next_ = next_ > max_ / 2 ? max_ : std::min(max_, next_ * 2);
    ++failures_;
    if (jitter_ > 0) {
      std::uniform_real_distribution<double> u(1.0 - jitter_, 1.0 + jitter_);
      d = Duration(std::max<int64_t>(1, int64_t(double(d.count()) * u(rng_))));
    }
    return d;
  }
  // Another attempt failed at once (a reconnect refused): the next delay.
  Duration Next() { return Failed(Duration(0)); }
  // It worked (a reconnect succeeded, a device reopened): the next failure
  // waits `initial` again.
  void Reset() { next_ = initial_; }
  uint64_t failures() const { return failures_; }
  // The delay the next failure gets, before jitter.
  Duration next() const { return next_; }

 private:
  Duration initial_, max_, reset_after_;
  double jitter_;
  Duration next_;
  uint64_t failures_ = 0;
  std::mt19937_64 rng_;
};

namespace bus {
using vb::Backoff;  // its earlier home
}  // namespace bus

}  // namespace vb
