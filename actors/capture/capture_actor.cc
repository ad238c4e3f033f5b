// The vb-capture adapter: sources, pacing, recovery (see capture_actor.h).
#include "actors/capture/capture_actor.h"

#include "actors/common/alsa_pcm.h"
#include "actors/common/file_pcm.h"
#include "actors/common/realtime.h"

namespace vb::capture {
namespace {
// A running device silent this long is dead (a sound server may take a
// moment to deliver the first samples after an open).
constexpr int64_t kStallNs = 2'000'000'000;
constexpr int64_t kFirstDataNs = 5'000'000'000;
}

void CaptureActor::DeclareConfig(config::Section& s) {
  s.Choice("source", &source_kind_, "alsa", {"alsa", "wav", "silence"},
           "where the audio comes from: an ALSA device, a WAV file, or silence");
  s.Key("frame_ms", &frame_ms_, 20, {5, 100}, "audio.mic frame length in ms (16 kHz)");
  s.Key("mic_channel", &mic_channel_, -1, {-1, 31},
        "device channel used as the microphone; -1 = mean of all channels but the reference");
  s.Key("reference_channel", &reference_channel_, -1, {-1, 31},
        "device channel carrying a hardware loopback reference (sent as channel 1 of audio.mic); -1 = none");
  s.Key("resample_quality", &resample_quality_, 5, {0, 10}, "speexdsp resampler quality when the source is not 16 kHz");
  s.Key("rt_priority", &rt_priority_, 0, {0, 99},
        "SCHED_FIFO priority of the loop (1–99) so a busy machine does not cause xruns; 0 = normal "
        "scheduling. Needs root, CAP_SYS_NICE or an rtprio limit; without it, one warning");
  s.Key("reopen_min_ms", &reopen_min_ms_, 250, {10, 60000}, "first retry after the device fails");
  s.Key("reopen_max_ms", &reopen_max_ms_, 2000, {10, 600000}, "retry interval cap (doubling back-off)");
  {
    auto a = s.Sub("alsa", "ALSA capture (source: alsa)");
    a.Key("device", &alsa_device_, std::string("default"),
          "ALSA PCM, e.g. hw:1,0, plughw:1, default, pulse (with PULSE_SOURCE=<sink>.monitor it hears the speaker)");
    a.Key("rate", &alsa_rate_, 16000, {8000, 192000}, "rate asked of the device (the nearest is taken; resampled to 16 kHz)");
    a.Key("channels", &alsa_channels_, 1, {1, 32}, "channels asked of the device (the nearest is taken)");
    a.Key("period_ms", &alsa_period_ms_, 10, {1, 200}, "ALSA period: wake-up granularity");
    a.Key("buffer_ms", &alsa_buffer_ms_, 100, {4, 2000}, "ALSA buffer: how late the loop may be before an overrun");
    if (alsa_buffer_ms_ < 2 * alsa_period_ms_) a.Error("buffer_ms", "must be at least two periods");
    a.Finish();
  }
  {
    auto w = s.Sub("wav", "WAV file as the microphone (source: wav)");
    w.Key("path", &wav_path_, std::string(""), "WAV file (any rate, channels, 8/16/24/32-bit or float)");
    w.Key("loop", &wav_loop_, false, "start again at the end");
    w.Key("realtime", &wav_realtime_, true, "pace in real time; false = offline runs at wav.speed");
    w.Key("speed", &wav_speed_, 20.0, {0.0, 10000.0},
          "offline (realtime: false): multiple of real time; 0 = as fast as the loop goes (a subscriber "
          "that cannot keep up loses frames at the stream high-water mark)");
    w.Choice("at_end", &wav_at_end_, "silence", {"silence", "stop", "exit"},
             "after the end: publish synthetic-silence frames (real time), stop publishing, or exit 0");
    if (source_kind_ == "wav" && wav_path_.empty()) w.Error("path", "source: wav needs a file");
    w.Finish();
    wav_section_.emplace(w);  // Configure() names wav.path's line if the file does not open
  }
  {
    auto z = s.Sub("silence", "silence as the microphone (source: silence)");
    z.Key("rate", &silence_rate_, 16000, {8000, 192000}, "rate of the silent source");
    z.Key("channels", &silence_channels_, 1, {1, 32}, "channels of the silent source");
    z.Finish();
  }
  if (reopen_max_ms_ < reopen_min_ms_) s.Error("reopen_max_ms", "must be >= reopen_min_ms");
}

Status CaptureActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  if (source_kind_ == "alsa") {
    audio::AlsaConfig c;
    c.device = alsa_device_;
    c.sample_rate = uint32_t(alsa_rate_);
    c.channels = uint32_t(alsa_channels_);
    c.period_us = uint32_t(alsa_period_ms_) * 1000;
    c.buffer_us = uint32_t(alsa_buffer_ms_) * 1000;
    source_ = std::make_unique<audio::AlsaSource>(c);
  } else if (source_kind_ == "wav") {
    source_ = std::make_unique<audio::WavFileSource>(wav_path_, wav_loop_);
    if (Status st = source_->Open(); !st.ok()) return wav_section_->ErrorAt("path", st.message());
  } else {
    source_ = std::make_unique<audio::SilenceSource>(
        audio::PcmFormat{uint32_t(silence_rate_), uint32_t(silence_channels_)});
    source_->Open();
  }
  if (source_->is_open()) {
    audio::FramerConfig fc{16000, uint32_t(frame_ms_), mic_channel_, reference_channel_, resample_quality_};
    if (Status st = framer_.Init(source_->format(), fc, [this](const auto& f, int64_t o) { Publish(f, o); });
        !st.ok())
      return source_kind_ == "wav" ? wav_section_->ErrorAt("path", st.message()) : Status::Config(st.message());
    framer_ready_ = true;
  }
  mic_ = ctx.bus().Advertise(bus::topics::kAudioMic);
  return Status::Ok();
}

