// vb-gateway adapter: config, bus wiring, and the bridge to the WebSocket
// thread (see gateway_actor.h).
#include "actors/gateway/gateway_actor.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "actors/gateway/web_assets.h"
#include "bus/log.h"

namespace vb::gateway {

void GatewayActor::DeclareConfig(config::Section& s) {
  s.Key("host", &host_, std::string("127.0.0.1"), "address to listen on (loopback by default)");
  s.Key("port", &port_, 5500, {1, 65535}, "TCP port of the WebSocket API and the dashboard");
  s.Key("ws_path", &ws_path_, std::string("/v1/chat/stream"), "path of the WebSocket endpoint");
  s.Key("token_file", &token_file_, std::string(""),
        "file of client tokens, one per line (also: env VB_GATEWAY_TOKENS, comma-separated)");
  s.Key("generate_token", &generate_token_, true,
        "no token configured: write a random one (mode 0600) to token_file, or to $XDG_RUNTIME_DIR (else "
        "/tmp)/vb-gateway-<uid>.token");
  s.Key("avatar_dir", &avatar_dir_, std::string(""), "directory of avatar configs (persona *.yaml)");
  s.Key("backgrounds_dir", &backgrounds_dir_, std::string(""), "directory of background files");
  s.Key("ping_interval_ms", &ping_interval_ms_, 20000, {50, 600000}, "server ping period");
  s.Key("idle_timeout_ms", &idle_timeout_ms_, 60000, {100, 3600000},
        "a client silent this long (no pong, nothing) is disconnected");
  s.Key("turn_start_timeout_ms", &turn_start_timeout_ms_, 15000, {100, 600000},
        "a chat_message whose turn the session has not started by then gets error 500");
  s.Key("turn_idle_timeout_ms", &turn_idle_timeout_ms_, 120000, {1000, 3600000},
        "a running turn with no session event this long ends (stream_end outcome failed)");
  s.Key("auth_timeout_ms", &auth_timeout_ms_, 10000, {100, 600000},
        "a connection that has not authorized by then is closed");
  s.Key("max_frame_bytes", &max_frame_bytes_, 65536, {256, 16 << 20}, "largest client message accepted");
  s.Key("max_clients", &max_clients_, 128, {1, 4096}, "WebSocket connections at most");
  s.Key("max_queued_kb", &max_queued_kb_, 8192, {16, 1 << 20},
        "unsent data per client beyond which the client is dropped as too slow");
  s.Key("mirror_text_turns", &mirror_text_turns_, false,
        "send the reply to a chat_message to every client, not just the asker");
  s.Key("per_client_conversations", &per_client_conversations_, true,
        "each client (user_id + session_id, else its connection) chats in its own Coze conversation, run by "
        "vb-session over REST beside the voice dialog (chat.request); false: chat_message is a text turn of "
        "the voice dialog's one conversation (TextInput), as a session actor without chat.request needs");
  s.Key("clause_min_chars", &clause_min_chars_, 6, {1, 1000},
        "tts_ready_chunk: a clause mark (, ， :) ends a unit only after this many characters");
  s.Key("unit_max_chars", &unit_max_chars_, 200, {20, 10000}, "tts_ready_chunk: longest unit without a boundary");
  s.Choice("level_source", &level_source_, "audio.clean", {"audio.clean", "audio.mic", "none"},
           "audio the dashboard's mic level is computed from");
  s.Key("level_hz", &level_hz_, 10, {1, 50}, "mic level updates per second sent to dashboards");
  s.Key("dashboard", &dashboard_, true, "serve the dashboard's pages over HTTP on the same port");
  s.Key("history_turns", &history_turns_, 50, {0, 1000},
        "ended turns the gateway keeps for the dashboard (shown on open and reload, with timestamps); 0: none");
  if (idle_timeout_ms_ <= ping_interval_ms_)
    s.Error("idle_timeout_ms", "must be longer than ping_interval_ms, or clients are dropped between pings");
}

Status GatewayActor::LoadTokens() {
  tokens_ = TokenSet{};
  if (const char* env = std::getenv("VB_GATEWAY_TOKENS")) tokens_.AddList(env);
  if (!token_file_.empty() && access(token_file_.c_str(), F_OK) == 0) {
    if (Status st = tokens_.AddFile(token_file_); !st.ok()) return Status::Config(st.message());
  }
  if (!tokens_.empty()) return Status::Ok();
  if (!generate_token_)
    return Status::Config("gateway: no client token (set VB_GATEWAY_TOKENS or token_file, or generate_token: true)");
  std::string path = token_file_;
  if (path.empty()) {
    const char* run = std::getenv("XDG_RUNTIME_DIR");
    path = std::string(run && *run ? run : "/tmp") + "/vb-gateway-" + std::to_string(getuid()) + ".token";
  }
  if (Status st = tokens_.Generate(path); !st.ok()) return st;
  VB_LOG(kInfo) << "no client token configured: generated one in " << path;
  return Status::Ok();
}

Status GatewayActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  if (Status st = LoadTokens(); !st.ok()) return st;
  library_ = std::make_unique<AvatarLibrary>(avatar_dir_, backgrounds_dir_);

