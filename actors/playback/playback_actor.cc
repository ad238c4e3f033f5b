// The vb-playback adapter: config and bus mapping of PlaybackCore (see
// playback_actor.h).
#include "actors/playback/playback_actor.h"

#include "actors/common/realtime.h"
#include "bus/log.h"

namespace vb::playback {

void PlaybackActor::DeclareConfig(config::Section& s) {
  s.Choice("sink", &sink_kind_, "alsa", {"alsa", "pulse", "wav"},
           "where the audio goes: an ALSA device, a PulseAudio server (libpulse, a deep queue rewritten on a "
           "flush: few wake-ups) or a WAV file");
  s.Key("rate", &rate_, 16000, {8000, 48000},
        "playback rate in Hz, mono; must equal decoder.output_rate "
        "(frames at another rate are resampled)");
  s.Key("period_ms", &period_ms_, 10, {2, 100},
        "render granularity and ALSA period (blocks are the device's period where it picks a shorter one)");
  s.Key("target_ms", &target_ms_, 60, {0, 2000},
        "jitter buffer: speech buffered before a turn starts or resumes after an underrun");
  s.Key("max_buffer_ms", &max_buffer_ms_, 120000, {100, 600000},
        "jitter buffer bound (replies arrive faster than real time)");
  s.Key("fade_ms", &fade_ms_, 5, {1, 50}, "fade-out on Interrupt/Flush");
  s.Key("drain_timeout_ms", &drain_timeout_ms_, 1000, {50, 60000},
        "a turn starved this long without an end-of-turn marker counts as drained");
  s.Key("prompt_gain", &options_.engine.prompt_gain, 1.0, {0.0, 4.0}, "gain of prompt sounds mixed over speech");
  s.Key("volume", &options_.volume, 100, {0, 100}, "speaker volume at start, percent (playback.volume changes it)");
  s.Key("prompts", &options_.prompt_files, "extra prompt sounds: name → WAV file (built in: wake, error)");
  s.Key("rt_priority", &rt_priority_, 0, {0, 99},
        "SCHED_FIFO priority of the loop (1–99) so a busy machine does not cause xruns; 0 = normal "
        "scheduling. Needs root, CAP_SYS_NICE or an rtprio limit; without it, one warning");
  s.Key("reopen_min_ms", &options_.reopen_min_ms, 250, {10, 60000}, "first retry after the device fails");
  s.Key("reopen_max_ms", &options_.reopen_max_ms, 2000, {10, 600000}, "retry interval cap (doubling back-off)");
  {
    auto a = s.Sub("alsa", "ALSA playback (sink: alsa)");
    a.Key("device", &options_.alsa.device, std::string("default"),
          "ALSA PCM, e.g. default, plughw:0, pulse (PULSE_SINK selects the sink)");
    a.Key("channels", &alsa_channels_, 1, {1, 8}, "channels asked of the device (mono is copied to each)");
    a.Key("buffer_ms", &alsa_buffer_ms_, 25, {4, 1000},
          "device queue: a flush waits for it to play out (≈ buffer_ms + fade_ms + sound server); too small "
          "underruns on a busy machine (see rt_priority)");
    a.Key("drop_on_flush", &options_.drop_on_flush, false,
          "on a flush, drop the device queue and fade from its first unplayed sample (fast with any buffer_ms; "
          "clean only where the device reports its delay exactly: hardware, not PulseAudio)");
    a.Key("idle_stop_ms", &options_.idle_stop_ms, 0u, {0, 600000},
          "stop the device after this long with nothing to play, so silence costs no wake-ups; it restarts "
          "with the next audio or prompt (first sample as fast as from a running stream); no audio.ref while "
          "stopped. 0 = keep playing silence between turns");
    if (alsa_buffer_ms_ < 2 * period_ms_) a.Error("buffer_ms", "must be at least two periods (period_ms)");
    a.Finish();
  }
  {
    auto p = s.Sub("pulse", "PulseAudio playback (sink: pulse)");
    p.Key("server", &options_.pulse.server, std::string(""), "server; empty = the default (PULSE_SERVER, client.conf)");
    p.Key("device", &options_.pulse.device, std::string(""), "sink name; empty = PULSE_SINK or the server's default");
    p.Key("buffer_ms", &pulse_buffer_ms_, 80, {20, 2000},
          "queue kept in the server (write → speaker); deep is safe: a flush rewrites it from just after what is "
          "about to play");
    p.Key("period_ms", &pulse_period_ms_, 20, {5, 200},
          "the loop writes this often, in blocks this long (replaces period_ms for this sink)");
    p.Key("rewind_margin_ms", &pulse_margin_ms_, 20, {2, 100},
          "a flush keeps this much ahead of the play position (the server must still be able to rewrite the "
          "rest); what it takes back was published on audio.ref and is published again as rewritten");
    if (pulse_buffer_ms_ < 2 * pulse_period_ms_) p.Error("buffer_ms", "must be at least two periods (period_ms)");
    if (pulse_margin_ms_ >= pulse_buffer_ms_) p.Error("rewind_margin_ms", "must be less than buffer_ms");
    p.Finish();
  }
  {
    auto w = s.Sub("wav", "WAV file as the speaker (sink: wav)");
    w.Key("path", &options_.wav_path, std::string(""), "WAV file written with what would reach the speaker");
    w.Key("realtime", &options_.wav_realtime, true,
          "pace in real time; false = write audio as soon as it arrives (offline)");
    w.Key("keep_idle", &options_.wav_keep_idle, false, "real time: also write the silence between turns");
    if (sink_kind_ == "wav" && options_.wav_path.empty()) w.Error("path", "sink: wav needs a file");
    w.Finish();
  }
  if (options_.reopen_max_ms < options_.reopen_min_ms) s.Error("reopen_max_ms", "must be >= reopen_min_ms");
}

Status PlaybackActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  options_.sink = sink_kind_ == "alsa"    ? PlaybackOptions::Sink::kAlsa
                  : sink_kind_ == "pulse" ? PlaybackOptions::Sink::kPulse
                                          : PlaybackOptions::Sink::kWav;
  options_.engine.rate = uint32_t(rate_);
  options_.engine.target_ms = uint32_t(target_ms_);
  options_.engine.max_buffer_ms = uint32_t(max_buffer_ms_);
  options_.engine.fade_ms = uint32_t(fade_ms_);
  options_.engine.drain_timeout_ms = uint32_t(drain_timeout_ms_);
  options_.period_ms = uint32_t(period_ms_);
  options_.alsa.channels = uint32_t(alsa_channels_);
  options_.alsa.buffer_us = uint32_t(alsa_buffer_ms_) * 1000;
  options_.pulse.buffer_us = uint32_t(pulse_buffer_ms_) * 1000;
  options_.pulse.period_us = uint32_t(pulse_period_ms_) * 1000;
  options_.pulse.margin_us = uint32_t(pulse_margin_ms_) * 1000;
  options_.pulse.client_name = "vb-playback";
  loop_ = std::make_unique<audio::BusPumpLoop>(ctx.loop());
  PlaybackCore::Outputs out;
  out.ref = [this](const v1::AudioFrame& f, int64_t origin_ns) {
    bus::PublishOptions o;
    o.origin_ns = origin_ns;
    ref_.Publish(f, o);
  };
  out.event = [this](const v1::PlaybackEvent& e) {
    bus::PublishOptions o;
    o.turn_id = e.turn_id();
    events_.Publish(e, o);
  };
  out.lost = [this](const std::string&) { ctx_->Degraded("playback device lost"); };
  out.back = [this] { ctx_->Healthy(); };
  out.error = [this] { ctx_->CountError(); };
  core_ = std::make_unique<PlaybackCore>(options_, *loop_, std::move(out));
  if (Status st = core_->Init(); !st.ok()) return st;

