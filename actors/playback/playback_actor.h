// vb-playback: audio.out → the speaker (ALSA or a WAV file) through a
// PlaybackEngine; publishes audio.ref (what really reached the speaker, 16 kHz
// mono, stamped with when it leaves it) and playback.event. Reacts to
// Interrupt, Flush and PlayPrompt on dialog.command and to cancelled turns on
// session.event; sets its volume by playback.volume and reports it on
// playback.level.
//
// Pacing: ALSA by its poll descriptors (the device's queue is kept at
// alsa.buffer_ms, which bounds the flush latency); a WAV sink by a loop timer
// (real time) or as soon as audio arrives (offline). While the device is
// lost, a timer keeps rendering into nothing so turns still end on time, and
// the device is reopened with back-off.
#pragma once

#include <memory>

#include "actors/common/device_guard.h"
#include "actors/common/pcm_framer.h"
#include "actors/common/pcm_io.h"
#include "actors/common/resampler.h"
#include "actors/playback/playback_engine.h"
#include "actors/playback/prompts.h"
#include "bus/actor.h"
#include "bus/log.h"

namespace vb::playback {

class PlaybackActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  Status Activate(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  bool is_device() const { return sink_kind_ == "alsa"; }
  void OnAudio(const bus::Received<v1::AudioFrame>& m);
  void OnCommand(const v1::DialogCommand& cmd);
  // Renders n frames that leave the speaker at play_ns and writes them (or
  // discards them when `write` is false); publishes audio.ref and events.
  void RenderBlock(size_t n, int64_t now, int64_t play_ns, bool write);
  // Speaker volume (playback.volume): scales what is written, and so audio.ref.
  void OnVolume(const v1::VolumeCommand& cmd);
  void ApplyVolume(int16_t* pcm, size_t n) const;
  void PublishEvents();
  void PublishEvent(v1::PlaybackEvent::Kind kind, const std::string& turn, const std::string& detail,
                    int64_t latency = 0);
  // ALSA
  void OnOpened();
  bool device_lost() const { return guard_ && guard_->lost(); }
  void OnDeviceReady(std::span<const pollfd> fds);
  void Service();
  void DeviceLost(const Status& why);
  // The samples still queued in the device (from what we wrote), if any is
  // not silence.
  void UnplayedTail(std::vector<int16_t>* out);
  void Watchdog();
  // Timer-paced: WAV real time, or a lost device.
  void PacedTick();
  void StartPacing();
  void StopPacing();
  void RenderOffline();

  // Config
  std::string sink_kind_ = "alsa";
  int rate_ = 16000, period_ms_ = 5, target_ms_ = 60, max_buffer_ms_ = 120000, fade_ms_ = 5;
  int drain_timeout_ms_ = 1000;
  double prompt_gain_ = 1.0;
  int volume_ = 100;  // percent
  std::vector<std::pair<std::string, std::string>> prompt_files_;
  std::string alsa_device_ = "default";
  int alsa_channels_ = 1, alsa_buffer_ms_ = 20;
  bool alsa_drop_on_flush_ = false;
  std::string wav_path_;
  bool wav_realtime_ = true, wav_keep_idle_ = false;
  int rt_priority_ = 0;
  int reopen_min_ms_ = 250, reopen_max_ms_ = 2000;

  bus::Context* ctx_ = nullptr;
  std::unique_ptr<PlaybackEngine> engine_;
  std::unique_ptr<PromptLibrary> prompts_;
  std::unique_ptr<audio::PcmSink> sink_;
  audio::PcmFramer ref_framer_;
  audio::Resampler in_resampler_;
  std::vector<int16_t> mono_, resampled_, block_, wide_;
  bus::Publisher<v1::AudioFrame> ref_;
  bus::Publisher<v1::PlaybackEvent> events_;
  bus::Publisher<v1::VolumeLevel> level_;

  bus::Loop::GroupId group_ = 0;
  bus::Loop::TimerId pace_timer_ = 0, watchdog_ = 0;
  int64_t pace_start_ns_ = 0;
  uint64_t paced_frames_ = 0;
  std::unique_ptr<audio::DeviceGuard> guard_;
  bool opened_once_ = false;
  int64_t last_write_ns_ = 0;
  uint64_t xruns_seen_ = 0;
  uint64_t frames_written_ = 0;
  int64_t last_origin_ns_ = 0;
  std::vector<int16_t> history_;  // the last samples written to the device (mono)
  size_t history_cap_ = 0;
  RateLimit rate_log_, xrun_log_;
};

}  // namespace vb::playback
