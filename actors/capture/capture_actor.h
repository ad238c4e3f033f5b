// vb-capture: the microphone → audio.mic. The adapter of CaptureCore
// (capture_core.h: source, PcmPump, framer; no bus): it declares the config,
// publishes the frames on audio.mic, shows a lost device in the heartbeat
// (DEGRADED) and, offline, waits for a subscriber before a file is read.
#pragma once

#include <memory>
#include <optional>

#include "actors/capture/capture_core.h"
#include "actors/common/bus_pump_loop.h"
#include "bus/actor.h"

namespace vb::capture {

class CaptureActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  Status Activate(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  // Config
  std::string source_kind_ = "alsa", wav_at_end_ = "silence";
  int frame_ms_ = 20;
  int alsa_rate_ = 16000, alsa_channels_ = 1, alsa_period_ms_ = 10, alsa_buffer_ms_ = 100;
  int silence_rate_ = 16000, silence_channels_ = 1;
  int rt_priority_ = 0;
  CaptureOptions options_;
  std::optional<config::Section> wav_section_;  // where wav.path is written, for errors found at Configure

  bus::Context* ctx_ = nullptr;
  std::unique_ptr<audio::BusPumpLoop> loop_;
  std::unique_ptr<CaptureCore> core_;
  bus::Publisher<v1::AudioFrame> mic_;
  bus::Loop::TimerId wait_timer_ = 0;
};

}  // namespace vb::capture
