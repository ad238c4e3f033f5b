// DashboardFeed: live figures for the dashboard (see dashboard_feed.h).
#include "actors/gateway/dashboard_feed.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace vb::gateway {
namespace {

double Dbfs(double amplitude) {
  return amplitude <= 0 ? -96.0 : std::max(-96.0, 20.0 * std::log10(amplitude / 32768.0));
}

double Round1(double v) { return std::round(v * 10.0) / 10.0; }

}  // namespace

std::optional<Json> DashboardFeed::OnAudio(const v1::AudioFrame& f, int64_t now_ns) {
  uint32_t ch = f.channels() ? f.channels() : 1;
  size_t frames = f.pcm().size() / (2 * ch);
  const char* p = f.pcm().data();
  for (size_t i = 0; i < frames; ++i) {
    int16_t s;
    std::memcpy(&s, p + i * 2 * ch, 2);
    sum_sq_ += double(s) * s;
    peak_ = std::max(peak_, std::abs(int(s)));
  }
  samples_ += frames;
  if (window_start_ns_ == 0) window_start_ns_ = now_ns;
  if (now_ns - window_start_ns_ < options_.level_interval_ns || samples_ == 0) return std::nullopt;
  level_ = Json{{"rms_db", Round1(Dbfs(std::sqrt(sum_sq_ / double(samples_))))}, {"peak_db", Round1(Dbfs(peak_))}};
  sum_sq_ = 0;
  peak_ = 0;
  samples_ = 0;
  window_start_ns_ = now_ns;
  Json m = ServerMessage("mic_level");
  m.update(level_);
  m["speech"] = speech_;
  return m;
}

Json DashboardFeed::OnDialogState(const v1::DialogState& s) {
  std::string state = v1::DialogStateKind_Name(s.state());
  std::string mode = v1::DialogMode_Name(s.mode());
  if (state.rfind("STATE_", 0) == 0) state = state.substr(6);
  if (mode.rfind("MODE_", 0) == 0) mode = mode.substr(5);
  dialog_state_ = Json{{"state", state},         {"mode", mode},         {"conversation_id", s.conversation_id()},
                       {"turn_id", s.turn_id()}, {"reason", s.reason()}, {"session_connected", s.session_connected()}};
  Json m = ServerMessage("dialog_state");
  m.update(dialog_state_);
  return m;
}

Json DashboardFeed::OnVad(const v1::VadEvent& v) {
  speech_ = v.kind() == v1::VadEvent::SPEECH_START;
  Json m = ServerMessage("vad");
  m["speech"] = speech_;
  m["probability"] = Round1(v.probability() * 100) / 100;
  m["detector"] = v.detector();
  return m;
}

Json DashboardFeed::OnWake(const v1::WakeEvent& w) {
  last_wake_ = Json{{"phrase", w.phrase()}, {"score", w.score()}, {"detector", w.detector()}};
  Json m = ServerMessage("wake");
  m.update(last_wake_);
  return m;
}

Json DashboardFeed::OnPlayback(const v1::PlaybackEvent& e) {
  std::string kind = v1::PlaybackEvent::Kind_Name(e.kind());
  Json m = ServerMessage("playback");
  m["kind"] = kind;
  m["turn_id"] = e.turn_id();
  m["detail"] = e.detail();
  if (e.kind() == v1::PlaybackEvent::FLUSHED) {
    m["flush_ms"] = Round1(double(e.latency_ns()) / 1e6);
    playback_["flush_ms"] = m["flush_ms"];
  }
  playback_["last"] = kind;
  return m;
}

Json DashboardFeed::Health(const v1::Heartbeat& hb, const Actor& a) const {
  std::string state = v1::Heartbeat::State_Name(hb.state());
  const auto& c = hb.counters();
  return Json{{"actor", hb.actor()},
              {"kind", hb.kind()},
              {"state", a.peer.stale() ? std::string("STALE") : state},
              {"detail", hb.detail()},
              {"pid", hb.pid()},
              {"uptime_ms", hb.uptime_ms()},
              {"restarts", a.peer.restarts()},
              {"cpu_percent", Round1(hb.cpu_percent())},
              {"rss_kb", hb.rss_kb()},
              {"msgs_in", c.msgs_in()},
              {"msgs_out", c.msgs_out()},
              {"drops", c.drops()},
              {"errors", c.errors()},
              {"handler_p99_us", Round1(hb.handler_us().p99())},
              {"extra", Json(std::map<std::string, int64_t>(hb.extra().begin(), hb.extra().end()))}};
}

