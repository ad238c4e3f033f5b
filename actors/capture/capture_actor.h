// vb-capture: the microphone → audio.mic. One PcmSource (ALSA device, WAV
// file or silence) feeds a CaptureFramer; ALSA is driven by its poll
// descriptors in the actor's loop, files and silence by a loop timer (real
// time) or as fast as the loop goes (offline runs). A device that fails is
// closed, reported once (log line, counter, DEGRADED) and reopened with
// back-off until it works again.
#pragma once

#include <memory>
#include <optional>

#include "actors/common/device_guard.h"
#include "actors/common/pcm_framer.h"
#include "actors/common/pcm_io.h"
#include "bus/actor.h"
#include "bus/log.h"

namespace vb::capture {

class CaptureActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  Status Activate(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  void Publish(const v1::AudioFrame& frame, int64_t origin_ns);
  bool is_device() const { return source_kind_ == "alsa"; }
  // ALSA
  Status OpenDevice();
  void OnOpened();
  void OnDeviceReady(std::span<const pollfd> fds);
  void Drain();
  void DeviceLost(const Status& why);
  void Watchdog();
  // Files and silence
  void PacedTick();
  void FastBurst();
  size_t ReadFile(size_t frames, int64_t now_ns);  // frames read
  void AtEnd();

  // Config
  std::string source_kind_ = "alsa";
  int frame_ms_ = 20;
  int mic_channel_ = -1;
  int reference_channel_ = -1;
  int resample_quality_ = 5;
  std::string alsa_device_ = "default";
  int alsa_rate_ = 16000, alsa_channels_ = 1, alsa_period_ms_ = 10, alsa_buffer_ms_ = 100;
  std::string wav_path_;
  std::optional<config::Section> wav_section_;  // where wav.path is written, for errors found at Configure
  bool wav_loop_ = false, wav_realtime_ = true;
  double wav_speed_ = 20.0;
  double speed_ = 1.0;  // pacing: multiple of real time
  std::string wav_at_end_ = "silence";
  int silence_rate_ = 16000, silence_channels_ = 1;
  int rt_priority_ = 0;
  int reopen_min_ms_ = 250, reopen_max_ms_ = 2000;

  bus::Context* ctx_ = nullptr;
  std::unique_ptr<audio::PcmSource> source_;
  audio::PcmFramer framer_;
  bus::Publisher<v1::AudioFrame> mic_;
  std::vector<int16_t> buf_;
  bool framer_ready_ = false;
  bus::Loop::GroupId group_ = 0;
  bus::Loop::TimerId pace_timer_ = 0, watchdog_ = 0;
  std::unique_ptr<audio::DeviceGuard> guard_;
  bool opened_once_ = false;
  int64_t last_data_ns_ = 0;
  bool got_data_ = false;
  int idle_wakeups_ = 0;
  uint64_t xruns_seen_ = 0;
  bool ended_ = false, silence_after_end_ = false;
  int64_t pace_start_ns_ = 0;
  uint64_t paced_frames_ = 0;
  RateLimit xrun_log_;
};

}  // namespace vb::capture