Status CaptureActor::Activate(bus::Context& ctx) {
  audio::RequestRealtimePriority(rt_priority_);
  if (is_device()) {
    guard_ = std::make_unique<audio::DeviceGuard>("capture device", reopen_min_ms_, reopen_max_ms_);
    guard_->Start(ctx, {.open = [this] { return OpenDevice(); }, .on_open = [this] { OnOpened(); }, .on_lost = {}, .on_back = {}});
    watchdog_ = ctx.loop().AddTimer(std::chrono::milliseconds(250), [this] { Watchdog(); });
    return Status::Ok();
  }
  VB_LOG(kInfo) << "source " << source_kind_ << (source_kind_ == "wav" ? " " + wav_path_ : "") << ": "
                << source_->format().sample_rate << " Hz, " << source_->format().channels << " ch, "
                << (wav_realtime_ || source_kind_ == "silence" ? std::string("real time") : "offline at " + std::to_string(wav_speed_) + "x");
  pace_start_ns_ = bus::MonoNs();
  if (source_kind_ == "wav" && !wav_realtime_) {
    // Offline: what is published before anyone listens is lost, and the
    // whole file may take less time than a subscription takes to arrive.
    VB_LOG(kInfo) << "offline: waiting for a subscriber to " << mic_.topic();
    pace_timer_ = ctx.loop().AddTimer(std::chrono::milliseconds(5), [this] {
      if (!ctx_->bus().HasSubscriber(mic_)) return;
      ctx_->loop().CancelTimer(pace_timer_);
      pace_timer_ = 0;
      if (wav_speed_ <= 0) return FastBurst();
      // A multiple of real time: the stream plane's high-water mark drops
      // what a burst would pile up faster than the subscriber reads.
      speed_ = wav_speed_;
      pace_start_ns_ = bus::MonoNs();
      auto period = std::chrono::nanoseconds(int64_t(frame_ms_ * 1e6 / speed_));
      pace_timer_ = ctx_->loop().AddTimer(std::max<std::chrono::nanoseconds>(period, std::chrono::milliseconds(1)),
                                          [this] { PacedTick(); });
    });
  } else {
    pace_timer_ = ctx.loop().AddTimer(std::chrono::milliseconds(frame_ms_), [this] { PacedTick(); });
  }
  return Status::Ok();
}

