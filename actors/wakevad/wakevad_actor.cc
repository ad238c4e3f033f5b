// vb-wakevad adapter: config, audio.clean in, voice.vad / voice.wake out.
#include "actors/wakevad/wakevad_actor.h"

#include <algorithm>
#include <cstring>

namespace vb::wakevad {

void WakeVadActor::DeclareConfig(config::Section& s) {
  s.Key("input_device", &input_device_, "", "device whose audio.clean to follow (empty: this actor's device)");
  s.Key("max_gap_ms", &opt_.max_gap_ms, 1000, {0, 60000},
        "sample_index gaps up to this are filled with silence; larger ones restart the stream");
  s.Key("backfill_ms", &backfill_ms_, 10000, {0, 60000},
        "audio.clean kept for a restarted vb-session's backfill request (0 = none)");
  {
    auto v = s.Sub("vad", "voice activity: frame detector and hysteresis");
    v.Choice("detector", &opt_.detector, "energy", DetectorNames(),
             "frame detector: energy (own), speex (speexdsp preprocessor), webrtc (WebRTC VAD)");
    v.Key("threshold", &opt_.vad.threshold, 0.5, {0, 1}, "frame probability counted as speech");
    v.Key("min_speech_ms", &opt_.vad.min_speech_ms, 40, {0, 2000},
          "consecutive speech before SPEECH_START (the start is backdated to its first frame)");
    v.Key("min_silence_ms", &opt_.vad.min_silence_ms, 500, {20, 10000}, "consecutive non-speech before SPEECH_END");
    v.Key("preroll_ms", &opt_.vad.preroll_ms, 300, {0, 2000},
          "audio before the backdated start carried in SPEECH_START (preroll_pcm)");
    auto& d = opt_.detector_options;
    v.Key("energy_margin_db", &d.energy_margin_db, 9.0, {0, 60},
          "energy: dB above the noise floor where a frame is 50% speech");
    v.Key("energy_slope_db", &d.energy_slope_db, 2.0, {0.1, 30}, "energy: width of the soft step (dB)");
    v.Key("energy_min_dbfs", &d.energy_min_dbfs, -55.0, {-120, 0},
          "energy: frames quieter than this are never speech (dBFS)");
    v.Key("energy_floor_rise_db_s", &d.energy_floor_rise_db_s, 2.0, {0.01, 100},
          "energy: how fast the noise floor may rise during sound (dB/s)");
    v.Key("webrtc_likelihood", &d.webrtc_likelihood, 2, {0, 3},
          "webrtc: 0 very low … 3 high likelihood of declaring voice");
    v.Key("speex_prob_start", &d.speex_prob_start, 35, {1, 100}, "speex: probability (%) to enter speech");
    v.Key("speex_prob_continue", &d.speex_prob_continue, 20, {1, 100}, "speex: probability (%) to stay in speech");
    v.Finish();
  }
  {
    auto w = s.Sub("wake", "wake word: pocketsphinx keyphrase spotting");
    auto& o = opt_.wake;
    w.Key("enabled", &opt_.wake_enabled, true, "spot the wake phrase (false: VAD only)");
    w.Key("phrase", &o.phrase, "ok voice bus", "the wake phrase (words of the dictionary or pronunciations)");
    w.Key("threshold", &o.threshold, 1e-12, {1e-80, 1e10},
          "pocketsphinx kws_threshold: larger = fewer false accepts, more misses");
    w.Key("phone_loop", &o.phone_loop, 1e-10, {1e-80, 1},
          "pocketsphinx kws_plp (phone loop probability): larger = fewer false accepts, more misses");
    w.Key("pronunciations", &o.pronunciations, {},
          "extra pronunciations, 'WORD PH ON ES' (CMU phones), e.g. 'voicebus V OY S B AH S'");
    w.Key("comfort_noise_dbfs", &o.comfort_noise_dbfs, -50.0, {-120, 0},
          "white noise added to what the decoder hears (0 = none): keeps it steady after silence");
    w.Key("verify", &o.verify, true,
          "second stage: re-decode the audio around each detection with the whole phrase forced");
    w.Key("verify_margin", &o.verify_margin, -80.0, {-1e6, 1e6},
          "verify: least score of the forced phrase per 10 ms frame (pocketsphinx log domain)");
    w.Key("verify_pad_ms", &o.verify_pad_ms, 300, {0, 1000},
          "verify: audio re-decoded before the phrase's estimated start and after its end");
    w.Key("verify_word_beam", &o.verify_word_beam, 1e-48, {1e-300, 1},
          "verify: pocketsphinx -wbeam; a narrower beam (larger value) prunes the end of real "
          "phrases in loud noise");
    w.Key("refractory_ms", &o.refractory_ms, 2000, {0, 60000}, "after a detection, ignore the phrase for this long");
    w.Key("max_utterance_s", &o.max_utterance_s, 30, {2, 3600},
          "restart the decoder's utterance after this long (in a pause; forced at twice)");
    w.Key("context_ms", &opt_.context_ms, 2500, {2000, 10000},
          "audio up to the detection carried in WakeEvent.context_pcm");
    w.Key("context_lead_ms", &opt_.context_lead_ms, 500, {0, 5000},
          "context_pcm reaches at least this far before the phrase began");
    w.Key("end_settle_ms", &opt_.wake_end_settle_ms, 600, {0, 2000},
          "hold the wake event up to this long after the detection until the phrase has ended "
          "(the spotter can fire before its last sound; 0 = at once)");
    w.Key("spot_all", &opt_.spot_all, false,
          "decode every frame for the wake phrase (false: only around speech, see spot_lead_ms)");
    w.Key("spot_threshold", &opt_.spot_threshold, 0.05, {0, 1},
          "speech probability of a frame that keeps the spotter decoding (below vad.threshold: "
          "in loud noise speech barely rises above the floor)");
    w.Key("spot_lead_ms", &opt_.spot_lead_ms, 400, {0, 2000},
          "when speech begins, the spotter also decodes this much audio before it");
    w.Key("spot_hangover_ms", &opt_.spot_hangover_ms, 600, {0, 10000},
          "the spotter keeps decoding this long after the last speech frame");
    w.Key("end_quiet_ms", &opt_.wake_end_quiet_ms, 60, {20, 1000},
          "non-speech after the phrase that marks its end (end_sample = where the quiet began)");
    w.Key("model_dir", &o.model_dir, "/usr/share/pocketsphinx/model/en-us/en-us",
          "pocketsphinx acoustic model directory");
    w.Key("dict", &o.dict, "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict",
          "pocketsphinx pronunciation dictionary");
    w.Finish();
  }
}

Status WakeVadActor::Configure(bus::Context& ctx) {
  Status s = pipeline_.Init(
      opt_, [this, &ctx](const VadOutput& o) { PublishVad(ctx, o); },
      [this, &ctx](const WakeOutput& o) { PublishWake(ctx, o); });
  // A phrase without pronunciation or a missing model is a config error.
  if (!s.ok()) return Status::Config("wakevad: " + s.message());
  vad_pub_ = ctx.bus().Advertise(bus::topics::kVoiceVad);
  wake_pub_ = ctx.bus().Advertise(bus::topics::kVoiceWake);
  ctx.bus().Subscribe<v1::AudioFrame>(
      bus::topics::kAudioClean, [this, &ctx](const auto& m) { OnAudio(ctx, m); }, input_device_);
  if (backfill_ms_ > 0) {
    ring_ = std::make_unique<BackfillRing>(uint64_t(backfill_ms_) * kSampleRate / 1000);
    // The session of the device whose audio this is asks; the answer goes to it.
    backfill_pub_ = ctx.bus().Advertise(bus::topics::kAudioBackfill, input_device_);
    ctx.bus().Subscribe<v1::BackfillRequest>(
        bus::topics::kSessionBackfill, [this, &ctx](const auto& m) { OnBackfillRequest(ctx, m.msg); }, input_device_);
  }
  VB_LOG(kInfo) << "wakevad: detector " << opt_.detector << ", wake "
                << (opt_.wake_enabled ? "'" + opt_.wake.phrase + "'" : std::string("off"));
  return Status::Ok();
}

Status WakeVadActor::Activate(bus::Context& ctx) { return Status::Ok(); }

void WakeVadActor::Deactivate(bus::Context& ctx) {}

void WakeVadActor::Reject(bus::Context& ctx, const std::string& why) {
  ctx.CountError();
  ctx.Count("frames_rejected");
  uint64_t suppressed = 0;
  if (reject_log_.Allow(bus::MonoNs(), &suppressed)) {
    VB_LOG(kWarn) << "wakevad: dropped audio.clean frame: " << why << " (" << suppressed << " more suppressed)";
  }
}

void WakeVadActor::OnAudio(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m) {
  const auto& f = m.msg;
  if (f.sample_rate() != uint32_t(kSampleRate))
    return Reject(ctx, "sample rate " + std::to_string(f.sample_rate()) + " (need 16000)");
  const uint32_t ch = f.channels() == 0 ? 1 : f.channels();
  const size_t bytes = f.pcm().size();
  if (bytes == 0 || bytes % (2 * ch) != 0)
    return Reject(ctx, "pcm of " + std::to_string(bytes) + " bytes for " + std::to_string(ch) + " channels");
  const size_t n = bytes / (2 * ch);
  mono_.resize(n);
  const auto* p = reinterpret_cast<const unsigned char*>(f.pcm().data());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char* s = p + 2 * ch * i;  // first channel, s16le
    mono_[i] = int16_t(uint16_t(s[0]) | uint16_t(s[1]) << 8);
  }
  ctx.Count("frames_in");
  if (ring_) {
    ring_->Append({.sample_index = f.sample_index(),
                   .sample_rate = f.sample_rate(),
                   .channels = ch,
                   .origin_ns = m.header.mono_ns(),
                   .pcm = f.pcm()});
  }
  origin_ns_ = m.header.origin_ns();
  pipeline_.Feed(f.sample_index(), mono_);
}

