// The vb-afe bus adapter (see afe_actor.h).
#include "actors/afe/afe_actor.h"

namespace vb::afe {
namespace {

// A frame's PCM as a view; false if the byte count does not fit the format.
bool View(const v1::AudioFrame& f, PcmView* v) {
  const std::string& pcm = f.pcm();
  if (f.channels() < 1 || f.channels() > 8 || f.sample_rate() == 0) return false;
  size_t bytes_per_frame = 2 * size_t(f.channels());
  if (pcm.empty() || pcm.size() % bytes_per_frame != 0) return false;
  v->samples = reinterpret_cast<const int16_t*>(pcm.data());
  v->frames = pcm.size() / bytes_per_frame;
  v->channels = int(f.channels());
  v->sample_rate = int(f.sample_rate());
  return true;
}

}  // namespace

void AfeActor::DeclareConfig(config::Section& s) {
  auto& p = config_.processor;
  auto& a = config_.aligner;
  s.Choice("backend", &config_.backend, "speex", BackendNames(),
           "speex (speexdsp AEC + preprocessor), webrtc (webrtc-audio-processing), or bypass "
           "(mic passed through untouched)");
  s.Choice("reference", &config_.reference, "auto", {"auto", "bus", "channel"},
           "echo reference: auto = the mic frame's hardware loopback channel if it has one, else "
           "audio.ref; bus = always audio.ref; channel = only the hardware channel");
  s.Key("bulk_delay_ms", &a.bulk_delay_ms, 0.0, {-500, 1000},
        "speaker-to-mic delay not in the timestamps: the mic sample captured at t meets the "
        "reference that left the speaker at t - bulk_delay_ms");
  s.Key("delay_estimation", &config_.delay_estimation, true,
        "measure where the echo really is (cross-correlation) and move the bulk delay when the "
        "stamps put it before its reference or deep in the tail");
  s.Key("delay_guard_ms", &config_.delay_guard_ms, 10.0, {0, 100},
        "where the estimator puts the echo: this far after its paired reference");
  s.Key("align_tolerance_ms", &a.tolerance_ms, 4.0, {0, 50},
        "timestamp jitter absorbed without re-aligning (larger steps re-anchor and are counted)");
  s.Key("ref_wait_ms", &ref_wait_ms_, 40, {0, 200},
        "longest a mic frame is held for reference that playback has not published yet "
        "(adds latency only while something plays and the reference is late)");
  s.Key("ref_buffer_ms", &a.capacity_ms, 2000, {200, 10000},
        "reference kept, in ms: how far playback may publish ahead of the speaker");
  s.Key("echo_cancel", &p.aec, true, "cancel the speaker's echo (off: noise suppression and AGC only)");
  s.Key("tail_ms", &p.tail_ms, 300, {20, 1000},
        "speex: echo path length covered (room reverberation + delay left after alignment); "
        "webrtc's is fixed");
  s.Key("block_ms", &p.block_ms, 10, {10, 20},
        "speex: canceller block, 10 or 20 ms (20: about a fifth less CPU, more ERLE after double talk, "
        "slower convergence on long delays; a mic frame not a multiple of it makes the front end fall "
        "back to 10 ms, logged); webrtc always works on 10 ms");
  s.Choice("echo_suppression", &p.echo_suppression, "moderate", {"low", "moderate", "high"},
           "residual echo suppression after the linear canceller");
  s.Key("echo_gate", &config_.echo_gate, true,
        "attenuate echo residue: while the speaker is audible, a 10 ms block from which the "
        "canceller removed at least gate_erle_db of what the mic heard (near-end speech is not "
        "removed, so it passes)");
  s.Key("gate_erle_db", &config_.gate_erle_db, 10.0, {1, 60},
        "echo_gate: cancellation (mic level - output level) that marks a block as echo residue");
  s.Key("gate_depth_db", &config_.gate_depth_db, 30.0, {0, 120}, "echo_gate: attenuation of a residue block");
  s.Key("gate_far_dbfs", &config_.gate_far_dbfs, -55.0, {-120, 0},
        "echo_gate: the speaker counts as audible while its reference (peak, decaying 2 dB per 10 ms) "
        "is above this");
  s.Key("noise_suppression", &p.noise_suppression, true, "suppress stationary noise");
  s.Choice("ns_level", &p.ns_level, "moderate", {"low", "moderate", "high", "very_high"},
           "noise suppression strength (speex: -10/-18/-25/-35 dB)");
  s.Key("agc", &p.agc, true, "automatic gain control towards agc_target_dbfs");
  s.Key("agc_target_dbfs", &p.agc_target_dbfs, -18, {-31, 0}, "speech level the AGC aims for");
  s.Key("agc_max_gain_db", &p.agc_max_gain_db, 20, {0, 90}, "most gain the AGC may apply");
  s.Key("dereverb", &p.dereverb, false, "speex: dereverberation");
  s.Key("high_pass", &p.high_pass, true, "webrtc: high-pass filter against DC and rumble");
  if (p.block_ms != 10 && p.block_ms != 20) s.Error("block_ms", "must be 10 or 20");
  if (config_.delay_guard_ms > p.tail_ms / 2.0)
    s.Error("delay_guard_ms", "must be at most half of tail_ms (" + std::to_string(p.tail_ms) + ")");
}

Status AfeActor::Configure(bus::Context& ctx) {
  if (Status st = FrontEnd::Create(config_, &fe_); !st.ok()) return Status::Config(st.message());
  out_ = ctx.bus().Advertise(bus::topics::kAudioClean);
  ctx.bus().Subscribe<v1::AudioFrame>(bus::topics::kAudioRef, [this, &ctx](const auto& m) { OnRef(ctx, m); });
  ctx.bus().Subscribe<v1::AudioFrame>(bus::topics::kAudioMic, [this, &ctx](const auto& m) { OnMic(ctx, m); });
  RefWakes(ctx, false);
  // Without mic frames (capture restarting, its device lost) nothing would
  // read the lazy reference: its socket would fill and playback count the
  // overflow as lost frames. Four reads a second keep it drained.
  ctx.loop().AddTimer(std::chrono::milliseconds(250), [&ctx] { ctx.bus().DrainLazy(); });
  VB_LOG(kInfo) << "backend " << fe_->backend() << ", reference " << config_.reference << ", bulk delay "
                << config_.aligner.bulk_delay_ms << " ms";
  return Status::Ok();
}

void AfeActor::Drop(bus::Context& ctx, const char* counter, const std::string& why) {
  ctx.Count(counter);
  ctx.CountError();
  uint64_t suppressed = 0;
  if (bad_log_.Allow(bus::MonoNs(), &suppressed))
    VB_LOG(kWarn) << "dropped: " << why << (suppressed ? " (+" + std::to_string(suppressed) + " more)" : "");
}

void AfeActor::OnRef(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m) {
  PcmView v;
  if (!View(m.msg, &v)) return Drop(ctx, "bad_ref", "audio.ref frame with inconsistent PCM size");
  if (m.msg.play_ns() <= 0) return Drop(ctx, "bad_ref", "audio.ref frame without play_ns");
  const int rate = config_.processor.sample_rate;
  if (v.sample_rate != rate) {
    // The contract says 16 kHz; a playback at another rate is still usable.
    if (ref_resampler_.in_rate() != uint32_t(v.sample_rate)) {
      if (!ref_resampler_.Init(uint32_t(v.sample_rate), uint32_t(rate), 1).ok())
        return Drop(ctx, "bad_ref", "audio.ref at an unusable rate");
    }
    mono_.clear();  // MixToMono appends
    audio::MixToMono(v.samples, v.frames, uint32_t(v.channels), 0, uint32_t(v.channels), &mono_);
    resampled_.clear();
    ref_resampler_.Process(mono_.data(), mono_.size(), &resampled_);
    if (resampled_.empty()) return;
    v = PcmView{resampled_.data(), resampled_.size(), 1, rate};
  }
  if (Status st = fe_->PushReference(v, m.msg.play_ns()); !st.ok()) return Drop(ctx, "bad_ref", st.message());
  if (ref_behind_ && last_processed_) {
    if (fe_->ReferenceReady(last_processed_->view, last_processed_->reference_channel, last_processed_->capture_ns)) {
      // Caught up: the next frames wait for their reference again. Without
      // this a reference that always comes ~1 ms after its mic frame kept the
      // front end blind for good (every block gated as possible echo: the
      // user's voice 40 dB down after vb-playback restarted).
      ref_behind_ = false;
      last_processed_.reset();
      ctx.Count("ref_caught_up");
    }
  }
  Drain(ctx);
}

void AfeActor::RefWakes(bus::Context& ctx, bool wakes) {
  if (ref_lazy_ == !wakes) return;
  ref_lazy_ = !wakes;
  ctx.bus().SetLazy(bus::topics::kAudioRef, ref_lazy_);
  if (wakes) ctx.Count("ref_wakes_on");  // a mic frame waits for its reference
}

void AfeActor::OnMic(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m) {
  ctx.bus().DrainLazy();  // the reference published since the last mic frame (OnRef)
  PcmView v;
  if (!View(m.msg, &v)) return Drop(ctx, "bad_mic", "audio.mic frame with inconsistent PCM size");
  Pending p;
  p.frame = m.msg;
  p.origin_ns = m.header.origin_ns();
  p.capture_ns = m.msg.play_ns() > 0 ? m.msg.play_ns() : m.header.origin_ns();
  const int64_t now = bus::MonoNs();
  if (ref_behind_) {
    PcmView pv;
    View(p.frame, &pv);
    if (fe_->ReferenceReady(pv, p.frame.reference_channel(), p.capture_ns)) ref_behind_ = false;
  }
  p.deadline_ns = ref_behind_ ? now : now + int64_t(ref_wait_ms_) * 1'000'000;
  pending_.push_back(std::move(p));
  if (pending_.size() > kMaxPending) {
    ctx.Count("ref_wait_overflow");
    Process(ctx, pending_.front());
    pending_.pop_front();
  }
  Drain(ctx);
}

void AfeActor::Drain(bus::Context& ctx) {
  const int64_t now = bus::MonoNs();
  while (!pending_.empty()) {
    Pending& p = pending_.front();
    PcmView v;
    View(p.frame, &v);  // checked on arrival
    bool ready = fe_->ReferenceReady(v, p.frame.reference_channel(), p.capture_ns);
    if (!ready && now < p.deadline_ns) {
      p.waited = true;
      break;
    }
    if (p.waited) ctx.Count(ready ? "ref_waits" : "ref_wait_timeouts");
    if (p.waited && !ready) ref_behind_ = true;
    if (!p.waited && !ready) ctx.Count("ref_not_waited");  // reference behind: not held again
    Process(ctx, p);
    if (ref_behind_) {
      Processed done{v, p.frame.reference_channel(), p.capture_ns};
      done.view.samples = nullptr;
      last_processed_ = done;
    }
    pending_.pop_front();
  }
  // Nothing waits any more (the reference came): the deadline's wake-up
  // would find nothing to do (~50 wasted wake-ups a second while speaking).
  if (pending_.empty() && wait_timer_ != 0) {
    ctx.loop().CancelTimer(wait_timer_);
    wait_timer_ = 0;
  }
  RefWakes(ctx, !pending_.empty());
  if (!pending_.empty() && wait_timer_ == 0) {
    auto delay = std::chrono::nanoseconds(std::max<int64_t>(pending_.front().deadline_ns - now, 0));
    wait_timer_ = ctx.loop().AddOneShot(delay, [this, &ctx] {
      wait_timer_ = 0;
      Drain(ctx);
    });
  }
}

void AfeActor::Process(bus::Context& ctx, const Pending& p) {
  PcmView v;
  View(p.frame, &v);
  if (Status st = fe_->ProcessMic(v, p.frame.reference_channel(), p.capture_ns, &clean_); !st.ok())
    return Drop(ctx, "bad_mic", st.message());
  frame_.Clear();
  frame_.set_sample_rate(uint32_t(config_.processor.sample_rate));
  frame_.set_channels(1);
  frame_.set_sample_index(p.frame.sample_index());
  frame_.set_play_ns(p.capture_ns);
  frame_.set_reference_channel(-1);
  frame_.set_synthetic_silence(p.frame.synthetic_silence());
  frame_.mutable_pcm()->assign(reinterpret_cast<const char*>(clean_.data()), clean_.size() * 2);
  out_.Publish(frame_, {.origin_ns = p.origin_ns});

  if (fe_->counters().block_fallbacks != logged_fallbacks_) {
    logged_fallbacks_ = fe_->counters().block_fallbacks;
    VB_LOG(kWarn) << "mic frames of " << v.frames * 1000 / size_t(config_.processor.sample_rate)
                  << " ms are not a multiple of the backend's block (afe.block_ms): it restarted on "
                  << fe_->processor_block_ms() << " ms blocks";
  }
  if (fe_->counters().delay_changes != logged_delay_changes_) {
    logged_delay_changes_ = fe_->counters().delay_changes;
    VB_LOG(kInfo) << "echo found " << fe_->estimator().last_lag_ms() << " ms after its paired reference (correlation "
                  << fe_->estimator().last_corr() << "): bulk delay now " << fe_->bulk_delay_ms() << " ms";
  }
  // Re-alignments are worth a (rate-limited) line: they mean lost frames,
  // xruns or drifting clocks, and each costs the canceller some echo.
  const auto& a = fe_->aligner();
  uint64_t jumps = a.ref_jumps + a.mic_jumps;
  uint64_t suppressed = 0;
  if (jumps != logged_jumps_ && align_log_.Allow(bus::MonoNs(), &suppressed)) {
    VB_LOG(kInfo) << "re-aligned on timestamps (ref " << a.ref_jumps << ", mic " << a.mic_jumps
                  << " so far; last errors ref " << a.last_ref_error_us << " us, mic " << a.last_mic_error_us << " us)";
    logged_jumps_ = jumps;
  }
}

void AfeActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  const auto& c = fe_->counters();
  const auto& a = fe_->aligner();
  ctx.Set("mic_frames", int64_t(c.mic_frames));
  ctx.Set("ref_frames", int64_t(c.ref_frames));
  ctx.Set("blocks_with_ref", int64_t(c.blocks_with_ref));
  ctx.Set("ref_spans", int64_t(a.ref_spans));
  ctx.Set("ref_jumps", int64_t(a.ref_jumps));
  ctx.Set("mic_jumps", int64_t(a.mic_jumps));
  ctx.Set("ref_late_samples", int64_t(a.ref_late));
  ctx.Set("ref_gap_samples", int64_t(a.ref_gap));
  ctx.Set("ref_overrun_samples", int64_t(a.ref_overrun));
  ctx.Set("ref_lead_us", a.lead_us);
  ctx.Set("bulk_delay_us", int64_t(fe_->bulk_delay_ms() * 1000));
  ctx.Set("delay_changes", int64_t(c.delay_changes));
  ctx.Set("gated_blocks", int64_t(c.gated_blocks));
  ctx.Set("late_ref_gated_blocks", int64_t(c.late_ref_gated_blocks));
  ctx.Set("reconverge_gated_blocks", int64_t(c.reconverge_gated_blocks));
  ctx.Set("invented_gated_blocks", int64_t(c.invented_gated_blocks));
  ctx.Set("low_band_near_end_blocks", int64_t(c.low_band_near_end_blocks));
  ctx.Set("delay_estimates", int64_t(fe_->estimator().estimates()));
  ctx.Set("echo_lag_us", int64_t(fe_->estimator().last_lag_ms() * 1000));
  ctx.Set("echo_corr_pct", int64_t(fe_->estimator().last_corr() * 100));
  ctx.Set("canceller_idle_blocks", int64_t(fe_->canceller_idle_blocks()));
  ctx.Set("block_fallbacks", int64_t(c.block_fallbacks));
}

}  // namespace vb::afe
