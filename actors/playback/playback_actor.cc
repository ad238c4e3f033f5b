// The vb-playback adapter: sinks, pacing, device recovery, bus mapping (see
// playback_actor.h).
#include "actors/playback/playback_actor.h"

#include <algorithm>
#include <cmath>

#include "actors/common/alsa_pcm.h"
#include "actors/common/file_pcm.h"
#include "actors/common/realtime.h"

namespace vb::playback {
namespace {
constexpr int64_t kStallNs = 2'000'000'000;  // an open device that takes nothing this long is dead
}

void PlaybackActor::DeclareConfig(config::Section& s) {
  s.Choice("sink", &sink_kind_, "alsa", {"alsa", "wav"}, "where the audio goes: an ALSA device or a WAV file");
  s.Key("rate", &rate_, 16000, {8000, 48000}, "playback rate in Hz, mono; must equal decoder.output_rate "
        "(frames at another rate are resampled)");
  s.Key("period_ms", &period_ms_, 5, {2, 100}, "render granularity (and ALSA period)");
  s.Key("target_ms", &target_ms_, 60, {0, 2000}, "jitter buffer: speech buffered before a turn starts or resumes after an underrun");
  s.Key("max_buffer_ms", &max_buffer_ms_, 120000, {100, 600000}, "jitter buffer bound (replies arrive faster than real time)");
  s.Key("fade_ms", &fade_ms_, 5, {1, 50}, "fade-out on Interrupt/Flush");
  s.Key("drain_timeout_ms", &drain_timeout_ms_, 1000, {50, 60000},
        "a turn starved this long without an end-of-turn marker counts as drained");
  s.Key("prompt_gain", &prompt_gain_, 1.0, {0.0, 4.0}, "gain of prompt sounds mixed over speech");
  s.Key("volume", &volume_, 100, {0, 100}, "speaker volume at start, percent (playback.volume changes it)");
  s.Key("prompts", &prompt_files_, "extra prompt sounds: name → WAV file (built in: wake, error)");
  s.Key("rt_priority", &rt_priority_, 0, {0, 99},
        "SCHED_FIFO priority of the loop (1–99) so a busy machine does not cause xruns; 0 = normal "
        "scheduling. Needs root, CAP_SYS_NICE or an rtprio limit; without it, one warning");
  s.Key("reopen_min_ms", &reopen_min_ms_, 250, {10, 60000}, "first retry after the device fails");
  s.Key("reopen_max_ms", &reopen_max_ms_, 2000, {10, 600000}, "retry interval cap (doubling back-off)");
  {
    auto a = s.Sub("alsa", "ALSA playback (sink: alsa)");
    a.Key("device", &alsa_device_, std::string("default"), "ALSA PCM, e.g. default, plughw:0, pulse (PULSE_SINK selects the sink)");
    a.Key("channels", &alsa_channels_, 1, {1, 8}, "channels asked of the device (mono is copied to each)");
    a.Key("buffer_ms", &alsa_buffer_ms_, 20, {4, 1000},
          "device queue: a flush waits for it to play out (≈ buffer_ms + fade_ms + sound server); too small "
          "underruns on a busy machine (see rt_priority)");
    a.Key("drop_on_flush", &alsa_drop_on_flush_, false,
          "on a flush, drop the device queue and fade from its first unplayed sample (fast with any buffer_ms; "
          "clean only where the device reports its delay exactly: hardware, not PulseAudio)");
    if (alsa_buffer_ms_ < 2 * period_ms_) a.Error("buffer_ms", "must be at least two periods (period_ms)");
    a.Finish();
  }
  {
    auto w = s.Sub("wav", "WAV file as the speaker (sink: wav)");
    w.Key("path", &wav_path_, std::string(""), "WAV file written with what would reach the speaker");
    w.Key("realtime", &wav_realtime_, true, "pace in real time; false = write audio as soon as it arrives (offline)");
    w.Key("keep_idle", &wav_keep_idle_, false, "real time: also write the silence between turns");
    if (sink_kind_ == "wav" && wav_path_.empty()) w.Error("path", "sink: wav needs a file");
    w.Finish();
  }
  if (reopen_max_ms_ < reopen_min_ms_) s.Error("reopen_max_ms", "must be >= reopen_min_ms");
}

Status PlaybackActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  EngineConfig ec;
  ec.rate = uint32_t(rate_);
  ec.target_ms = uint32_t(target_ms_);
  ec.max_buffer_ms = uint32_t(max_buffer_ms_);
  ec.fade_ms = uint32_t(fade_ms_);
  ec.drain_timeout_ms = uint32_t(drain_timeout_ms_);
  ec.prompt_gain = prompt_gain_;
  ec.offline = sink_kind_ == "wav" && !wav_realtime_;
  engine_ = std::make_unique<PlaybackEngine>(ec);
  prompts_ = std::make_unique<PromptLibrary>(uint32_t(rate_));
  for (const auto& [name, path] : prompt_files_)
    if (Status st = prompts_->AddFile(name, path); !st.ok()) return Status::Config("prompts." + name + ": " + st.message());

