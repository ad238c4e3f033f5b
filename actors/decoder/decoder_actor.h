// vb-decoder: session.audio (EncodedAudio, one packet per message) →
// audio.out (AudioFrame at the playback rate, Header.turn_id = the turn).
// Cancelled turns (Interrupt on dialog.order, TurnEnded CANCELLED on
// session.event) are dropped; AgentAudioEnd / TurnEnded end a turn's audio.
// The logic is DownlinkDecoder; this adapter only maps the bus onto it.
#pragma once

#include "actors/decoder/downlink_decoder.h"
#include "bus/actor.h"
#include "bus/log.h"

namespace vb::decoder {

class DecoderActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  void OnFrame(const std::string& turn_id, const DecodedFrame& f);

  DecoderConfig config_;
  int output_rate_ = 16000;
  int frame_ms_ = 20;
  int max_conceal_ms_ = 120;
  DownlinkDecoder decoder_;
  bus::Publisher<v1::AudioFrame> out_;
  v1::AudioFrame frame_;
  bus::Context* ctx_ = nullptr;
  RateLimit bad_log_;
};

}  // namespace vb::decoder
