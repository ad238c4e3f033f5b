// vb-playback: audio.out → the speaker. The adapter of PlaybackCore
// (playback_core.h: engine, PcmPump, sink, reference; no bus): it declares
// the config and maps audio.out, dialog.order (Interrupt, Flush,
// PlayPrompt), cancelled turns on session.event and playback.volume to the
// core, and its output to audio.ref, playback.event, playback.level and the
// heartbeat (DEGRADED while the device is lost).
#pragma once

#include <memory>

#include "actors/common/bus_pump_loop.h"
#include "actors/playback/playback_core.h"
#include "bus/actor.h"

namespace vb::playback {

class PlaybackActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  Status Activate(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  // Config
  std::string sink_kind_ = "alsa";
  int rate_ = 16000, period_ms_ = 10, target_ms_ = 60, max_buffer_ms_ = 120000, fade_ms_ = 5;
  int drain_timeout_ms_ = 1000;
  int alsa_channels_ = 1, alsa_buffer_ms_ = 25;
  int pulse_buffer_ms_ = 80, pulse_period_ms_ = 20, pulse_margin_ms_ = 20;
  int rt_priority_ = 0;
  PlaybackOptions options_;

  bus::Context* ctx_ = nullptr;
  std::unique_ptr<audio::BusPumpLoop> loop_;
  std::unique_ptr<PlaybackCore> core_;
  bus::Publisher<v1::AudioFrame> ref_;
  bus::Publisher<v1::PlaybackEvent> events_;
  bus::Publisher<v1::VolumeLevel> level_;
};

}  // namespace vb::playback