void WakeVadActor::OnBackfillRequest(bus::Context& ctx, const v1::BackfillRequest& req) {
  // The session repeats its request until answered (it may have published
  // before its socket was connected): answer each id once.
  if (std::find(answered_.begin(), answered_.end(), req.request_id()) != answered_.end()) return;
  answered_.push_back(req.request_id());
  if (answered_.size() > 8) answered_.pop_front();
  ctx.Count("backfill_requests");
  v1::AudioBackfill out;
  out.set_request_id(req.request_id());
  uint64_t frames = 0;
  const uint64_t end =
      ring_->Since(req.from_sample(), req.max_samples(), kSampleRate, [&](const BackfillRing::Frame& f) {
        auto& af = *out.mutable_frame();
        af.set_sample_index(f.sample_index);
        af.set_sample_rate(f.sample_rate);
        af.set_channels(f.channels);
        af.set_pcm(f.pcm);
        backfill_pub_.Publish(out, {.origin_ns = f.origin_ns});
        ++frames;
      });
  out.clear_frame();
  out.set_last(true);
  out.set_end_sample(end);
  out.set_oldest_held(ring_->oldest());
  out.set_newest_end(ring_->newest_end());
  // Nothing held from there on: the ring's stream restarted with new
  // indices, or the audio asked for has not reached us yet. "0 chunks"
  // alone would read as "nothing was missed".
  const bool beyond = req.from_sample() > ring_->newest_end();
  out.set_beyond_newest(beyond);
  if (beyond) ctx.Count("backfill_beyond_newest");
  backfill_pub_.Publish(out);
  ctx.Count("backfill_samples", int64_t(end - std::min(end, std::max(req.from_sample(), ring_->oldest()))));
  VB_LOG(kInfo) << "backfill " << req.request_id() << ": samples from " << req.from_sample() << " (ring holds "
                << ring_->oldest() << "…" << ring_->newest_end() << ") sent up to " << end << " in " << frames
                << " chunks" << (beyond ? ": the start asked for lies beyond the newest sample held" : "");
}

