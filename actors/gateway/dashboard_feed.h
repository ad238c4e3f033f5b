// DashboardFeed: turns bus traffic into the dashboard's live figures — the
// dialog state, a microphone level (computed here at a low rate: raw audio
// never reaches the browser), VAD and wake indicators, actor health with
// restarts and staleness, and playback events with flush latency. Each
// On*() returns the JSON message to send to dashboard clients (or nothing);
// Snapshot() is what a new dashboard client receives first.
//
// Staleness and restarts are judged by the shared rule (bus/peer_health.h),
// the same as the launcher's, vb-control's and `vb status`'s.
//
// Pure logic, single-threaded; memory bounded by the number of actors seen
// (capped at max_actors; when full, the stalest actor that is STALE makes
// room for a new one, counted in evicted()).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/gateway/protocol.h"
#include "bus/peer_health.h"
#include "vb/v1/audio.pb.h"
#include "vb/v1/dialog.pb.h"
#include "vb/v1/health.pb.h"
#include "vb/v1/voice.pb.h"

namespace vb::gateway {

class DashboardFeed {
 public:
  struct Options {
    int64_t level_interval_ns = 100'000'000;  // one mic_level message per interval
    PeerRule peers;                           // an actor that missed this many heartbeats is STALE
    size_t max_actors = 64;
    size_t max_events = 100;  // the actor event log (stale, restarted) kept for new dashboards
  };
  DashboardFeed() : DashboardFeed(Options{}) {}
  explicit DashboardFeed(Options options) : options_(options) {}

  // s16le PCM frame; channel 0 is measured. Returns mic_level once per interval.
  std::optional<Json> OnAudio(const v1::AudioFrame& frame, int64_t now_ns);
  Json OnDialogState(const v1::DialogState& state);
  Json OnVad(const v1::VadEvent& vad);
  Json OnWake(const v1::WakeEvent& wake);
  Json OnPlayback(const v1::PlaybackEvent& event);
  std::optional<Json> OnHeartbeat(const v1::Heartbeat& hb, int64_t now_ns);
  // actor_health messages for actors that just went stale.
  std::vector<Json> CheckStale(int64_t now_ns);
  // Each call that changes an actor's life (went STALE, restarted, came
  // back) also logs an event {at_ms (wall clock), actor, event, detail}:
  // sent live as `actor_event` (TakeEvents) and kept (the last max_events)
  // in Snapshot().events, oldest first.
  std::vector<Json> TakeEvents();

  Json Snapshot() const;
  // Actors dropped to make room (a flood of names, or many restarts).
  uint64_t evicted() const { return evicted_; }

 private:
  struct Actor {
    Json health;
    PeerHealth peer;
  };
  Json Health(const v1::Heartbeat& hb, const Actor& a) const;
  void LogEvent(const std::string& actor, const char* event, std::string detail);

  Options options_;
  Json dialog_state_ = Json::object();
  Json level_ = Json::object();
  bool speech_ = false;
  Json last_wake_ = Json::object();
  Json playback_ = Json::object();
  std::map<std::string, Actor> actors_;
  uint64_t evicted_ = 0;
  std::deque<Json> events_;
  std::vector<Json> new_events_;
  double sum_sq_ = 0;
  int peak_ = 0;
  uint64_t samples_ = 0;
  int64_t window_start_ns_ = 0;
};

}  // namespace vb::gateway
