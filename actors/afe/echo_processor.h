// EchoProcessor: one acoustic front-end backend — echo cancellation, residual
// echo and noise suppression, automatic gain — behind one small interface, so
// the actor, the tests and the bench treat speexdsp, webrtc-audio-processing
// and the bypass alike. A processor works on blocks of 16 kHz mono s16 (10
// or 20 ms, ProcessorConfig::block_ms; webrtc always 10 ms):
// the microphone block and the reference block that left the speaker at the
// same time (aligned by the caller, see ReferenceAligner); whatever delay is
// left is the echo path the backend must learn within its tail.
//
// Not thread-safe; one processor per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bus/status.h"

namespace vb::afe {

struct ProcessorConfig {
  int sample_rate = 16000;
  bool aec = true;    // linear echo canceller + residual echo suppression
  int tail_ms = 300;  // speex: echo path length the filter covers
  // speex, bypass: ms per Process call, 10 or 20 (webrtc: always 10). 20 ms
  // costs speex about a fifth less CPU, and cancels more after double talk,
  // but converges up to 0.6 s later on long delays (README): not the default.
  int block_ms = 10;
  std::string echo_suppression = "moderate";  // low | moderate | high (residual echo)
  bool noise_suppression = true;
  std::string ns_level = "moderate";  // low | moderate | high | very_high
  bool agc = true;
  int agc_target_dbfs = -18;  // speech level the AGC aims for
  int agc_max_gain_db = 20;   // most gain the AGC may add
  bool dereverb = false;      // speex only
  bool high_pass = true;      // webrtc only: removes DC and rumble
};

// The names accepted by MakeProcessor, in order of preference.
const std::vector<std::string>& BackendNames();

class EchoProcessor {
 public:
  virtual ~EchoProcessor() = default;
  virtual const char* name() const = 0;
  // Samples per block (block_ms, or 10 ms for webrtc, at the configured rate).
  virtual size_t block_samples() const = 0;
  // mic, ref: block_samples() each (ref all zeros when nothing played);
  // out may alias mic.
  virtual void Process(const int16_t* mic, const int16_t* ref, int16_t* out) = 0;
  // Forget the learnt echo path and noise estimate (e.g. after a device change).
  virtual void Reset() = 0;
  // Blocks on which the echo canceller was not run because the reference
  // had been silent for longer than its tail (speex; others never skip).
  virtual uint64_t idle_blocks() const { return 0; }
};

// Checks `config` (ranges, choice values) and builds the named backend.
Status MakeProcessor(const std::string& backend, const ProcessorConfig& config, std::unique_ptr<EchoProcessor>* out);

// Shared by backends: validates what every backend relies on.
Status ValidateProcessorConfig(const ProcessorConfig& config);

}  // namespace vb::afe