void WakeVadActor::PublishVad(bus::Context& ctx, const VadOutput& o) {
  v1::VadEvent e;
  e.set_kind(o.decision.start ? v1::VadEvent::SPEECH_START : v1::VadEvent::SPEECH_END);
  e.set_sample_index(o.decision.sample_index);
  e.set_probability(o.decision.probability);
  e.set_detector(std::string(o.detector));
  if (o.decision.start) {
    e.set_preroll_ms(uint32_t(opt_.vad.preroll_ms));
    e.set_preroll_pcm(o.preroll_pcm);
    e.set_preroll_start_sample(o.preroll_start);
  }
  ctx.Count(o.decision.start ? "speech_starts" : "speech_ends");
  vad_pub_.Publish(e, {.origin_ns = origin_ns_, .turn_id = {}});
}

void WakeVadActor::PublishWake(bus::Context& ctx, const WakeOutput& o) {
  v1::WakeEvent e;
  e.set_phrase(o.detection.phrase);
  e.set_score(o.detection.score);
  e.set_start_sample(o.detection.start_sample);
  e.set_end_sample(o.detection.end_sample);
  e.set_detector("pocketsphinx");
  e.set_context_pcm(o.context_pcm);
  e.set_context_start_sample(o.context_start);
  ctx.Count("wakes");
  VB_LOG(kInfo) << "wakevad: '" << o.detection.phrase << "' at sample " << o.detection.start_sample << "…"
                << o.detection.end_sample << " score " << o.detection.score << " verify " << o.detection.verify_score;
  wake_pub_.Publish(e, {.origin_ns = origin_ns_, .turn_id = {}});
}

void WakeVadActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  const auto& c = pipeline_.counters();
  ctx.Set("frames", int64_t(c.frames));
  ctx.Set("gap_fills", int64_t(c.gap_fills));
  ctx.Set("resyncs", int64_t(c.resyncs));
  ctx.Set("in_speech", pipeline_.in_speech() ? 1 : 0);
  ctx.Set("wake_spotting", opt_.wake_enabled ? 1 : 0);  // vb-control holds the uplink back for a wake barge-in
  ctx.Set("wakes_rejected", int64_t(c.wakes_rejected));
  ctx.Set("wake_ends_moved", int64_t(c.wake_ends_moved));
  ctx.Set("spot_frames", int64_t(c.spot_frames));
  ctx.Set("wake_ends_unsettled", int64_t(c.wake_ends_unsettled));
  if (c.frames > 0) {
    ctx.Set("vad_ns_per_frame", int64_t(c.vad_ns / c.frames));
    ctx.Set("wake_ns_per_frame", int64_t(c.wake_ns / c.frames));
  }
}

}  // namespace vb::wakevad