  if (is_device()) {
    audio::AlsaConfig c;
    c.device = alsa_device_;
    c.sample_rate = uint32_t(rate_);
    c.channels = uint32_t(alsa_channels_);
    c.period_us = uint32_t(period_ms_) * 1000;
    c.buffer_us = uint32_t(alsa_buffer_ms_) * 1000;
    sink_ = std::make_unique<audio::AlsaSink>(c);
  } else {
    sink_ = std::make_unique<audio::WavFileSink>(wav_path_, audio::PcmFormat{uint32_t(rate_), 1});
    if (Status st = sink_->Open(); !st.ok()) return Status::Config(st.message());
  }
  // audio.ref: 16 kHz mono 20 ms, stamped with the time it leaves the speaker.
  if (Status st = ref_framer_.Init({uint32_t(rate_), 1}, audio::FramerConfig{},
                                   [this](const v1::AudioFrame& f, int64_t) {
                                     bus::PublishOptions o;
                                     o.origin_ns = last_origin_ns_;
                                     ref_.Publish(f, o);
                                   });
      !st.ok())
    return Status::Config(st.message());

  ref_ = ctx.bus().Advertise(bus::topics::kAudioRef);
  events_ = ctx.bus().Advertise(bus::topics::kPlaybackEvent);
  ctx.bus().Subscribe<v1::AudioFrame>(bus::topics::kAudioOut, [this](const auto& m) { OnAudio(m); });
  ctx.bus().Subscribe<v1::DialogCommand>(bus::topics::kDialogCommand, [this](const auto& m) { OnCommand(m.msg); });
  level_ = ctx.bus().Advertise(bus::topics::kPlaybackLevel);
  ctx.bus().Subscribe<v1::VolumeCommand>(bus::topics::kPlaybackVolume, [this](const auto& m) { OnVolume(m.msg); });
  ctx.bus().Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
    if (m.msg.has_turn_ended() && m.msg.turn_ended().outcome() == v1::TurnEnded::CANCELLED &&
        !m.header.turn_id().empty()) {
      const std::string turn = m.header.turn_id();  // a copy: PublishEvents() publishes
      engine_->Cancel(turn, bus::MonoNs());
      PublishEvents();
    }
  });
  return Status::Ok();
}

Status PlaybackActor::Activate(bus::Context& ctx) {
  audio::RequestRealtimePriority(rt_priority_);
  if (is_device()) {
    // While the device is gone a timer renders into nothing, so turns still
    // end on time and the queue does not pile up.
    guard_ = std::make_unique<audio::DeviceGuard>("playback device", reopen_min_ms_, reopen_max_ms_);
    guard_->Start(ctx, {.open = [this] { return sink_->Open(); },
                        .on_open = [this] { OnOpened(); },
                        .on_lost =
                            [this](const std::string& why) {
                              PublishEvent(v1::PlaybackEvent::DEVICE_ERROR, engine_->playing_turn(), why);
                              StartPacing();
                            },
                        .on_back =
                            [this](int64_t) {
                              PublishEvent(v1::PlaybackEvent::DEVICE_BACK, engine_->playing_turn(), alsa_device_);
                            }});
    watchdog_ = ctx.loop().AddTimer(std::chrono::milliseconds(250), [this] { Watchdog(); });
  } else if (wav_realtime_) {
    StartPacing();
  }
  VB_LOG(kInfo) << "sink " << sink_kind_ << (is_device() ? " " + alsa_device_ : " " + wav_path_) << ", " << rate_
                << " Hz" << (sink_kind_ == "wav" ? (wav_realtime_ ? ", real time" : ", offline") : "");
  return Status::Ok();
}

void PlaybackActor::Deactivate(bus::Context& ctx) {
  if (group_) ctx.loop().RemovePollGroup(group_);
  group_ = 0;
  sink_->Close();
}

// ---- Bus ----------------------------------------------------------------

