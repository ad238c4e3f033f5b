// The vb-decoder bus adapter (see decoder_actor.h).
#include "actors/decoder/decoder_actor.h"

namespace vb::decoder {

void DecoderActor::DeclareConfig(config::Section& s) {
  s.Key("output_rate", &output_rate_, 16000, {8000, 48000},
        "audio.out sample rate in Hz (mono); must match playback.rate. Opus decodes natively at "
        "8000/12000/16000/24000/48000, other rates are resampled");
  s.Key("frame_ms", &frame_ms_, 20, {5, 100}, "audio.out frame length in ms");
  s.Key("max_conceal_ms", &max_conceal_ms_, 120, {0, 1000},
        "longest run of lost Opus packets filled by packet loss concealment; longer gaps are skipped");
}

Status DecoderActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  config_.output_rate = uint32_t(output_rate_);
  config_.frame_ms = uint32_t(frame_ms_);
  config_.max_conceal_ms = uint32_t(max_conceal_ms_);
  if (Status st = decoder_.Init(config_, [this](const std::string& t, const DecodedFrame& f) { OnFrame(t, f); });
      !st.ok())
    return Status::Config(st.message());
  out_ = ctx.bus().Advertise(bus::topics::kAudioOut);

  // Handlers copy what they need of the incoming header before anything
  // publishes: a publish must not be able to change the turn a packet
  // belongs to (issue 12: every later reply carried a dead turn's id).
  ctx.bus().Subscribe<v1::EncodedAudio>(bus::topics::kSessionAudio, [this, &ctx](const auto& m) {
    const std::string turn = m.header.turn_id();
    Status st = decoder_.OnPacket(m.msg, turn, m.header.origin_ns());
    if (!st.ok()) {
      ctx.CountError();
      uint64_t suppressed = 0;
      if (bad_log_.Allow(bus::MonoNs(), &suppressed)) {
        VB_LOG(kWarn) << "dropped a bad packet of turn '" << turn << "': " << st.message()
                      << (suppressed ? " (+" + std::to_string(suppressed) + " more)" : "");
      }
    }
  });
  ctx.bus().Subscribe<v1::DialogCommand>(bus::topics::kDialogOrder, [this](const auto& m) {
    if (m.msg.has_interrupt()) {
      const std::string id = m.msg.interrupt().turn_id();
      VB_LOG(kInfo) << "interrupt: dropping turn '" << (id.empty() ? decoder_.current_turn() : id) << "'";
      decoder_.CancelTurn(id);
    }
  });
  // Issue 16: the reply goes to the speaker of the device vb-control serves.
  ctx.bus().Subscribe<v1::DialogState>(bus::topics::kDialogState, [this](const auto& m) {
    const std::string device = m.msg.device().empty() ? ctx_->device() : m.msg.device();
    if (out_.topic() != std::string(bus::topics::kAudioOut.base) + "/" + device)
      out_ = ctx_->bus().Advertise(bus::topics::kAudioOut, device);
  });
  ctx.bus().Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
    const std::string id = m.header.turn_id();
    if (m.msg.has_turn_ended()) {
      if (m.msg.turn_ended().outcome() == v1::TurnEnded::CANCELLED) decoder_.CancelTurn(id);
      else decoder_.EndTurn(id);
    } else if (m.msg.has_agent_audio_end()) {
      decoder_.EndTurn(id);
    }
  });
  return Status::Ok();
}

void DecoderActor::OnFrame(const std::string& turn_id, const DecodedFrame& f) {
  frame_.Clear();
  frame_.set_sample_rate(config_.output_rate);
  frame_.set_channels(1);
  frame_.set_sample_index(f.sample_index);
  frame_.set_play_ns(f.origin_ns);
  frame_.set_end_of_turn(f.end_of_turn);
  frame_.set_reference_channel(-1);
  frame_.mutable_pcm()->assign(reinterpret_cast<const char*>(f.pcm.data()), f.pcm.size() * 2);
  bus::PublishOptions opts;
  opts.origin_ns = f.origin_ns;
  opts.turn_id = turn_id;
  out_.Publish(frame_, opts);
}

void DecoderActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  auto put = [&hb](const char* key, int64_t v) { (*hb.mutable_extra())[key] = v; };
  const auto& c = decoder_.counters();
  put("packets_in", int64_t(c.packets));
  put("frames_out", int64_t(c.frames_out));
  put("concealed_packets", int64_t(c.concealed_packets));
  put("fec_decodes", int64_t(c.fec_decodes));
  put("skipped_gaps", int64_t(c.skipped_gaps));
  put("dropped_cancelled", int64_t(c.dropped_cancelled));
  put("dropped_late", int64_t(c.dropped_late));
  put("malformed", int64_t(c.malformed));
  put("turns", int64_t(c.turns));
  // Frames published with nobody listening are lost: say whether anyone is.
  put("audio_out_listeners", ctx.bus().HasSubscriber(out_) ? 1 : 0);
}

}  // namespace vb::decoder
