// The logic of vb-capture: source, pump, framer (see capture_core.h).
#include "actors/capture/capture_core.h"

#include "actors/common/file_pcm.h"

namespace vb::capture {
namespace {
// A running device silent this long is dead (a sound server may take a
// moment to deliver the first samples after an open).
constexpr int64_t kStallNs = 2'000'000'000;
constexpr int64_t kFirstDataNs = 5'000'000'000;

std::unique_ptr<audio::PcmSource> MakeSource(const CaptureOptions& o) {
  switch (o.source) {
    case CaptureOptions::Source::kAlsa: return std::make_unique<audio::AlsaSource>(o.alsa);
    case CaptureOptions::Source::kWav: return std::make_unique<audio::WavFileSource>(o.wav_path, o.wav_loop);
    case CaptureOptions::Source::kSilence: return std::make_unique<audio::SilenceSource>(o.silence);
  }
  return nullptr;
}
}  // namespace

CaptureCore::CaptureCore(CaptureOptions options, audio::PumpLoop& loop, Outputs out,
                         std::unique_ptr<audio::PcmSource> source)
    : options_(std::move(options)), loop_(loop), out_(std::move(out)) {
  if (!source) source = MakeSource(options_);
  audio::PumpConfig pc;
  pc.what = "capture device";
  pc.xrun_line = "capture overrun";
  pc.xrun_effect = "samples lost, stream resumed";
  pc.period_ms = options_.frame_ms;
  pc.device_period_ms = options_.alsa.period_us / 1000;
  pc.reopen_min_ms = options_.reopen_min_ms;
  pc.reopen_max_ms = options_.reopen_max_ms;
  pc.stall_ns = kStallNs;
  pc.first_data_ns = kFirstDataNs;
  pc.park_idle = true;
  audio::PcmPump::Hooks hooks;
  hooks.discontinuity = [this] { framer_.Discontinuity(); };
  hooks.opened = [this]() -> Status {
    if (!logged_format_) {
      auto fmt = pump_->format();
      VB_LOG(kInfo) << "capture " << options_.alsa.device << ": " << fmt.sample_rate << " Hz, " << fmt.channels << " ch"
                    << (fmt.sample_rate != 16000 || fmt.channels != 1 ? " (converted to 16 kHz mono)" : "");
      logged_format_ = true;
    }
    return framer_ready_ ? Status::Ok() : InitFramer();
  };
  hooks.fatal = [this](const Status&) { out_.stop(kExitConfig); };
  hooks.lost = [this](const std::string& why) {
    if (out_.lost) out_.lost(why);
  };
  hooks.back = [this](int64_t) {
    if (out_.back) out_.back();
  };
  pump_ = std::make_unique<audio::PcmPump>(
      loop_, pc, std::move(source),
      [this](const int16_t* pcm, size_t n, int64_t now, int64_t delay, bool synthetic) {
        framer_.Push(pcm, n, now, delay, synthetic);
      },
      [this] { return AtEnd(); }, std::move(hooks));
}

Status CaptureCore::InitFramer() {
  audio::FramerConfig fc{16000, options_.frame_ms, options_.mic_channel, options_.reference_channel,
                         options_.resample_quality};
  if (Status st = framer_.Init(pump_->format(), fc, out_.frame); !st.ok()) return st;
  framer_ready_ = true;
  return Status::Ok();
}

Status CaptureCore::Init(bool* file_error) {
  *file_error = false;
  audio::PcmSource* src = pump_->source();
  if (src->clocked()) return Status::Ok();  // opened (and retried) by the pump
  if (Status st = src->Open(); !st.ok()) {
    *file_error = options_.source == CaptureOptions::Source::kWav;
    return Status::Config(st.message());
  }
  if (Status st = InitFramer(); !st.ok()) {
    *file_error = options_.source == CaptureOptions::Source::kWav;
    return Status::Config(st.message());
  }
  return Status::Ok();
}

bool CaptureCore::waits_for_listener() const {
  return options_.source == CaptureOptions::Source::kWav && !options_.wav_realtime;
}

std::string CaptureCore::Describe() const {
  if (options_.source == CaptureOptions::Source::kAlsa) return "";  // the device says when it opens
  const auto fmt = pump_->format();
  return (options_.source == CaptureOptions::Source::kWav ? "source wav " + options_.wav_path : "source silence") +
         ": " + std::to_string(fmt.sample_rate) + " Hz, " + std::to_string(fmt.channels) + " ch, " +
         (waits_for_listener() ? "offline at " + std::to_string(options_.wav_speed) + "x" : "real time");
}

void CaptureCore::Start() {
  if (waits_for_listener()) return;
  pump_->Start(1.0);
}

// Offline: a multiple of real time (the stream plane's high-water mark drops
// what a burst would pile up faster than the subscriber reads), or 0: as
// fast as the loop goes.
void CaptureCore::StartOffline() { pump_->Start(options_.wav_speed); }

void CaptureCore::Stop() { pump_->Stop(); }

std::unique_ptr<audio::PcmSource> CaptureCore::AtEnd() {
  ++sources_ended_;
  static const char* kNames[] = {"silence", "stop", "exit"};
  VB_LOG(kInfo) << "end of " << options_.wav_path << " (" << framer_.frames_out() << " frames); "
                << kNames[int(options_.wav_at_end)];
  switch (options_.wav_at_end) {
    case CaptureOptions::AtEnd::kExit: out_.stop(0); return nullptr;
    case CaptureOptions::AtEnd::kStop: return nullptr;
    case CaptureOptions::AtEnd::kSilence: break;
  }
  // Silence from here on, in real time, marked synthetic.
  return std::make_unique<audio::SilenceSource>(pump_->format());
}

void CaptureCore::Figures(std::map<std::string, int64_t>* out) const {
  pump_->Figures(out);
  (*out)["frames_out"] = int64_t(framer_.frames_out());
  (*out)["samples_skipped"] = int64_t(framer_.samples_skipped());
  if (sources_ended_) (*out)["sources_ended"] = int64_t(sources_ended_);
}

}  // namespace vb::capture
