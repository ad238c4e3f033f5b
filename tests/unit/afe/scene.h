// A small deterministic echo scene shared by the afe unit tests: a
// speech-like far end through a short room with a delay, mild near-end noise,
// and optionally a near-end talker.
#pragma once

#include <vector>

#include "actors/afe/echo_sim.h"

namespace vb::afe::testing {

struct Scene {
  std::vector<float> far, echo, near, mic;  // float, full scale 1.0
  int rate = 16000;
};

inline Scene MakeScene(double seconds, double delay_ms, bool near_talk, uint32_t seed = 7) {
  Scene s;
  size_t n = size_t(seconds * s.rate);
  s.far = sim::Babble(n, s.rate, 0.1, seed);
  auto room = sim::RoomImpulse(s.rate, 0.15, 3.0, seed + 1);
  s.echo = sim::Delay(sim::Convolve(s.far, room), size_t(delay_ms * s.rate / 1000));
  sim::Scale(&s.echo, 0.5);
  s.near = near_talk ? sim::Babble(n, s.rate, 0.05, seed + 2) : std::vector<float>(n, 0.0f);
  auto noise = sim::Noise(n, 0.0005, seed + 3);  // about -66 dBFS
  s.mic.resize(n);
  for (size_t i = 0; i < n; ++i) s.mic[i] = s.echo[i] + s.near[i] + noise[i];
  return s;
}

}  // namespace vb::afe::testing