void CaptureActor::Deactivate(bus::Context& ctx) {
  if (group_) ctx.loop().RemovePollGroup(group_);
  group_ = 0;
  source_->Close();
}

void CaptureActor::Publish(const v1::AudioFrame& frame, int64_t origin_ns) {
  bus::PublishOptions opts;
  opts.origin_ns = origin_ns;
  mic_.Publish(frame, opts);
}

// ---- ALSA ----------------------------------------------------------------

Status CaptureActor::OpenDevice() {
  if (Status st = source_->Open(); !st.ok()) return st;
  if (!framer_ready_) {
    audio::FramerConfig fc{16000, uint32_t(frame_ms_), mic_channel_, reference_channel_, resample_quality_};
    if (Status st = framer_.Init(source_->format(), fc, [this](const auto& f, int64_t o) { Publish(f, o); }); !st.ok()) {
      // The device cannot serve this configuration: nothing to retry.
      VB_LOG(kError) << "capture: " << st.message();
      ctx_->Stop(kExitConfig);
      return Status::Ok();
    }
    framer_ready_ = true;
  }
  return Status::Ok();
}

void CaptureActor::OnOpened() {
  if (!opened_once_) {
    auto fmt = source_->format();
    VB_LOG(kInfo) << "capture " << alsa_device_ << ": " << fmt.sample_rate << " Hz, " << fmt.channels << " ch"
                  << (fmt.sample_rate != 16000 || fmt.channels != 1 ? " (converted to 16 kHz mono)" : "");
    opened_once_ = true;
  }
  framer_.Discontinuity();
  last_data_ns_ = bus::MonoNs();
  got_data_ = false;
  xruns_seen_ = source_->xruns();
  group_ = ctx_->loop().AddPollGroup(source_->PollFds(), [this](std::span<const pollfd> fds) { OnDeviceReady(fds); });
}

void CaptureActor::OnDeviceReady(std::span<const pollfd> fds) {
  uint64_t before = framer_.frames_out();
  int64_t before_ns = last_data_ns_;
  if (source_->Ready(fds)) Drain();
  if (!source_->is_open() || last_data_ns_ != before_ns || framer_.frames_out() != before) {
    idle_wakeups_ = 0;
    return;
  }
  // Some plugins (pulse while its stream starts) keep a descriptor readable
  // with nothing to read: leave the poll for one period instead of spinning.
  if (++idle_wakeups_ >= 3 && group_) {
    ctx_->Count("idle_wakeups_parked");
    ctx_->loop().RemovePollGroup(group_);
    group_ = 0;
    ctx_->loop().AddOneShot(std::chrono::milliseconds(alsa_period_ms_), [this] {
      idle_wakeups_ = 0;
      if (source_->is_open() && !group_)
        group_ = ctx_->loop().AddPollGroup(source_->PollFds(), [this](std::span<const pollfd> f) { OnDeviceReady(f); });
    });
  }
}

void CaptureActor::Drain() {
  if (!source_->is_open()) return;
  const auto fmt = source_->format();
  buf_.resize(size_t(fmt.sample_rate) / 50 * fmt.channels);  // up to 20 ms per read
  const size_t max_frames = buf_.size() / fmt.channels;
  for (int i = 0; i < 64; ++i) {
    size_t got = 0;
    int64_t delay = 0;
    Status st = source_->Read(buf_.data(), max_frames, &got, &delay);
    if (!st.ok()) return DeviceLost(st);
    if (source_->xruns() != xruns_seen_) {
      ctx_->Count("xruns", int64_t(source_->xruns() - xruns_seen_));
      xruns_seen_ = source_->xruns();
      framer_.Discontinuity();
      uint64_t suppressed = 0;
      if (xrun_log_.Allow(bus::MonoNs(), &suppressed)) {
        VB_LOG(kWarn) << "capture overrun (" << xruns_seen_ << " in total): samples lost, stream resumed";
      }
    }
    if (got == 0) break;
    last_data_ns_ = bus::MonoNs();
    got_data_ = true;
    framer_.Push(buf_.data(), got, last_data_ns_, delay);
  }
}

