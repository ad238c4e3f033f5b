// SpeexProcessor: the speexdsp backend. A multi-delay-block frequency domain
// adaptive filter (speex_echo_*) removes the linear echo; the preprocessor
// (speex_preprocess_*) linked to it suppresses the residual echo, the noise,
// reverberation (optional), and applies AGC. Its tail length is configurable,
// so it copes with an echo path whose delay is not known to the ms.
#pragma once

#include "actors/afe/echo_processor.h"

struct SpeexEchoState_;
struct SpeexPreprocessState_;

namespace vb::afe {

class SpeexProcessor : public EchoProcessor {
 public:
  explicit SpeexProcessor(const ProcessorConfig& config);
  ~SpeexProcessor() override;
  SpeexProcessor(const SpeexProcessor&) = delete;
  SpeexProcessor& operator=(const SpeexProcessor&) = delete;

  const char* name() const override { return "speex"; }
  size_t block_samples() const override { return block_; }
  void Process(const int16_t* mic, const int16_t* ref, int16_t* out) override;
  void Reset() override;

 private:
  void Create();
  void Destroy();
  ProcessorConfig config_;
  size_t block_;
  SpeexEchoState_* echo_ = nullptr;
  SpeexPreprocessState_* pre_ = nullptr;
  std::vector<int16_t> scratch_;
};

}  // namespace vb::afe