  WsServer::Options wo;
  wo.host = host_;
  wo.port = port_;
  wo.ws_path = ws_path_;
  wo.max_frame_bytes = size_t(max_frame_bytes_);
  wo.max_queued_bytes = size_t(max_queued_kb_) * 1024;
  wo.max_clients = max_clients_;
  if (dashboard_) wo.assets = WebAssets();
  server_ = std::make_unique<WsServer>(wo);
  if (Status st = server_->Listen(); !st.ok()) return st;

  CoreOptions co;
  co.ping_interval_ns = int64_t(ping_interval_ms_) * 1'000'000;
  co.idle_timeout_ns = int64_t(idle_timeout_ms_) * 1'000'000;
  co.turn_start_timeout_ns = int64_t(turn_start_timeout_ms_) * 1'000'000;
  co.auth_timeout_ns = int64_t(auth_timeout_ms_) * 1'000'000;
  co.turn_idle_timeout_ns = int64_t(turn_idle_timeout_ms_) * 1'000'000;
  co.mirror_text_turns = mirror_text_turns_;
  co.per_client_conversations = per_client_conversations_;
  co.tool_provider = ctx.name();
  co.segmenter.min_clause_chars = size_t(clause_min_chars_);
  co.segmenter.max_unit_chars = size_t(unit_max_chars_);
  co.history.max_turns = size_t(history_turns_);
  core_ = std::make_unique<GatewayCore>(co, tokens_, *library_, static_cast<ClientTransport&>(*this),
                                        static_cast<CommandSink&>(*this));
  DashboardFeed::Options fo;
  fo.level_interval_ns = 1'000'000'000 / level_hz_;
  fo.peers.interval = std::chrono::milliseconds(ctx.bus().config().heartbeat_ms);
  feed_ = DashboardFeed(fo);
  core_->SetDashboardSnapshot([this] { return feed_.Snapshot(); });