  ref_ = ctx.bus().Advertise(bus::topics::kAudioRef);
  events_ = ctx.bus().Advertise(bus::topics::kPlaybackEvent);
  level_ = ctx.bus().Advertise(bus::topics::kPlaybackLevel);
  ctx.bus().Subscribe<v1::AudioFrame>(bus::topics::kAudioOut, [this](const auto& m) {
    core_->OnAudio(m.msg, m.header.turn_id(), m.header.origin_ns());
  });
  ctx.bus().Subscribe<v1::DialogCommand>(bus::topics::kDialogOrder, [this](const auto& m) { core_->OnCommand(m.msg); });
  ctx.bus().Subscribe<v1::VolumeCommand>(bus::topics::kPlaybackVolume, [this](const auto& m) {
    v1::VolumeLevel l;
    l.set_percent(core_->OnVolume(m.msg));
    l.set_command_id(m.msg.command_id());
    level_.Publish(l);
  });
  ctx.bus().Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
    if (m.msg.has_turn_ended() && m.msg.turn_ended().outcome() == v1::TurnEnded::CANCELLED &&
        !m.header.turn_id().empty()) {
      const std::string turn = m.header.turn_id();  // a copy: the core publishes events
      core_->OnTurnCancelled(turn);
    }
  });
  return Status::Ok();
}

Status PlaybackActor::Activate(bus::Context&) {
  audio::RequestRealtimePriority(rt_priority_);
  core_->Start();
  VB_LOG(kInfo) << core_->Describe();
  return Status::Ok();
}

void PlaybackActor::Deactivate(bus::Context&) {
  if (core_) core_->Stop();
}

void PlaybackActor::OnHeartbeat(bus::Context&, v1::Heartbeat& hb) {
  if (!core_) return;
  {
    v1::VolumeLevel l;  // late joiners
    l.set_percent(core_->volume());
    level_.Publish(l);
  }
  std::map<std::string, int64_t> figures;
  core_->Figures(&figures);
  for (const auto& [key, value] : figures) (*hb.mutable_extra())[key] = value;
}

}  // namespace vb::playback
