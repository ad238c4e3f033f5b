// SpeexProcessor: the speexdsp backend. A multi-delay-block frequency domain
// adaptive filter (speex_echo_*) removes the linear echo; the preprocessor
// (speex_preprocess_*) linked to it suppresses the residual echo, the noise,
// reverberation (optional), and applies AGC. Its tail length is configurable,
// so it copes with an echo path whose delay is not known to the ms.
//
// Idle canceller: once the reference has been digital silence for longer
// than the tail, every block of the filter's input history is zero and the
// canceller only passes the mic through its DC filter, yet it still costs
// its FFTs and filter update (about two thirds of this backend's CPU). Then
// it is not run: the mic gets a DC blocker of our own, the preprocessor is
// unlinked from it (no residual echo to suppress), and the learnt filter and
// its statistics stay as they were until the reference plays again, when
// the last idle blocks are replayed into it against silence (what it would
// have seen) and the next block goes through the canceller as before.
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
  uint64_t idle_blocks() const override { return idle_blocks_; }

 private:
  void Create();
  void Destroy();
  void RemoveDc(const int16_t* mic, int16_t* out);
  ProcessorConfig config_;
  size_t block_;
  SpeexEchoState_* echo_ = nullptr;
  SpeexPreprocessState_* pre_ = nullptr;
  std::vector<int16_t> scratch_;
  // The last idle mic blocks, replayed into the canceller when the speaker
  // starts again (see Process).
  static constexpr size_t kReplayBlocks = 16;
  std::vector<int16_t> zeros_, replay_;
  size_t replay_at_ = 0;  // the oldest block in replay_
  size_t idle_run_ = 0;   // blocks in the current idle stretch
  size_t tail_samples_;
  size_t silent_ref_ = 0;              // reference samples of digital silence in a row
  bool linked_ = false;                // the preprocessor reads the canceller's residual echo
  float dc_x_ = 0, dc_y_ = 0;          // DC blocker: last input, last output
  float last_mic_ = 0, last_out_ = 0;  // the last block's last mic and canceller output samples
  uint64_t idle_blocks_ = 0;
};

}  // namespace vb::afe