  command_ = ctx.bus().Advertise(bus::topics::kDialogRequest);
  chat_ = ctx.bus().Advertise(bus::topics::kChatRequest);
  tool_offer_ = ctx.bus().Advertise(bus::topics::kToolOffer);
  tool_answer_ = ctx.bus().Advertise(bus::topics::kToolAnswer);
  ctx.bus().Subscribe<v1::ToolInvocation>(bus::topics::kToolInvoke, [this](const auto& m) {
    const v1::ToolInvocation inv = m.msg;  // a copy: handling publishes
    core_->OnToolInvocation(inv, bus::MonoNs());
  });
  auto& bus = ctx.bus();
  bus.Subscribe<v1::TextChatEvent>(bus::topics::kChatEvent, [this](const auto& m) {
    ctx_->Count("chat_events");
    const v1::TextChatEvent e = m.msg;  // a copy: handling publishes
    core_->OnChatEvent(e, bus::MonoNs());
  });
  bus.Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
    ctx_->Count("session_events");
    if (m.msg.has_status()) {
      const auto& st = m.msg.status();
      session_ = Json{{"connected", st.connected()}, {"conversation_id", st.conversation_id()},
                      {"service", st.service()},     {"reconnects", st.reconnects()},
                      {"turn_id", st.turn_id()},     {"heard_ms_ago", 0},
                      {"at_ns", bus::MonoNs()}};
    }
    core_->OnSessionEvent(m.msg, m.header.turn_id(), bus::MonoNs());
  });
  bus.Subscribe<v1::DialogState>(bus::topics::kDialogState, [this](const auto& m) {
    core_->OnDialogState(m.msg);
    core_->SendToDashboards(feed_.OnDialogState(m.msg));
  });
  bus.Subscribe<v1::VadEvent>(bus::topics::kVoiceVad, [this](const auto& m) {
    if (m.msg.kind() == v1::VadEvent::SPEECH_END) core_->NoteSpeechEnd(bus::MonoNs());
    core_->SendToDashboards(feed_.OnVad(m.msg));
  });
  bus.Subscribe<v1::WakeEvent>(bus::topics::kVoiceWake,
                               [this](const auto& m) { core_->SendToDashboards(feed_.OnWake(m.msg)); });
  bus.Subscribe<v1::PlaybackEvent>(bus::topics::kPlaybackEvent,
                                   [this](const auto& m) { core_->SendToDashboards(feed_.OnPlayback(m.msg)); });
  bus.Subscribe<v1::Heartbeat>(
      bus::topics::kHeartbeat,
      [this](const auto& m) {
        if (m.msg.kind() == "session") {
          // A restarted session has lost the text chats it ran: they end now.
          auto [it, fresh] = session_pids_.emplace(m.msg.actor(), m.msg.pid());
          if (!fresh && it->second != m.msg.pid()) {
            it->second = m.msg.pid();
            core_->FailTextChats("the session restarted; the chat was lost (ask again)");
          }
        }
        if (auto j = feed_.OnHeartbeat(m.msg, bus::MonoNs())) core_->SendToDashboards(*j);
        for (auto& e : feed_.TakeEvents()) core_->SendToDashboards(e);
      },
      "*");
  if (level_source_ != "none") {
    const auto& topic = level_source_ == "audio.mic" ? bus::topics::kAudioMic : bus::topics::kAudioClean;
    bus.Subscribe<v1::AudioFrame>(topic, [this](const auto& m) {
      // Raw audio never leaves the gateway: only a level, and only when a
      // dashboard is watching.
      if (!core_->HasDashboards()) return;
      if (auto j = feed_.OnAudio(m.msg, bus::MonoNs())) core_->SendToDashboards(*j);
    });
  }
  int64_t tick_ms = std::clamp(ping_interval_ms_ / 4, 50, 1000);
  ctx.loop().AddTimer(std::chrono::milliseconds(tick_ms), [this] { Tick(); });
  VB_LOG(kInfo) << "listening on ws://" << host_ << ":" << port_ << ws_path_
                << (dashboard_ ? " (dashboard at http://" + host_ + ":" + std::to_string(port_) + "/)" : "");
  return Status::Ok();
}

