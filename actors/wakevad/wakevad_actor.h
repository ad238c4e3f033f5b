// WakeVadActor: the thin adapter of vb-wakevad. It feeds audio.clean frames
// to a VoicePipeline (see voice_pipeline.h) and publishes what it decides on
// voice.vad and voice.wake, stamped with the origin time of the frame that
// triggered the decision. It also keeps the last seconds of audio.clean in a
// BackfillRing and answers a restarted vb-session's BackfillRequest with
// them. Config keys and topics: README.md beside this file.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "actors/wakevad/backfill_ring.h"
#include "actors/wakevad/voice_pipeline.h"
#include "bus/actor.h"
#include "bus/log.h"

namespace vb::wakevad {

class WakeVadActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  Status Activate(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;
  // The options DeclareConfig filled (vb tune runs the pipeline offline with them).
  const PipelineOptions& options() const { return opt_; }

 private:
  void OnAudio(bus::Context& ctx, const bus::Received<v1::AudioFrame>& m);
  void PublishVad(bus::Context& ctx, const VadOutput& out);
  void PublishWake(bus::Context& ctx, const WakeOutput& out);
  void Reject(bus::Context& ctx, const std::string& why);
  void OnBackfillRequest(bus::Context& ctx, const v1::BackfillRequest& req);

  PipelineOptions opt_;
  std::string input_device_;
  VoicePipeline pipeline_;
  bus::Publisher<v1::VadEvent> vad_pub_;
  bus::Publisher<v1::WakeEvent> wake_pub_;
  int64_t origin_ns_ = 0;  // of the frame being processed
  std::vector<int16_t> mono_;
  RateLimit reject_log_;
  int backfill_ms_ = 10000;
  std::unique_ptr<BackfillRing> ring_;
  bus::Publisher<v1::AudioBackfill> backfill_pub_;
  std::deque<std::string> answered_;  // recent request ids: a repeated request is answered once
};

}  // namespace vb::wakevad