void PlaybackActor::OnAudio(const bus::Received<v1::AudioFrame>& m) {
  const auto& f = m.msg;
  const int64_t now = bus::MonoNs();
  const uint32_t ch = f.channels() ? f.channels() : 1;
  if (f.pcm().size() % (2 * ch) != 0 || f.sample_rate() < 4000 || f.sample_rate() > 192000) {
    ctx_->CountError();
    ctx_->Count("malformed_frames");
    return;
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
  if (f.sample_rate() != uint32_t(rate_)) {
    uint64_t suppressed = 0;
    if (rate_log_.Allow(now, &suppressed)) {
      VB_LOG(kWarn) << "audio.out at " << f.sample_rate() << " Hz, playback at " << rate_ << " Hz: resampling";
    }
    if (in_resampler_.in_rate() != f.sample_rate()) in_resampler_.Init(f.sample_rate(), uint32_t(rate_), 1);
    resampled_.clear();
    in_resampler_.Process(mono, frames, &resampled_);
    mono = resampled_.data();
    n = resampled_.size();
  }
  engine_->Push(m.header.turn_id(), mono, n, m.header.origin_ns(), f.end_of_turn(), now);
  if (sink_kind_ == "wav" && !wav_realtime_) RenderOffline();
}

void PlaybackActor::OnCommand(const v1::DialogCommand& cmd) {
  const int64_t now = bus::MonoNs();
  if (cmd.has_interrupt() || cmd.has_flush()) {
    const bool cancel = cmd.has_interrupt();
    const std::string& turn = cancel ? cmd.interrupt().turn_id() : cmd.flush().turn_id();
    if (cancel) {
      VB_LOG(kInfo) << "interrupt: flushing turn '" << (turn.empty() ? engine_->playing_turn() : turn) << "'";
    }
    // Either the device's queue plays out (≤ buffer_ms) and the fade follows
    // it, or (drop_on_flush) the queue is dropped and the fade starts from
    // its first unplayed sample — exact only if the device's delay is.
    std::vector<int16_t> unplayed;
    if (alsa_drop_on_flush_ && is_device() && !device_lost() && sink_->is_open() && engine_->FlushHitsPlaying(turn))
      UnplayedTail(&unplayed);
    if (!unplayed.empty()) {
      if (Status st = sink_->Drop(); !st.ok()) {
        unplayed.clear();
        if (sink_->is_open() == false) DeviceLost(st);
      } else {
        ctx_->Count("device_queue_drops");
        ref_framer_.Discontinuity();
      }
    }
    if (cancel) engine_->Cancel(turn, now, unplayed);
    else engine_->Flush(turn, now, unplayed);
    PublishEvents();
    if (!unplayed.empty()) Service();  // the fade goes out at once
  } else if (cmd.has_play_prompt()) {
    const auto* p = prompts_->Find(cmd.play_prompt().name());
    if (!p) {
      ctx_->Count("unknown_prompts");
      VB_LOG(kWarn) << "PlayPrompt: no prompt named '" << cmd.play_prompt().name() << "'";
      return;
    }
    engine_->PlayPrompt(p);
  } else {
    return;
  }
  PublishEvents();
  // Offline: the fade/prompt is rendered now; in real time, at the next period.
  if (sink_kind_ == "wav" && !wav_realtime_) RenderOffline();
}

void PlaybackActor::PublishEvent(v1::PlaybackEvent::Kind kind, const std::string& turn, const std::string& detail,
                                 int64_t latency) {
  v1::PlaybackEvent e;
  e.set_kind(kind);
  e.set_turn_id(turn);
  e.set_detail(detail);
  e.set_latency_ns(latency);
  bus::PublishOptions o;
  o.turn_id = turn;
  events_.Publish(e, o);
  if (kind == v1::PlaybackEvent::FLUSHED) {
    VB_LOG(kInfo) << "flushed turn '" << turn << "': silent after " << latency / 1000 << " us" << (detail.empty() ? "" : " (" + detail + ")");
  }
}

void PlaybackActor::PublishEvents() {
  for (const auto& e : engine_->TakeEvents()) PublishEvent(e.kind, e.turn_id, e.detail, e.latency_ns);
}

void PlaybackActor::RenderBlock(size_t n, int64_t now, int64_t play_ns, bool write) {
  block_.resize(n);
  RenderInfo info;
  engine_->Render(block_.data(), n, now, play_ns, &info);
  ApplyVolume(block_.data(), n);
  PublishEvents();
  if (info.origin_ns) last_origin_ns_ = info.origin_ns;
  if (!write) return;
  if (sink_kind_ == "wav" && wav_realtime_ && !wav_keep_idle_ && !info.audible && !engine_->HasWork()) {
    // Nothing playing: the WAV keeps only what was heard (and audio.ref
    // still says silence).
  } else if (sink_kind_ == "wav") {
    size_t written = 0;
    if (Status st = sink_->Write(block_.data(), n, &written, nullptr); !st.ok()) {
      ctx_->CountError();
      VB_LOG(kError) << "WAV sink: " << st.message();
    }
    frames_written_ += written;
  }
  // audio.ref: the framer takes "now" as the time just after the last sample.
  ref_framer_.Push(block_.data(), n, play_ns + int64_t(double(n) * 1e9 / rate_), 0, !info.audible);
}

// ---- ALSA ----------------------------------------------------------------

void PlaybackActor::OnOpened() {
  if (!opened_once_) {
    VB_LOG(kInfo) << "playback " << alsa_device_ << ": " << sink_->format().sample_rate << " Hz, "
                  << sink_->format().channels << " ch";
    opened_once_ = true;
  }
  StopPacing();
  ref_framer_.Discontinuity();
  history_.clear();
  history_cap_ = size_t(rate_) * size_t(alsa_buffer_ms_) / 1000 * 4;
  last_write_ns_ = bus::MonoNs();
  xruns_seen_ = sink_->xruns();
  group_ = ctx_->loop().AddPollGroup(sink_->PollFds(), [this](std::span<const pollfd> fds) { OnDeviceReady(fds); });
  Service();
}

void PlaybackActor::OnDeviceReady(std::span<const pollfd> fds) {
  if (sink_->Ready(fds)) Service();
}

void PlaybackActor::Service() {
  if (!sink_->is_open()) return;
  const size_t period = size_t(rate_) * size_t(period_ms_) / 1000;
  const uint32_t ch = sink_->format().channels;
  for (int i = 0; i < 16; ++i) {
    size_t avail = 0;
    int64_t delay = 0;
    if (Status st = sink_->Avail(&avail, &delay); !st.ok()) return DeviceLost(st);
    if (avail < period) break;
    // The block leaves the speaker once what the device holds has played.
    const int64_t now = bus::MonoNs();
    const int64_t play_ns = now + delay * 1'000'000'000 / rate_;
    block_.resize(period);
    wide_.resize(period * ch);
    RenderInfo info;
    engine_->Render(block_.data(), period, now, play_ns, &info);
    ApplyVolume(block_.data(), period);
    PublishEvents();
    if (info.origin_ns) last_origin_ns_ = info.origin_ns;
    for (size_t k = 0; k < period; ++k)
      for (uint32_t c = 0; c < ch; ++c) wide_[k * ch + c] = block_[k];
    size_t written = 0;
    if (Status st = sink_->Write(wide_.data(), period, &written, nullptr); !st.ok()) return DeviceLost(st);
    frames_written_ += written;
    last_write_ns_ = now;
    history_.insert(history_.end(), block_.begin(), block_.begin() + ptrdiff_t(written));
    if (history_.size() > history_cap_) history_.erase(history_.begin(), history_.end() - ptrdiff_t(history_cap_));
    ref_framer_.Push(block_.data(), written, play_ns + int64_t(double(written) * 1e9 / rate_), 0, !info.audible);
    if (written < period) break;
  }
  if (sink_->xruns() != xruns_seen_) {
    ctx_->Count("xruns", int64_t(sink_->xruns() - xruns_seen_));
    xruns_seen_ = sink_->xruns();
    ref_framer_.Discontinuity();
    uint64_t suppressed = 0;
    if (xrun_log_.Allow(bus::MonoNs(), &suppressed)) {
      VB_LOG(kWarn) << "playback device underrun (" << xruns_seen_ << " in total): recovered";
    }
  }
}

void PlaybackActor::UnplayedTail(std::vector<int16_t>* out) {
  size_t avail = 0;
  int64_t delay = 0;
  if (!sink_->Avail(&avail, &delay).ok() || delay <= 0) return;
  size_t n = std::min(size_t(delay), history_.size());
  out->assign(history_.end() - ptrdiff_t(n), history_.end());
  bool audible = false;
  for (int16_t v : *out) audible = audible || v != 0;
  if (!audible) out->clear();
}

void PlaybackActor::DeviceLost(const Status& why) {
  if (group_) ctx_->loop().RemovePollGroup(group_);
  group_ = 0;
  sink_->Close();
  guard_->Lost(why);
}

void PlaybackActor::Watchdog() {
  if (!is_device() || device_lost() || !sink_->is_open()) return;
  Service();  // some plugins (pulse) signal nothing when their server dies
  if (sink_->is_open() && bus::MonoNs() - last_write_ns_ > kStallNs)
    DeviceLost(Status::Unavailable("device took nothing for " + std::to_string((bus::MonoNs() - last_write_ns_) / 1'000'000) + " ms"));
}

// ---- Timer pacing and offline rendering ----------------------------------

void PlaybackActor::StartPacing() {
  if (pace_timer_) return;
  pace_start_ns_ = bus::MonoNs();
  paced_frames_ = 0;
  pace_timer_ = ctx_->loop().AddTimer(std::chrono::milliseconds(period_ms_), [this] { PacedTick(); });
}

void PlaybackActor::StopPacing() {
  if (pace_timer_) ctx_->loop().CancelTimer(pace_timer_);
  pace_timer_ = 0;
}

void PlaybackActor::PacedTick() {
  const int64_t now = bus::MonoNs();
  uint64_t due = uint64_t(double(now - pace_start_ns_) * rate_ / 1e9);
  const size_t period = size_t(rate_) * size_t(period_ms_) / 1000;
  // Whole periods only; a late tick catches up (at most 1 s).
  size_t n = size_t(std::min<uint64_t>(due - paced_frames_, uint64_t(rate_))) / period * period;
  // Written now: the first block is heard now (a late tick plays late).
  for (size_t at = 0; at < n; at += period) RenderBlock(period, now, now + int64_t(double(at) * 1e9 / rate_), !device_lost());
  paced_frames_ += n;
}

void PlaybackActor::RenderOffline() {
  const size_t period = size_t(rate_) * size_t(period_ms_) / 1000;
  while (engine_->HasWork()) {
    const int64_t now = bus::MonoNs();
    size_t n = std::min(period, std::max<size_t>(engine_->queued_samples(), 1));
    if (engine_->queued_samples() == 0) n = period;  // a fade or a prompt: whole periods
    RenderBlock(n, now, now, true);
  }
}

void PlaybackActor::OnVolume(const v1::VolumeCommand& cmd) {
  if (cmd.has_set_percent()) volume_ = int(std::min<uint32_t>(cmd.set_percent(), 100));
  else if (cmd.has_step_percent()) volume_ = std::clamp(volume_ + std::clamp(cmd.step_percent(), -100, 100), 0, 100);
  VB_LOG(kInfo) << "volume " << volume_ << " %";
  v1::VolumeLevel l;
  l.set_percent(uint32_t(volume_));
  l.set_command_id(cmd.command_id());
  level_.Publish(l);
}

void PlaybackActor::ApplyVolume(int16_t* pcm, size_t n) const {
  if (volume_ >= 100) return;
  // Perceived loudness: a cubic curve (50 % ≈ −18 dB), silence at 0.
  const double v = volume_ / 100.0, gain = v * v * v;
  for (size_t i = 0; i < n; ++i) pcm[i] = int16_t(std::lround(pcm[i] * gain));
}

void PlaybackActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  auto put = [&hb](const char* key, int64_t v) { (*hb.mutable_extra())[key] = v; };
  put("volume", volume_);
  {
    v1::VolumeLevel l;  // late joiners
    l.set_percent(uint32_t(volume_));
    level_.Publish(l);
  }
  const auto& c = engine_->counters();
  put("frames_in", int64_t(c.frames_in));
  put("underruns", int64_t(c.underruns));
  put("dropped_cancelled", int64_t(c.dropped_cancelled));
  put("dropped_overflow", int64_t(c.dropped_overflow));
  put("flushes", int64_t(c.flushes));
  put("prompts", int64_t(c.prompts));
  put("turns_started", int64_t(c.turns_started));
  put("turns_drained", int64_t(c.turns_drained));
  put("events_suppressed", int64_t(c.events_suppressed));
  // vb-control reads this: a restarted control learns the agent is speaking,
  // and a SPEAKING dialog whose DRAINED was lost learns it is over.
  put("speaking", engine_->speaking() ? 1 : 0);
  put("queued_ms", int64_t(engine_->queued_samples() * 1000 / size_t(rate_)));
  put("frames_written", int64_t(frames_written_));
  put("xruns_total", int64_t(sink_ ? sink_->xruns() : 0));
  put("device_open", sink_ && sink_->is_open() ? 1 : 0);
}

}  // namespace vb::playback