std::string GatewayActor::Health(int64_t now_ns) const {
  Json actors = Json::array();
  bool all_alive = true;
  const Json snapshot = feed_.Snapshot();  // kept: the loop below walks into it
  for (const auto& a : snapshot["actors"]) {
    const std::string state = a.value("state", "");
    const bool alive = state != "STALE";
    all_alive = all_alive && alive;
    actors.push_back({{"name", a.value("actor", "")},
                      {"kind", a.value("kind", "")},
                      {"pid", a.value("pid", 0)},
                      {"alive", alive},
                      {"state", alive ? "alive" : "stale"},
                      {"health", state},
                      {"restarts", a.value("restarts", 0)},
                      {"uptime_ms", a.value("uptime_ms", 0)}});
  }
  Json session = Json{{"known", false}, {"connected", false}, {"conversation_id", core_->conversation_id()}};
  if (!session_.empty()) {
    session = session_;
    session["known"] = true;
    session["heard_ms_ago"] = (now_ns - session_.value("at_ns", now_ns)) / 1'000'000;
    session.erase("at_ns");
    if (session["conversation_id"].get<std::string>().empty()) session["conversation_id"] = core_->conversation_id();
  }
  const bool ok = all_alive && session.value("connected", false);
  Json h = {{"status", ok ? "ok" : "degraded"},
            {"uptime_s", double((now_ns - started_ns_) / 1'000'000) / 1000.0},
            {"actors", actors},
            {"session", session},
            {"gateway",
             {{"clients", core_->connections()},
              {"running_turns", core_->running_turns()},
              {"text_chats", core_->running_text_chats()},
              {"client_conversations", core_->client_conversations()},
              {"per_client_conversations", per_client_conversations_}}}};
  return h.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Status GatewayActor::Activate(bus::Context& ctx) {
  started_ns_ = bus::MonoNs();
  server_->SetHealth(Health(started_ns_));
  // The service thread pokes the loop only when its event queue becomes
  // non-empty, so at most about one drain is waiting at a time.
  server_->Start([this] { ctx_->loop().Post([this] { DrainServer(); }); });
  return Status::Ok();
}

void GatewayActor::Deactivate(bus::Context& ctx) {
  if (server_) server_->Stop();
}

void GatewayActor::DrainServer() {
  for (auto& e : server_->TakeEvents()) {
    int64_t now = bus::MonoNs();
    switch (e.kind) {
      case WsServer::Event::kOpen: core_->OnOpen(e.conn, now); break;
      case WsServer::Event::kText: core_->OnText(e.conn, e.text, now); break;
      case WsServer::Event::kBadFrame: core_->OnBadFrame(e.conn, 400, e.text, now); break;
      case WsServer::Event::kClose: core_->OnClose(e.conn); break;
    }
  }
}

void GatewayActor::Tick() {
  DrainServer();  // in case a Post was refused under load
  int64_t now = bus::MonoNs();
  core_->Tick(now);
  for (auto& j : feed_.CheckStale(now)) {
    if (j.value("kind", "") == "session" && core_->running_text_chats() > 0)
      core_->FailTextChats("the session stopped answering (no heartbeat); the chat was lost");
    core_->SendToDashboards(j);
  }
  for (auto& e : feed_.TakeEvents()) core_->SendToDashboards(e);
  server_->SetHealth(Health(now));
}

void GatewayActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  const auto& c = core_->counters();
  ctx.Set("clients", int64_t(core_->connections()));
  ctx.Set("authorized", int64_t(c.authorized));
  ctx.Set("auth_failures", int64_t(c.auth_failures));
  ctx.Set("bad_requests", int64_t(c.bad_requests));
  ctx.Set("chats", int64_t(c.chats));
  ctx.Set("turns", int64_t(c.turns));
  ctx.Set("tokens", int64_t(c.tokens));
  ctx.Set("interrupts", int64_t(c.interrupts));
  ctx.Set("idle_closed", int64_t(c.idle_closed));
  ctx.Set("start_timeouts", int64_t(c.start_timeouts));
  ctx.Set("auth_timeouts", int64_t(c.auth_timeouts));
  ctx.Set("turns_timed_out", int64_t(c.turns_timed_out));
  ctx.Set("text_chats", int64_t(c.text_chats));
  ctx.Set("new_conversations", int64_t(c.new_conversations));
  ctx.Set("logs_suppressed", int64_t(c.logs_suppressed));
  ctx.Set("tool_invocations", int64_t(c.tool_invocations));
  ctx.Set("tool_answers", int64_t(c.tool_answers));
  auto s = server_->stats();
  ctx.Set("slow_closed", int64_t(s.slow_closed));
  ctx.Set("ws_refused", int64_t(s.refused));
  ctx.Set("ws_events_dropped", int64_t(s.events_dropped));
  ctx.Set("http_requests", int64_t(s.http_requests));
}

}  // namespace vb::gateway
