// Frame-level voice detectors: each looks at one 20 ms frame of 16 kHz mono
// s16 audio and says how likely it is to contain speech (0..1). They know
// nothing of events or hysteresis (VadTracker adds those) so that several can
// be compared on the same data by the evaluation tool and chosen in config.
//
//   energy  our own: band-limited log energy against an adaptive noise floor
//   speex   the speexdsp preprocessor's VAD (its speech probability)
//   webrtc  the WebRTC VAD reached through AudioProcessing::voice_detection()
//
// Not thread-safe; one instance per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/status.h"

namespace vb::wakevad {

inline constexpr int kSampleRate = 16000;
inline constexpr int kFrameSamples = 320;  // 20 ms

class VoiceDetector {
 public:
  virtual ~VoiceDetector() = default;
  virtual std::string_view name() const = 0;
  // One frame of kFrameSamples samples; returns the speech probability.
  virtual float Process(std::span<const int16_t> frame) = 0;
  // Forget the stream (a discontinuity); adaptive state starts over.
  virtual void Reset() = 0;
};

struct DetectorOptions {
  // energy: dB above the noise floor where probability reaches 0.5, the
  // width of the soft step, and the level below which nothing is speech.
  double energy_margin_db = 9.0;
  double energy_slope_db = 2.0;
  double energy_min_dbfs = -55.0;
  // energy: how fast the floor may rise during sound (dB per second); it
  // falls at once to quieter frames.
  double energy_floor_rise_db_s = 2.0;
  // webrtc: 0 (very low likelihood of declaring voice) … 3 (high).
  int webrtc_likelihood = 2;
  // speex: probability thresholds of the preprocessor's own VAD (percent).
  int speex_prob_start = 35;
  int speex_prob_continue = 20;
};

// The names MakeDetector() accepts.
std::vector<std::string> DetectorNames();
// Builds a detector by name; Invalid status if unknown or it fails to start.
Status MakeDetector(std::string_view name, const DetectorOptions& options, std::unique_ptr<VoiceDetector>* out);

// Our own detector, exposed for its unit tests.
class EnergyDetector : public VoiceDetector {
 public:
  explicit EnergyDetector(const DetectorOptions& options);
  std::string_view name() const override { return "energy"; }
  float Process(std::span<const int16_t> frame) override;
  void Reset() override;
  double floor_db() const { return floor_db_; }
  double last_db() const { return last_db_; }

 private:
  DetectorOptions opt_;
  // Band limiting (≈100 Hz high-pass, ≈4 kHz low-pass): hum, rumble and hiss
  // carry energy but no speech.
  double hp_x1_ = 0, hp_y1_ = 0, lp_y1_ = 0;
  double floor_db_ = 0;
  double last_db_ = -100;
  bool primed_ = false;
};

}  // namespace vb::wakevad
