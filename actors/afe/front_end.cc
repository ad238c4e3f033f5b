// FrontEnd: format checks, channel extraction, block loop.
#include "actors/afe/front_end.h"

#include <algorithm>
#include <cmath>

#include "actors/common/resampler.h"

namespace vb::afe {

Status FrontEnd::Create(const FrontEndConfig& config, std::unique_ptr<FrontEnd>* out) {
  if (config.reference != "auto" && config.reference != "bus" && config.reference != "channel")
    return Status::Invalid("reference must be auto, bus or channel");
  if (config.aligner.sample_rate != config.processor.sample_rate ||
      config.estimator.sample_rate != config.processor.sample_rate)
    return Status::Invalid("aligner, estimator and processor rates differ");
  if (config.delay_guard_ms < 0 || config.delay_guard_ms > config.processor.tail_ms / 2.0)
    return Status::Invalid("delay_guard_ms must be between 0 and half of tail_ms");
  std::unique_ptr<EchoProcessor> p;
  if (Status s = MakeProcessor(config.backend, config.processor, &p); !s.ok()) return s;
  out->reset(new FrontEnd(config, std::move(p)));
  return Status::Ok();
}

FrontEnd::FrontEnd(const FrontEndConfig& config, std::unique_ptr<EchoProcessor> p)
    : config_(config),
      processor_(std::move(p)),
      aligner_(config.aligner),
      estimator_(config.estimator),
      uses_reference_(config.processor.aec && std::string(processor_->name()) != "bypass" &&
                      config.reference != "channel"),
      estimate_(config.delay_estimation && uses_reference_),
      gate_(config.echo_gate && config.processor.aec && std::string(processor_->name()) != "bypass"),
      gate_floor_(float(std::pow(10.0, -config.gate_depth_db / 20))),
      block_(size_t(config.processor.sample_rate / 100)),
      proc_block_(processor_->block_samples()),
      low_band_(config.processor.sample_rate, block_),
      prev_mic_(block_, 0),
      prev_ref_(block_, 0) {
  Reconverge();
}

void FrontEnd::FallBackTo10Ms() {
  // A mic frame of 10, 30, 50 … ms with a 20 ms backend block: the backend
  // starts afresh on 10 ms blocks (once; its learnt filter is lost).
  config_.processor.block_ms = 10;
  std::unique_ptr<EchoProcessor> p;
  if (!MakeProcessor(config_.backend, config_.processor, &p).ok()) return;  // validated at Create
  processor_ = std::move(p);
  proc_block_ = processor_->block_samples();
  ++counters_.block_fallbacks;
  Reconverge();
}

void FrontEnd::Reconverge() {
  // As long as the client VAD's hold-off after the agent starts speaking
  // (vb-control barge_in.client_vad_holdoff_ms: speex reaches 15 dB in
  // 2.1-2.4 s): 2.5 s of far-end blocks.
  reconverge_far_blocks_ = int(config_.processor.sample_rate * 5 / 2 / int(block_));
}

void FrontEnd::Reset() {
  processor_->Reset();
  aligner_.Reset();
  ref_env_db_ = mic_env_db_ = far_peak_db_ = ref_low_env_db_ = mic_low_env_db_ = -120;
  mic_floor_db_ = 0;
  std::fill(prev_mic_.begin(), prev_mic_.end(), 0);
  std::fill(prev_ref_.begin(), prev_ref_.end(), 0);
  erl_db_ = 20;
  gate_gain_ = 1;
  Reconverge();
}

namespace {
double BlockDbfs(const int16_t* x, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
  return 10 * std::log10(sum / double(std::max<size_t>(n, 1)) + 1e-3) - 90.309;
}
}  // namespace

void FrontEnd::Gate(const int16_t* mic, const int16_t* ref, const int16_t* ref_next, bool ref_late, int16_t* out) {
  constexpr double kDecayDbPerBlock = 2;  // a 300 ms echo tail falls 60 dB
  // The speaker has been playing and this block's reference has not come (a
  // loaded machine delayed playback's audio.ref): the canceller was given
  // silence, so any echo passed through it whole — the agent would hear
  // itself and interrupt. The far end is taken to be as loud as it was
  // lately (its slow peak: it may resume after a pause while we cannot see
  // it), and only a near end clearly above that echo passes.
  constexpr double kPeakDecayDbPerBlock = 0.05;  // 5 dB/s
  const bool blind = ref_late && far_peak_db_ > config_.gate_far_dbfs;
  double ref_db;
  if (blind) {
    ref_db = ref_env_db_ = std::max(ref_env_db_, far_peak_db_);
  } else {
    // The echo can reach the mic a few ms before its reference's stamp: look
    // one block ahead for the speaker starting.
    ref_db = BlockDbfs(ref, block_);
    if (ref_next) ref_db = std::max(ref_db, BlockDbfs(ref_next, block_));
    ref_env_db_ = std::max(ref_db, ref_env_db_ - kDecayDbPerBlock);
    far_peak_db_ = std::max(ref_db, far_peak_db_ - kPeakDecayDbPerBlock);
  }
  // What the mic heard lately: in the gaps between words the mic falls
  // faster than the canceller's residue (and the AGC lifts the residue).
  const double mic_db = BlockDbfs(mic, block_);
  mic_env_db_ = std::max(mic_db, mic_env_db_ - kDecayDbPerBlock);
  // The room's noise floor: the quietest the mic has been lately (follows
  // it down at once, up at 2 dB/s: a cue or a sentence barely moves it).
  mic_floor_db_ = std::min(mic_db, mic_floor_db_ + 0.02);
  const bool far = ref_env_db_ > config_.gate_far_dbfs;
  // How loud the echo is against its reference (the echo return): a slow
  // low tracker of mic - reference while the far end plays. A fresh device
  // assumes a loud echo (+20 dB) and learns down at 0.5 dB per block; it
  // rises back at 0.05 dB per block. A mic far louder than that echo is
  // the near end talking, and the gate must not touch it: with no echo path
  // (a headset, or a room the user speaks into from a second source) the
  // backend may still cut the near end by 10 dB or more in double talk,
  // and the gate then took 30 dB more — the user's voice was gone (seen:
  // mic -14 dBFS, cleaned -52 dBFS, no barge-in).
  constexpr double kErlDownDbPerBlock = 0.5, kErlUpDbPerBlock = 0.05, kNearEndMarginDb = 20, kVoiceOverFloorDb = 15;
  const double erl_now = mic_env_db_ - ref_env_db_;
  // Learned only while the speaker plays loud now (not in the envelope's
  // decay over a pause, where the mic has only the room's noise and would
  // teach a far too low echo return).
  if (!blind && ref_db > config_.gate_far_dbfs + 15)
    erl_db_ = erl_now < erl_db_ ? std::max(erl_now, erl_db_ - kErlDownDbPerBlock)
                                : std::min(erl_now, erl_db_ + kErlUpDbPerBlock);
  // The same test in a voice's low band (LowBand), against the same echo
  // return: a user talking over a cue with nothing there (the wake chime,
  // 1.3-3.5 kHz) is the near end even while the cue is the louder of the
  // two — with a fresh canceller the whole band test above cannot see them
  // (seen in e2e: "OK voice bus, what time is it?" said without a pause,
  // "what time" held down under the chime and its tail, the service heard
  // "it"). A reply's voice fills the band with its own echo: no change.
  // Measured only while the speaker played lately (nothing reads it else).
  bool near_end_low = false;
  if (far_peak_db_ > config_.gate_far_dbfs) {
    const double mic_low = low_band_.Dbfs(prev_mic_.data(), mic);
    mic_low_env_db_ = std::max(mic_low, mic_low_env_db_ - kDecayDbPerBlock);
    if (!blind) {
      double ref_low = low_band_.Dbfs(prev_ref_.data(), ref);
      if (ref_next) ref_low = std::max(ref_low, low_band_.Dbfs(ref, ref_next));
      ref_low_env_db_ = std::max(ref_low, ref_low_env_db_ - kDecayDbPerBlock);
      // A voice, not the room: the mic's own noise (a fan, a hum) has no
      // echo to be told from either, and a digital reference has no noise.
      near_end_low = mic_low_env_db_ - ref_low_env_db_ > erl_db_ + kNearEndMarginDb &&
                     mic_low_env_db_ > mic_floor_db_ + kVoiceOverFloorDb;
    } else {
      ref_low_env_db_ = std::max(ref_low_env_db_, far_peak_db_);  // as loud as lately, as above
    }
  } else {
    ref_low_env_db_ = mic_low_env_db_ = -120;
  }
  std::copy(mic, mic + block_, prev_mic_.begin());
  std::copy(ref, ref + block_, prev_ref_.begin());
  const bool near_end = erl_now > erl_db_ + kNearEndMarginDb || near_end_low;
  if (near_end_low && !(erl_now > erl_db_ + kNearEndMarginDb) && far) ++counters_.low_band_near_end_blocks;
  const bool cancelled = BlockDbfs(out, block_) < mic_env_db_ - config_.gate_erle_db;
  // A canceller started afresh (delay change) passes the echo nearly whole
  // at first: its output says nothing until it cancels again. Seen in CI:
  // the echo at -14 dBFS passed the gate as "double talk" ~0.8 s into the
  // first reply, right after the estimator moved the delay, and the
  // service's VAD cut the reply.
  bool reconverging = false;
  if (reconverge_far_blocks_ > 0 && far && !blind) reconverging = --reconverge_far_blocks_ > 0;
  // The canceller cannot make a block louder than what the mic heard plus
  // what the AGC may add: such a block is its own estimate of an echo that
  // is not there (a filter led astray by talk over the speaker, or an echo
  // path gone: a speaker unplugged or muted, a headset on, a null sink's
  // digital silence). Seen in vb-chaos: the reply came back out of a silent
  // mic at -55 dBFS and the service's VAD cut it. Its output is discarded:
  // what the mic heard is all there is (held down like residue unless the
  // near end talks).
  constexpr double kInventedMarginDb = 6;
  const double agc_db = config_.processor.agc ? config_.processor.agc_max_gain_db : 0;
  // While the speaker played lately (its slow peak: the filter's tail
  // rings on after the reference falls silent).
  if (far_peak_db_ > config_.gate_far_dbfs && BlockDbfs(out, block_) > mic_db + agc_db + kInventedMarginDb) {
    ++counters_.gated_blocks;
    ++counters_.invented_gated_blocks;
    gate_gain_ = near_end ? 1.0f : gate_floor_;
    for (size_t i = 0; i < block_; ++i)
      out[i] = int16_t(std::lround(std::clamp(float(mic[i]) * gate_gain_, -32768.0f, 32767.0f)));
    return;
  }
  const bool residue = far && !near_end && (blind || reconverging || cancelled);
  const float target = residue ? gate_floor_ : 1.0f;
  if (residue) ++counters_.gated_blocks;
  if (residue && blind) ++counters_.late_ref_gated_blocks;
  if (residue && reconverging && !cancelled) ++counters_.reconverge_gated_blocks;
  if (target == 1.0f && gate_gain_ == 1.0f) return;
  const float step = (target - gate_gain_) / float(block_);
  for (size_t i = 0; i < block_; ++i) {
    gate_gain_ += step;
    out[i] = int16_t(std::lround(std::clamp(float(out[i]) * gate_gain_, -32768.0f, 32767.0f)));
  }
  gate_gain_ = target;
}

bool FrontEnd::ReferenceReady(const PcmView& mic, int reference_channel, int64_t capture_ns) const {
  bool hw_ref =
      reference_channel >= 0 && reference_channel < mic.channels && mic.channels > 1 && config_.reference != "bus";
  if (hw_ref || !uses_reference_) return true;
  return aligner_.Covers(capture_ns, mic.frames, kLiveReferenceMs);
}

Status FrontEnd::PushReference(const PcmView& ref, int64_t play_ns) {
  if (ref.sample_rate != config_.processor.sample_rate || ref.channels < 1 || ref.channels > 8 || !ref.samples) {
    ++counters_.bad_ref;
    return Status::Invalid("reference frame: want " + std::to_string(config_.processor.sample_rate) +
                           " Hz, 1..8 channels");
  }
  ++counters_.ref_frames;
  ref_.clear();  // MixToMono appends
  audio::MixToMono(ref.samples, ref.frames, uint32_t(ref.channels), 0, uint32_t(ref.channels), &ref_);
  aligner_.Push(play_ns, ref_.data(), ref_.size());
  if (estimate_) estimator_.AddReference(aligner_.last_push_pos(), ref_.data(), ref_.size());
  return Status::Ok();
}

void FrontEnd::Estimate() {
  estimator_.AddMic(aligner_.last_fetch_pos(), mono_.data(), mono_.size());
  double lag_ms = 0, corr = 0;
  if (!estimator_.Poll(&lag_ms, &corr)) return;
  // The echo trails its paired reference by lag_ms. Within the band the
  // canceller copes (causal with some margin, not wasting half the tail)
  // leave it: every move costs a re-convergence. Outside, aim for the guard.
  const double guard = config_.delay_guard_ms;
  if (lag_ms >= guard / 2 && lag_ms <= std::max(guard, config_.processor.tail_ms / 2.0)) return;
  aligner_.SetBulkDelay(aligner_.bulk_delay_ms() + lag_ms - guard);
  estimator_.RestartMic();
  // What the canceller learnt sits at the wrong lag now; starting afresh
  // converges sooner than unlearning it (webrtc's delay search especially).
  processor_->Reset();
  ++counters_.delay_changes;
  Reconverge();
}

Status FrontEnd::ProcessMic(const PcmView& mic, int reference_channel, int64_t capture_ns, std::vector<int16_t>* out) {
  if (mic.sample_rate != config_.processor.sample_rate || mic.channels < 1 || mic.channels > 8 || !mic.samples ||
      mic.frames == 0 || mic.frames % block_ != 0) {
    ++counters_.bad_mic;
    return Status::Invalid("mic frame: want " + std::to_string(config_.processor.sample_rate) +
                           " Hz, 1..8 channels, a multiple of 10 ms");
  }
  bool hw_ref =
      reference_channel >= 0 && reference_channel < mic.channels && mic.channels > 1 && config_.reference != "bus";
  int mic_channel = (hw_ref && reference_channel == 0) ? 1 : 0;
  ++counters_.mic_frames;
  mono_.clear();  // MixToMono appends
  audio::MixToMono(mic.samples, mic.frames, uint32_t(mic.channels), uint32_t(mic_channel), 1, &mono_);
  ref_.resize(mic.frames);
  bool any_ref = false;
  size_t late_from = mic.frames;  // first sample whose reference came too late
  if (hw_ref) {
    ref_.clear();
    audio::MixToMono(mic.samples, mic.frames, uint32_t(mic.channels), uint32_t(reference_channel), 1, &ref_);
    any_ref = std::any_of(ref_.begin(), ref_.end(), [](int16_t s) { return s != 0; });
  } else if (config_.reference == "channel") {
    std::fill(ref_.begin(), ref_.end(), 0);
  } else {
    aligner_.Fetch(capture_ns, mic.frames, ref_.data());
    any_ref = aligner_.last_fetch_had_reference();
    late_from = aligner_.last_fetch_late_from(kLiveReferenceMs);
    if (estimate_) Estimate();
  }
  out->resize(mic.frames);
  if (mic.frames % proc_block_ != 0) FallBackTo10Ms();
  for (size_t at = 0; at < mic.frames; at += proc_block_)
    processor_->Process(mono_.data() + at, ref_.data() + at, out->data() + at);
  // The gate and the counters stay on 10 ms blocks whatever the backend's.
  for (size_t off = 0; off < mic.frames; off += block_) {
    if (gate_)
      Gate(mono_.data() + off, ref_.data() + off, off + 2 * block_ <= mic.frames ? ref_.data() + off + block_ : nullptr,
           off + block_ > late_from, out->data() + off);
    ++counters_.blocks;
    if (any_ref) ++counters_.blocks_with_ref;
  }
  return Status::Ok();
}

}  // namespace vb::afe
