// The logic of vb-playback: engine, pump, sink, reference (see playback_core.h).
#include "actors/playback/playback_core.h"

#include <algorithm>
#include <cmath>

#include "actors/common/file_pcm.h"

namespace vb::playback {
namespace {
constexpr int64_t kStallNs = 2'000'000'000;  // an open device that takes nothing this long is dead
}

PlaybackCore::PlaybackCore(PlaybackOptions options, audio::PumpLoop& loop, Outputs out,
                           std::unique_ptr<audio::PcmSink> sink)
    : options_(std::move(options)),
      loop_(loop),
      rate_(options_.engine.rate),
      volume_(options_.volume),
      out_(std::move(out)),
      prompts_(options_.engine.rate) {
  options_.engine.offline = offline();
  engine_ = std::make_unique<PlaybackEngine>(options_.engine);
  if (!sink) {
    if (options_.sink == PlaybackOptions::Sink::kAlsa) {
      options_.alsa.sample_rate = rate_;
      options_.alsa.period_us = options_.period_ms * 1000;
      sink = std::make_unique<audio::AlsaSink>(options_.alsa);
    } else if (options_.sink == PlaybackOptions::Sink::kPulse) {
      options_.pulse.sample_rate = rate_;
      sink = std::make_unique<audio::PulseSink>(options_.pulse);
    } else {
      sink = std::make_unique<audio::WavFileSink>(options_.wav_path, audio::PcmFormat{rate_, 1});
    }
  }
  audio::PumpConfig pc;
  pc.what = "playback device";
  pc.xrun_line = "playback device underrun";
  pc.xrun_effect = "recovered";
  // PulseAudio: its deep, rewritable queue is served once per its period.
  const bool pulse = options_.sink == PlaybackOptions::Sink::kPulse;
  pc.period_ms = pulse ? options_.pulse.period_us / 1000 : options_.period_ms;
  pc.device_period_ms = pc.period_ms;
  pc.reopen_min_ms = options_.reopen_min_ms;
  pc.reopen_max_ms = options_.reopen_max_ms;
  pc.stall_ns = pc.first_data_ns = kStallNs;
  pc.history_frames = size_t(rate_) * ((pulse ? options_.pulse.buffer_us : options_.alsa.buffer_us) / 1000) / 1000 * 4;
  audio::PcmPump::Hooks hooks;
  hooks.discontinuity = [this] { ref_framer_.Discontinuity(); };
  hooks.opened = [this]() -> Status {
    if (!logged_format_) {
      auto* alsa = dynamic_cast<audio::AlsaSink*>(pump_->sink());
      auto* pulse_sink = dynamic_cast<audio::PulseSink*>(pump_->sink());
      VB_LOG(kInfo) << "playback " << DeviceName() << ": " << pump_->format().sample_rate << " Hz, "
                    << pump_->format().channels << " ch"
                    << (alsa ? ", period " + std::to_string(alsa->period_frames()) + " frames, buffer " +
                                   std::to_string(alsa->buffer_frames())
                             : std::string())
                    << (pulse_sink ? " to " + pulse_sink->sink_name() + ", queue " +
                                         std::to_string(pulse_sink->buffer_frames()) + " frames, rewritable"
                                   : std::string());
      logged_format_ = true;
    }
    return Status::Ok();
  };
  hooks.lost = [this](const std::string& why) {
    PublishEvent(v1::PlaybackEvent::DEVICE_ERROR, engine_->playing_turn(), why);
    if (out_.lost) out_.lost(why);
  };
  hooks.back = [this](int64_t) {
    if (out_.back) out_.back();
    PublishEvent(v1::PlaybackEvent::DEVICE_BACK, engine_->playing_turn(), DeviceName());
  };
  hooks.error = [this](const std::string& what) {
    if (out_.error) out_.error();
    VB_LOG(kError) << "WAV sink: " << what;
  };
  pump_ = std::make_unique<audio::PcmPump>(
      loop, pc, std::move(sink),
      [this](int16_t* o, size_t n, int64_t now, int64_t play_ns) { return Render(o, n, now, play_ns); },
      [this](const int16_t* pcm, size_t n, int64_t play_ns) { Played(pcm, n, play_ns); }, std::move(hooks));
}

Status PlaybackCore::Init() {
  for (const auto& [name, path] : options_.prompt_files)
    if (Status st = prompts_.AddFile(name, path); !st.ok())
      return Status::Config("prompts." + name + ": " + st.message());
  if (!pump_->clocked())
    if (Status st = pump_->sink()->Open(); !st.ok()) return Status::Config(st.message());
  // audio.ref: 16 kHz mono 20 ms, stamped with the time it leaves the speaker.
  if (Status st = ref_framer_.Init({rate_, 1}, audio::FramerConfig{},
                                   [this](const v1::AudioFrame& f, int64_t) { out_.ref(f, last_origin_ns_); });
      !st.ok())
    return Status::Config(st.message());
  return Status::Ok();
}

std::string PlaybackCore::DeviceName() const {
  if (options_.sink == PlaybackOptions::Sink::kPulse)
    return "pulse " + (options_.pulse.device.empty() ? std::string("(default sink)") : options_.pulse.device);
  return options_.alsa.device;
}

std::string PlaybackCore::Describe() const {
  const bool wav = options_.sink == PlaybackOptions::Sink::kWav;
  const bool alsa = options_.sink == PlaybackOptions::Sink::kAlsa;
  return std::string("sink ") + (wav ? "wav " + options_.wav_path : (alsa ? "alsa " : "") + DeviceName()) + ", " +
         std::to_string(rate_) + " Hz" + (wav ? (options_.wav_realtime ? ", real time" : ", offline") : "");
}

void PlaybackCore::Start() {
  if (offline()) return;  // rendered as audio arrives
  pump_->Start(1.0);
}

void PlaybackCore::Stop() { pump_->Stop(); }

// ---- Input ----------------------------------------------------------------

bool PlaybackCore::OnAudio(const v1::AudioFrame& f, const std::string& turn_id, int64_t origin_ns) {
  const uint32_t ch = f.channels() ? f.channels() : 1;
  if (f.pcm().size() % (2 * ch) != 0 || f.sample_rate() < 4000 || f.sample_rate() > 192000) {
    ++malformed_;
    if (out_.error) out_.error();
    return false;
  }
  const size_t frames = f.pcm().size() / 2 / ch;
  const auto* pcm = reinterpret_cast<const int16_t*>(f.pcm().data());
  const int16_t* mono = pcm;
  if (ch != 1) {
    mono_.clear();
    audio::MixToMono(pcm, frames, ch, 0, ch, &mono_);
    mono = mono_.data();
  }
  size_t n = frames;
  const int64_t now = loop_.NowNs();
  if (f.sample_rate() != rate_) {
    uint64_t suppressed = 0;
    if (rate_log_.Allow(now, &suppressed)) {
      VB_LOG(kWarn) << "audio.out at " << f.sample_rate() << " Hz, playback at " << rate_ << " Hz: resampling";
    }
    if (in_resampler_.in_rate() != f.sample_rate()) in_resampler_.Init(f.sample_rate(), rate_, 1);
    resampled_.clear();
    in_resampler_.Process(mono, frames, &resampled_);
    mono = resampled_.data();
    n = resampled_.size();
  }
  engine_->Push(turn_id, mono, n, origin_ns, f.end_of_turn(), now);
  if (offline()) RenderOffline();
  else Wake();
  return true;
}

void PlaybackCore::OnCommand(const v1::DialogCommand& cmd) {
  const int64_t now = loop_.NowNs();
  if (cmd.has_interrupt() || cmd.has_flush()) {
    const bool cancel = cmd.has_interrupt();
    const std::string& turn = cancel ? cmd.interrupt().turn_id() : cmd.flush().turn_id();
    if (cancel) {
      VB_LOG(kInfo) << "interrupt: flushing turn '" << (turn.empty() ? engine_->playing_turn() : turn) << "'";
    }
    // Either the device's queue plays out (≤ buffer_ms) and the fade follows
    // it, or (drop_on_flush) the queue is dropped and the fade starts from
    // its first unplayed sample — exact only if the device's delay is.
    // A rewritable queue (PulseAudio) is taken back from just after what is
    // about to play and the fade replaces it: fast and exact.
    // (Rewritable: also when the turn's end is queued but no longer in the
    // engine.)
    std::vector<int16_t> unplayed;
    if (pump_->rewindable()) {
      if ((turn.empty() || turn == engine_->playing_turn()) && pump_->RewindDeviceQueue(&unplayed)) {
        filler_tail_ = 0;
        if (std::all_of(unplayed.begin(), unplayed.end(), [](int16_t v) { return v == 0; })) unplayed.clear();
      }
    } else if (options_.drop_on_flush && engine_->FlushHitsPlaying(turn)) {
      pump_->DropDeviceQueue(&unplayed);
    }
    if (cancel) engine_->Cancel(turn, now, unplayed);
    else engine_->Flush(turn, now, unplayed);
    PublishEvents();
    if (!unplayed.empty()) pump_->Service();  // the fade goes out at once
  } else if (cmd.has_play_prompt()) {
    const auto* p = prompts_.Find(cmd.play_prompt().name());
    if (!p) {
      ++unknown_prompts_;
      VB_LOG(kWarn) << "PlayPrompt: no prompt named '" << cmd.play_prompt().name() << "'";
      return;
    }
    engine_->PlayPrompt(p);
    Wake();
  } else {
    return;
  }
  PublishEvents();
  // Offline: the fade/prompt is rendered now; in real time, at the next period.
  if (offline()) RenderOffline();
}

void PlaybackCore::OnTurnCancelled(const std::string& turn_id) {
  engine_->Cancel(turn_id, loop_.NowNs());
  PublishEvents();
}

uint32_t PlaybackCore::OnVolume(const v1::VolumeCommand& cmd) {
  if (cmd.has_set_percent()) volume_ = int(std::min<uint32_t>(cmd.set_percent(), 100));
  else if (cmd.has_step_percent()) volume_ = std::clamp(volume_ + std::clamp(cmd.step_percent(), -100, 100), 0, 100);
  VB_LOG(kInfo) << "volume " << volume_ << " %";
  return uint32_t(volume_);
}

// ---- Output ---------------------------------------------------------------

bool PlaybackCore::Render(int16_t* out, size_t n, int64_t now, int64_t play_ns) {
  RenderInfo info;
  engine_->Render(out, n, now, play_ns, &info);
  ApplyVolume(out, n);
  PublishEvents();
  if (info.origin_ns) last_origin_ns_ = info.origin_ns;
  last_audible_ = info.audible;
  filler_tail_ = info.audible ? 0 : filler_tail_ + n;
  TrackIdle(info.audible, now);
  // Real-time WAV with nothing playing: the file keeps only what was heard
  // (audio.ref still says silence).
  return !(options_.sink == PlaybackOptions::Sink::kWav && options_.wav_realtime && !options_.wav_keep_idle &&
           !info.audible && !engine_->HasWork());
}

void PlaybackCore::Played(const int16_t* pcm, size_t n, int64_t play_ns) {
  // audio.ref: the framer takes "now" as the time just after the last sample.
  ref_framer_.Push(pcm, n, play_ns + int64_t(double(n) * 1e9 / rate_), 0, !last_audible_);
}

void PlaybackCore::TrackIdle(bool audible, int64_t now) {
  if (options_.idle_stop_ms == 0 || !pump_->clocked() || options_.sink != PlaybackOptions::Sink::kAlsa) return;
  if (audible || !engine_->Idle()) {
    idle_since_ns_ = 0;
    return;
  }
  if (!idle_since_ns_) idle_since_ns_ = now;
  // Parked only once the device's queue holds nothing but silence.
  const int64_t after_ms =
      std::max<int64_t>(options_.idle_stop_ms, options_.alsa.buffer_us / 1000 + options_.period_ms);
  if (now - idle_since_ns_ < after_ms * 1'000'000 || park_posted_) return;
  // Not from inside the pump's write loop: right after it.
  park_posted_ = true;
  loop_.Post([this] {
    park_posted_ = false;
    if (idle_since_ns_ && engine_->Idle()) pump_->Park();
  });
}

void PlaybackCore::Wake() {
  idle_since_ns_ = 0;
  if (pump_->parked() && engine_->HasWork()) pump_->Resume();
  // A rewritable queue full of silence before a turn or prompt: the new
  // audio takes its place once a queue's worth of it is in (or it is a
  // prompt), so what follows comes before the queue runs out of it (with
  // less, a reply arriving as a slow burst would play its first target_ms
  // and then the silence rendered after them). Not within a turn: an
  // underrun refills as usual.
  const size_t enough = size_t(rate_) * (options_.pulse.buffer_us / 1000) / 1000;
  if (filler_tail_ > 0 && pump_->rewindable() && !engine_->speaking() &&
      (engine_->queued_samples() >= enough || engine_->prompt_pending())) {
    std::vector<int16_t> silence;
    if (pump_->RewindDeviceQueue(&silence, filler_tail_)) {
      filler_tail_ -= std::min(filler_tail_, silence.size());
      pump_->Service();
    }
  }
}

void PlaybackCore::RenderOffline() {
  const size_t period = size_t(rate_) * options_.period_ms / 1000;
  while (engine_->HasWork()) {
    size_t n = std::min(period, std::max<size_t>(engine_->queued_samples(), 1));
    if (engine_->queued_samples() == 0) n = period;  // a fade or a prompt: whole periods
    pump_->RenderNow(n);
  }
}

void PlaybackCore::ApplyVolume(int16_t* pcm, size_t n) const {
  if (volume_ >= 100) return;
  // Perceived loudness: a cubic curve (50 % ≈ −18 dB), silence at 0.
  const double v = volume_ / 100.0, gain = v * v * v;
  for (size_t i = 0; i < n; ++i) pcm[i] = int16_t(std::lround(pcm[i] * gain));
}

void PlaybackCore::PublishEvent(v1::PlaybackEvent::Kind kind, const std::string& turn, const std::string& detail,
                                int64_t latency) {
  v1::PlaybackEvent e;
  e.set_kind(kind);
  e.set_turn_id(turn);
  e.set_detail(detail);
  e.set_latency_ns(latency);
  out_.event(e);
  if (kind == v1::PlaybackEvent::FLUSHED) {
    VB_LOG(kInfo) << "flushed turn '" << turn << "': silent after " << latency / 1000 << " us"
                  << (detail.empty() ? "" : " (" + detail + ")");
  }
}

void PlaybackCore::PublishEvents() {
  for (const auto& e : engine_->TakeEvents()) PublishEvent(e.kind, e.turn_id, e.detail, e.latency_ns);
}

void PlaybackCore::Figures(std::map<std::string, int64_t>* out) const {
  auto& f = *out;
  f["volume"] = volume_;
  const auto& c = engine_->counters();
  f["frames_in"] = int64_t(c.frames_in);
  f["underruns"] = int64_t(c.underruns);
  f["dropped_cancelled"] = int64_t(c.dropped_cancelled);
  f["dropped_overflow"] = int64_t(c.dropped_overflow);
  f["flushes"] = int64_t(c.flushes);
  f["prompts"] = int64_t(c.prompts);
  f["turns_started"] = int64_t(c.turns_started);
  f["turns_drained"] = int64_t(c.turns_drained);
  f["events_suppressed"] = int64_t(c.events_suppressed);
  // vb-control reads this: a restarted control learns the agent is speaking,
  // and a SPEAKING dialog whose DRAINED was lost learns it is over.
  f["speaking"] = engine_->speaking() ? 1 : 0;
  f["queued_ms"] = int64_t(engine_->queued_samples() * 1000 / rate_);
  f["frames_written"] = int64_t(pump_->counters().frames);
  pump_->Figures(out);
  if (malformed_) f["malformed_frames"] = int64_t(malformed_);
  if (unknown_prompts_) f["unknown_prompts"] = int64_t(unknown_prompts_);
}

}  // namespace vb::playback
