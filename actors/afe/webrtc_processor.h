// WebrtcProcessor: the webrtc-audio-processing (0.3) backend. Its AEC
// estimates the remaining delay itself (delay-agnostic mode) and uses the
// extended filter; noise suppression, adaptive digital AGC with limiter and a
// high-pass filter follow in the same module. The tail is fixed by the
// library (no tail_ms), and it has no dereverberation.
#pragma once

#include <memory>

#include "actors/afe/echo_processor.h"

namespace vb::afe {

class WebrtcProcessor : public EchoProcessor {
 public:
  // Use Create(): the library can refuse a configuration.
  static Status Create(const ProcessorConfig& config, std::unique_ptr<EchoProcessor>* out);
  ~WebrtcProcessor() override;

  const char* name() const override { return "webrtc"; }
  size_t block_samples() const override { return block_; }
  void Process(const int16_t* mic, const int16_t* ref, int16_t* out) override;
  void Reset() override;

 private:
  struct Impl;
  explicit WebrtcProcessor(const ProcessorConfig& config);
  Status Init();
  ProcessorConfig config_;
  size_t block_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vb::afe
