// FrontEnd: format checks, channel extraction, block loop.
#include "actors/afe/front_end.h"

#include <algorithm>

#include "actors/common/resampler.h"

namespace vb::afe {

Status FrontEnd::Create(const FrontEndConfig& config, std::unique_ptr<FrontEnd>* out) {
  if (config.reference != "auto" && config.reference != "bus" && config.reference != "channel")
    return Status::Invalid("reference must be auto, bus or channel");
  if (config.aligner.sample_rate != config.processor.sample_rate)
    return Status::Invalid("aligner and processor rates differ");
  std::unique_ptr<EchoProcessor> p;
  if (Status s = MakeProcessor(config.backend, config.processor, &p); !s.ok()) return s;
  out->reset(new FrontEnd(config, std::move(p)));
  return Status::Ok();
}

FrontEnd::FrontEnd(const FrontEndConfig& config, std::unique_ptr<EchoProcessor> p)
    : config_(config),
      processor_(std::move(p)),
      aligner_(config.aligner),
      block_(processor_->block_samples()) {}

void FrontEnd::Reset() {
  processor_->Reset();
  aligner_.Reset();
}

Status FrontEnd::PushReference(const PcmView& ref, int64_t play_ns) {
  if (ref.sample_rate != config_.processor.sample_rate || ref.channels < 1 || ref.channels > 8 ||
      !ref.samples) {
    ++counters_.bad_ref;
    return Status::Invalid("reference frame: want " +
                           std::to_string(config_.processor.sample_rate) + " Hz, 1..8 channels");
  }
  ++counters_.ref_frames;
  ref_.clear();  // MixToMono appends
  audio::MixToMono(ref.samples, ref.frames, uint32_t(ref.channels), 0, uint32_t(ref.channels), &ref_);
  aligner_.Push(play_ns, ref_.data(), ref_.size());
  return Status::Ok();
}

Status FrontEnd::ProcessMic(const PcmView& mic, int reference_channel, int64_t capture_ns,
                            std::vector<int16_t>* out) {
  if (mic.sample_rate != config_.processor.sample_rate || mic.channels < 1 || mic.channels > 8 ||
      !mic.samples || mic.frames == 0 || mic.frames % block_ != 0) {
    ++counters_.bad_mic;
    return Status::Invalid("mic frame: want " + std::to_string(config_.processor.sample_rate) +
                           " Hz, 1..8 channels, a multiple of 10 ms");
  }
  bool hw_ref = reference_channel >= 0 && reference_channel < mic.channels && mic.channels > 1 &&
                config_.reference != "bus";
  int mic_channel = (hw_ref && reference_channel == 0) ? 1 : 0;
  ++counters_.mic_frames;
  mono_.clear();  // MixToMono appends
  audio::MixToMono(mic.samples, mic.frames, uint32_t(mic.channels), uint32_t(mic_channel), 1, &mono_);
  ref_.resize(mic.frames);
  bool any_ref = false;
  if (hw_ref) {
    ref_.clear();
    audio::MixToMono(mic.samples, mic.frames, uint32_t(mic.channels), uint32_t(reference_channel), 1,
                     &ref_);
    any_ref = std::any_of(ref_.begin(), ref_.end(), [](int16_t s) { return s != 0; });
  } else if (config_.reference == "channel") {
    std::fill(ref_.begin(), ref_.end(), 0);
  } else {
    aligner_.Fetch(capture_ns, mic.frames, ref_.data());
    any_ref = aligner_.last_fetch_had_reference();
  }
  out->resize(mic.frames);
  for (size_t off = 0; off < mic.frames; off += block_) {
    processor_->Process(mono_.data() + off, ref_.data() + off, out->data() + off);
    ++counters_.blocks;
    if (any_ref) ++counters_.blocks_with_ref;
  }
  return Status::Ok();
}

}  // namespace vb::afe
