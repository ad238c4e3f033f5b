// LowBand: the level of a signal between 100 and 700 Hz over its last two
// 10 ms blocks (a Blackman-windowed DFT of those bins only), for the echo
// gate's near-end test. A voice has most of its energy there (its pitch and
// first formant); the wake chime and other high cues have next to none, so
// a user talking over a cue stands out in this band even when the cue is
// louder than the voice over the whole spectrum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vb::afe {

class LowBand {
 public:
  // block: samples per 10 ms block at `sample_rate`.
  LowBand(int sample_rate, size_t block);
  // Mean power (dBFS, as BlockDbfs) of [prev, cur] in the band; prev may be
  // null (taken as silence).
  double Dbfs(const int16_t* prev, const int16_t* cur) const;

 private:
  static constexpr size_t kLanes = 16;  // bins computed (13 at 16 kHz: 100, 150 … 700 Hz)
  size_t block_;
  // Window × cos / sin, kLanes bins for each of 2 × block_ samples.
  std::vector<float> cos_, sin_;
  double scale_db_ = 0;  // so that a full-scale sine in the band reads about -3 dBFS
};

}  // namespace vb::afe