namespace {
PeerHealth::TimePoint At(int64_t now_ns) { return PeerHealth::TimePoint(std::chrono::nanoseconds(now_ns)); }
}  // namespace

std::optional<Json> DashboardFeed::OnHeartbeat(const v1::Heartbeat& hb, int64_t now_ns) {
  const auto now = At(now_ns);
  auto it = actors_.find(hb.actor());
  if (it == actors_.end()) {
    if (actors_.size() >= options_.max_actors) {
      // Full: the actor silent longest makes room if it is stale, so a
      // burst of invented names cannot lock real actors out for good.
      auto oldest = actors_.begin();
      for (auto j = actors_.begin(); j != actors_.end(); ++j)
        if (j->second.peer.last() < oldest->second.peer.last()) oldest = j;
      if (!oldest->second.peer.Silent(now)) return std::nullopt;
      actors_.erase(oldest);
      ++evicted_;
    }
    it = actors_.emplace(hb.actor(), Actor{Json(), PeerHealth(options_.peers)}).first;
  }
  Actor& a = it->second;
  const int32_t old_pid = a.peer.pid();
  switch (a.peer.OnBeat(hb.pid(), hb.uptime_ms(), now)) {
    case PeerHealth::Beat::kRestarted:  // a new process under the same name: the launcher restarted it
      LogEvent(hb.actor(), "restarted",
               "pid " + std::to_string(old_pid) + " → " + std::to_string(hb.pid()) + " (restart " +
                   std::to_string(a.peer.restarts()) + ")");
      break;
    case PeerHealth::Beat::kBack:
      LogEvent(hb.actor(), "back", "pid " + std::to_string(hb.pid()) + " beats again");
      break;
    case PeerHealth::Beat::kFirst:
    case PeerHealth::Beat::kAlive: break;
  }
  a.health = Health(hb, a);
  Json m = ServerMessage("actor_health");
  m.update(a.health);
  return m;
}

std::vector<Json> DashboardFeed::CheckStale(int64_t now_ns) {
  std::vector<Json> out;
  const auto now = At(now_ns);
  for (auto& [name, a] : actors_) {
    if (!a.peer.MarkStaleIfSilent(now)) continue;
    a.health["state"] = "STALE";
    const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - a.peer.last()).count();
    LogEvent(name, "stale",
             "no heartbeat for " + std::to_string(silent) + " ms (pid " + std::to_string(a.peer.pid()) + ")");
    Json m = ServerMessage("actor_health");
    m.update(a.health);
    out.push_back(std::move(m));
  }
  return out;
}

void DashboardFeed::LogEvent(const std::string& actor, const char* event, std::string detail) {
  int64_t at_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  Json e{{"at_ms", at_ms}, {"actor", actor}, {"event", event}, {"detail", std::move(detail)}};
  events_.push_back(e);
  while (events_.size() > options_.max_events) events_.pop_front();
  if (new_events_.size() < options_.max_events) new_events_.push_back(std::move(e));
}

std::vector<Json> DashboardFeed::TakeEvents() {
  std::vector<Json> out;
  out.swap(new_events_);
  for (Json& e : out) {
    Json m = ServerMessage("actor_event");
    m.update(e);
    e = std::move(m);
  }
  return out;
}

Json DashboardFeed::Snapshot() const {
  Json events = Json::array();
  for (const auto& e : events_) events.push_back(e);
  Json actors = Json::array();
  for (const auto& [name, a] : actors_) actors.push_back(a.health);
  return Json{{"dialog_state", dialog_state_},
              {"actors", actors},
              {"mic_level", level_},
              {"speech", speech_},
              {"wake", last_wake_},
              {"playback", playback_},
              {"events", events}};
}

}  // namespace vb::gateway
