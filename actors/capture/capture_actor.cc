// The vb-capture adapter: config, audio.mic, heartbeat (see capture_actor.h).
#include "actors/capture/capture_actor.h"

#include "actors/common/realtime.h"
#include "bus/log.h"

namespace vb::capture {

void CaptureActor::DeclareConfig(config::Section& s) {
  s.Choice("source", &source_kind_, "alsa", {"alsa", "wav", "silence"},
           "where the audio comes from: an ALSA device, a WAV file, or silence");
  s.Key("frame_ms", &frame_ms_, 20, {5, 100}, "audio.mic frame length in ms (16 kHz)");
  s.Key("mic_channel", &options_.mic_channel, -1, {-1, 31},
        "device channel used as the microphone; -1 = mean of all channels but the reference");
  s.Key("reference_channel", &options_.reference_channel, -1, {-1, 31},
        "device channel carrying a hardware loopback reference (sent as channel 1 of audio.mic); -1 = none");
  s.Key("resample_quality", &options_.resample_quality, 5, {0, 10},
        "speexdsp resampler quality when the source is not 16 kHz");
  s.Key("rt_priority", &rt_priority_, 0, {0, 99},
        "SCHED_FIFO priority of the loop (1–99) so a busy machine does not cause xruns; 0 = normal "
        "scheduling. Needs root, CAP_SYS_NICE or an rtprio limit; without it, one warning");
  s.Key("reopen_min_ms", &options_.reopen_min_ms, 250, {10, 60000}, "first retry after the device fails");
  s.Key("reopen_max_ms", &options_.reopen_max_ms, 2000, {10, 600000}, "retry interval cap (doubling back-off)");
  {
    auto a = s.Sub("alsa", "ALSA capture (source: alsa)");
    a.Key("device", &options_.alsa.device, std::string("default"),
          "ALSA PCM, e.g. hw:1,0, plughw:1, default, pulse (with PULSE_SOURCE=<sink>.monitor it hears the speaker)");
    a.Key("rate", &alsa_rate_, 16000, {8000, 192000},
          "rate asked of the device (the nearest is taken; resampled to 16 kHz)");
    a.Key("channels", &alsa_channels_, 1, {1, 32}, "channels asked of the device (the nearest is taken)");
    a.Key("period_ms", &alsa_period_ms_, 10, {1, 200}, "ALSA period: wake-up granularity");
    a.Key("buffer_ms", &alsa_buffer_ms_, 100, {4, 2000}, "ALSA buffer: how late the loop may be before an overrun");
    if (alsa_buffer_ms_ < 2 * alsa_period_ms_) a.Error("buffer_ms", "must be at least two periods");
    a.Finish();
  }
  {
    auto w = s.Sub("wav", "WAV file as the microphone (source: wav)");
    w.Key("path", &options_.wav_path, std::string(""), "WAV file (any rate, channels, 8/16/24/32-bit or float)");
    w.Key("loop", &options_.wav_loop, false, "start again at the end");
    w.Key("realtime", &options_.wav_realtime, true, "pace in real time; false = offline runs at wav.speed");
    w.Key("speed", &options_.wav_speed, 20.0, {0.0, 10000.0},
          "offline (realtime: false): multiple of real time; 0 = as fast as the loop goes (a subscriber "
          "that cannot keep up loses frames at the stream high-water mark)");
    w.Choice("at_end", &wav_at_end_, "silence", {"silence", "stop", "exit"},
             "after the end: publish synthetic-silence frames (real time), stop publishing, or exit 0");
    if (source_kind_ == "wav" && options_.wav_path.empty()) w.Error("path", "source: wav needs a file");
    w.Finish();
    wav_section_.emplace(w);  // Configure() names wav.path's line if the file does not open
  }
  {
    auto z = s.Sub("silence", "silence as the microphone (source: silence)");
    z.Key("rate", &silence_rate_, 16000, {8000, 192000}, "rate of the silent source");
    z.Key("channels", &silence_channels_, 1, {1, 32}, "channels of the silent source");
    z.Finish();
  }
  if (options_.reopen_max_ms < options_.reopen_min_ms) s.Error("reopen_max_ms", "must be >= reopen_min_ms");
}

Status CaptureActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  using Src = CaptureOptions::Source;
  options_.source = source_kind_ == "alsa" ? Src::kAlsa : source_kind_ == "wav" ? Src::kWav : Src::kSilence;
  options_.frame_ms = uint32_t(frame_ms_);
  options_.alsa.sample_rate = uint32_t(alsa_rate_);
  options_.alsa.channels = uint32_t(alsa_channels_);
  options_.alsa.period_us = uint32_t(alsa_period_ms_) * 1000;
  options_.alsa.buffer_us = uint32_t(alsa_buffer_ms_) * 1000;
  using End = CaptureOptions::AtEnd;
  options_.wav_at_end = wav_at_end_ == "exit" ? End::kExit : wav_at_end_ == "stop" ? End::kStop : End::kSilence;
  options_.silence = {uint32_t(silence_rate_), uint32_t(silence_channels_)};
  loop_ = std::make_unique<audio::BusPumpLoop>(ctx.loop());
  CaptureCore::Outputs out;
  out.frame = [this](const v1::AudioFrame& f, int64_t origin_ns) {
    bus::PublishOptions opts;
    opts.origin_ns = origin_ns;
    mic_.Publish(f, opts);
  };
  out.lost = [this](const std::string&) { ctx_->Degraded("capture device lost"); };
  out.back = [this] { ctx_->Healthy(); };
  out.stop = [this](int code) { ctx_->Stop(code); };
  core_ = std::make_unique<CaptureCore>(options_, *loop_, std::move(out));
  bool file_error = false;
  if (Status st = core_->Init(&file_error); !st.ok())
    return file_error ? wav_section_->ErrorAt("path", st.message()) : st;
  mic_ = ctx.bus().Advertise(bus::topics::kAudioMic);
  return Status::Ok();
}

Status CaptureActor::Activate(bus::Context& ctx) {
  audio::RequestRealtimePriority(rt_priority_);
  if (std::string line = core_->Describe(); !line.empty()) VB_LOG(kInfo) << line;
  if (!core_->waits_for_listener()) {
    core_->Start();
    return Status::Ok();
  }
  // Offline: what is published before anyone listens is lost, and the
  // whole file may take less time than a subscription takes to arrive.
  VB_LOG(kInfo) << "offline: waiting for a subscriber to " << mic_.topic();
  wait_timer_ = ctx.loop().AddTimer(std::chrono::milliseconds(5), [this] {
    if (!ctx_->bus().HasSubscriber(mic_)) return;
    ctx_->loop().CancelTimer(wait_timer_);
    wait_timer_ = 0;
    core_->StartOffline();
  });
  return Status::Ok();
}

void CaptureActor::Deactivate(bus::Context&) {
  if (core_) core_->Stop();
}

void CaptureActor::OnHeartbeat(bus::Context&, v1::Heartbeat& hb) {
  if (!core_) return;
  std::map<std::string, int64_t> figures;
  core_->Figures(&figures);
  for (const auto& [key, value] : figures) (*hb.mutable_extra())[key] = value;
}

}  // namespace vb::capture