void CaptureActor::DeviceLost(const Status& why) {
  if (group_) ctx_->loop().RemovePollGroup(group_);
  group_ = 0;
  source_->Close();
  framer_.Discontinuity();
  guard_->Lost(why);
}

void CaptureActor::Watchdog() {
  if (!source_->is_open() || guard_->lost()) return;
  // Some plugins (pulse) signal nothing when their server dies: probe.
  Drain();
  if (source_->is_open() && bus::MonoNs() - last_data_ns_ > (got_data_ ? kStallNs : kFirstDataNs))
    DeviceLost(Status::Unavailable("no samples for " + std::to_string((bus::MonoNs() - last_data_ns_) / 1'000'000) + " ms"));
}

// ---- Files and silence ---------------------------------------------------

size_t CaptureActor::ReadFile(size_t frames, int64_t now_ns) {
  const auto fmt = source_->format();
  buf_.resize(frames * fmt.channels);
  size_t got = 0;
  source_->Read(buf_.data(), frames, &got, nullptr);
  framer_.Push(buf_.data(), got, now_ns, 0, source_kind_ == "silence" || silence_after_end_);
  return got;
}

void CaptureActor::PacedTick() {
  if (ended_) return;
  // Frames due since the start (a late or skipped tick catches up).
  const int64_t now = bus::MonoNs();
  const uint32_t rate = source_->format().sample_rate;
  uint64_t due = uint64_t(double(now - pace_start_ns_) * speed_ * rate / 1e9);
  if (due <= paced_frames_) return;
  size_t n = size_t(std::min<uint64_t>(due - paced_frames_, rate));  // at most 1 s of audio at once
  paced_frames_ = due;
  // A file's clock is the pacing clock itself: stamps stay exactly one frame
  // apart whatever the timer's jitter.
  const int64_t clock_ns = pace_start_ns_ + int64_t(double(due) * 1e9 / (double(rate) * speed_));
  const size_t got = ReadFile(n, std::min(now, clock_ns));
  if (got < n && source_->at_end()) {
    AtEnd();
    // The silence that follows fills the rest of this tick: no gap in time.
    if (silence_after_end_) ReadFile(n - got, std::min(now, clock_ns));
  }
}

void CaptureActor::FastBurst() {
  if (ended_ || ctx_->loop().stopped()) return;
  const uint32_t rate = source_->format().sample_rate;
  for (int i = 0; i < 5; ++i) {
    const size_t n = rate * uint32_t(frame_ms_) / 1000;
    if (ReadFile(n, bus::MonoNs()) < n && source_->at_end()) return AtEnd();
  }
  ctx_->loop().Post([this] { FastBurst(); });
}

void CaptureActor::AtEnd() {
  ctx_->Count("sources_ended");
  VB_LOG(kInfo) << "end of " << wav_path_ << " (" << framer_.frames_out() << " frames); " << wav_at_end_;
  if (wav_at_end_ == "exit") {
    ended_ = true;
    ctx_->Stop(0);
  } else if (wav_at_end_ == "stop") {
    ended_ = true;
  } else {
    // Silence from here on, in real time, marked synthetic.
    const auto fmt = source_->format();
    source_ = std::make_unique<audio::SilenceSource>(fmt);
    source_->Open();
    silence_after_end_ = true;
    if (speed_ != 1.0 && pace_timer_) {
      ctx_->loop().CancelTimer(pace_timer_);
      pace_timer_ = 0;
    }
    speed_ = 1.0;
    if (!pace_timer_) {
      pace_start_ns_ = bus::MonoNs();
      paced_frames_ = 0;
      pace_timer_ = ctx_->loop().AddTimer(std::chrono::milliseconds(frame_ms_), [this] { PacedTick(); });
    }
  }
}

void CaptureActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  auto put = [&hb](const char* key, int64_t v) { (*hb.mutable_extra())[key] = v; };
  put("frames_out", int64_t(framer_.frames_out()));
  put("samples_skipped", int64_t(framer_.samples_skipped()));
  put("xruns_total", int64_t(source_ ? source_->xruns() : 0));
  put("device_open", source_ && source_->is_open() ? 1 : 0);
}

}  // namespace vb::capture
