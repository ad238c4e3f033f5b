// CaptureCore: the logic of vb-capture, with no bus and no ZeroMQ. One
// PcmSource (ALSA device, WAV file or silence; tests: a fault-injecting fake)
// is driven by a PcmPump (pacing, watchdog, device loss and recovery) and
// feeds a PcmFramer, whose 16 kHz frames go to Outputs::frame. A finite WAV
// file ends as `wav_at_end` says. The adapter (capture_actor.cc) maps the
// outputs to audio.mic, the heartbeat and the process's exit.
//
// Loop thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "actors/common/alsa_pcm.h"
#include "actors/common/pcm_framer.h"
#include "actors/common/pcm_pump.h"

namespace vb::capture {

struct CaptureOptions {
  enum class Source { kAlsa, kWav, kSilence };
  Source source = Source::kAlsa;
  uint32_t frame_ms = 20;
  int mic_channel = -1, reference_channel = -1, resample_quality = 5;
  audio::AlsaConfig alsa;
  std::string wav_path;
  bool wav_loop = false, wav_realtime = true;
  double wav_speed = 20.0;
  enum class AtEnd { kSilence, kStop, kExit };
  AtEnd wav_at_end = AtEnd::kSilence;
  audio::PcmFormat silence;
  int reopen_min_ms = 250, reopen_max_ms = 2000;
};

class CaptureCore {
 public:
  struct Outputs {
    std::function<void(const v1::AudioFrame& frame, int64_t origin_ns)> frame;
    std::function<void(const std::string& why)> lost;  // the device is gone (the actor is degraded)
    std::function<void()> back;                        // it works again
    std::function<void(int code)> stop;                // end the process (at_end: exit; a device that cannot serve)
  };
  // `source`: tests pass a fake; otherwise made from the options.
  CaptureCore(CaptureOptions options, audio::PumpLoop& loop, Outputs out,
              std::unique_ptr<audio::PcmSource> source = nullptr);

  // Opens a file or silence now (a WAV file that does not open or cannot be
  // framed is the caller's config error: *file_error = true).
  Status Init(bool* file_error);
  // Starts pumping. Offline files (wav.realtime false) wait for
  // StartOffline(), i.e. for someone to listen.
  void Start();
  bool waits_for_listener() const;
  void StartOffline();
  void Stop();

  // Heartbeat figures (the pump's counters, framer, device).
  void Figures(std::map<std::string, int64_t>* out) const;
  std::string Describe() const;  // one line: what is captured, how ("" for a device)
  const audio::PcmPump& pump() const { return *pump_; }
  const audio::PcmFramer& framer() const { return framer_; }

 private:
  Status InitFramer();
  std::unique_ptr<audio::PcmSource> AtEnd();

  CaptureOptions options_;
  audio::PumpLoop& loop_;
  Outputs out_;
  audio::PcmFramer framer_;
  bool framer_ready_ = false, logged_format_ = false;
  uint64_t sources_ended_ = 0;
  std::unique_ptr<audio::PcmPump> pump_;
};

}  // namespace vb::capture
