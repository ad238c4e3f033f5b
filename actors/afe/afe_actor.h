// vb-afe: audio.mic (+ audio.ref, what left the speaker, stamped) →
// audio.clean. The logic is FrontEnd (alignment by timestamps, then the
// configured echo canceller / noise suppressor / AGC backend); this adapter
// only maps the bus onto it: parses frames, counts and drops malformed ones,
// carries sample_index, capture time and origin_ns from mic to clean.
#pragma once

#include <memory>

#include "actors/afe/front_end.h"
#include "actors/common/resampler.h"
#include "bus/actor.h"
#include "bus/log.h"

namespace vb::afe {

class AfeActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  void OnMic(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m);
  void OnRef(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m);
  void Drop(bus::Context& ctx, const char* counter, const std::string& why);

  FrontEndConfig config_;
  std::unique_ptr<FrontEnd> fe_;
  audio::Resampler ref_resampler_;  // for a reference not at 16 kHz
  std::vector<int16_t> mono_, resampled_, clean_;
  bus::Publisher<v1::AudioFrame> out_;
  v1::AudioFrame frame_;
  RateLimit bad_log_, align_log_;
  uint64_t logged_jumps_ = 0;
};

}  // namespace vb::afe
