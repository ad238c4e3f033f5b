// vb-afe: audio.mic (+ audio.ref, what left the speaker, stamped) →
// audio.clean. The logic is FrontEnd (alignment by timestamps, then the
// configured echo canceller / noise suppressor / AGC backend); this adapter
// only maps the bus onto it: parses frames, counts and drops malformed ones,
// carries sample_index, capture time and origin_ns from mic to clean.
#pragma once

#include <deque>
#include <memory>
#include <optional>

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
  // What DeclareConfig filled (vb tune runs the front end offline with them).
  const FrontEndConfig& config() const { return config_; }
  int ref_wait_ms() const { return ref_wait_ms_; }

 private:
  // A mic frame waiting (briefly) for its reference to arrive.
  struct Pending {
    v1::AudioFrame frame;
    int64_t origin_ns = 0, capture_ns = 0, deadline_ns = 0;
    bool waited = false;
  };
  void OnMic(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m);
  // Processes the held frames whose reference is in (or overdue), in order.
  void Drain(bus::Context& ctx);
  void Process(bus::Context& ctx, const Pending& p);
  void OnRef(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m);
  void Drop(bus::Context& ctx, const char* counter, const std::string& why);

  FrontEndConfig config_;
  int ref_wait_ms_ = 40;
  // A wait timed out: the reference is behind the mic (stamps off, playback
  // stalled). Later frames do not wait again until one finds its reference
  // ready on arrival, or the reference catches up with the last frame
  // processed (a sink that publishes each frame as it plays is always a
  // little behind a frame's arrival, never behind by a whole wait) — one
  // frame pays ref_wait_ms per episode, not each.
  bool ref_behind_ = false;
  // The last frame processed while ref_behind_: its shape and time only
  // (ReferenceReady reads no samples), not a copy of its PCM per frame.
  struct Processed {
    PcmView view;  // samples unset
    int reference_channel = -1;
    int64_t capture_ns = 0;
  };
  std::optional<Processed> last_processed_;
  static constexpr size_t kMaxPending = 16;  // 320 ms of 20 ms frames
  std::deque<Pending> pending_;
  bus::Loop::TimerId wait_timer_ = 0;
  // audio.ref does not wake the loop while no mic frame waits for it: it is
  // read as each mic frame comes (playback publishes it ahead of the
  // speaker, so it is there by then). While a mic frame waits, it wakes us.
  bool ref_lazy_ = false;
  void RefWakes(bus::Context& ctx, bool wakes);
  std::unique_ptr<FrontEnd> fe_;
  audio::Resampler ref_resampler_;  // for a reference not at 16 kHz
  std::vector<int16_t> mono_, resampled_, clean_;
  bus::Publisher<v1::AudioFrame> out_;
  v1::AudioFrame frame_;
  RateLimit bad_log_, align_log_;
  uint64_t logged_jumps_ = 0, logged_delay_changes_ = 0, logged_fallbacks_ = 0;
};

}  // namespace vb::afe
