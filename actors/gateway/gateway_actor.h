// vb-gateway: the local chat-stream WebSocket API (shared/spec/
// gateway-protocol.md) and the live dashboard, on one port.
//
// A thin adapter: WsServer (libwebsockets on its own thread) carries frames,
// GatewayCore runs the protocol, DashboardFeed turns bus traffic into live
// figures; this class wires them to the bus on the actor's loop thread.
//   in:  session.event, dialog.state, voice.vad, voice.wake, playback.event,
//        actor.heartbeat (all actors), audio.clean or audio.mic (level only)
//        chat.event (the text chats it asked for), tool.invoke (tools its clients serve)
//   out: dialog.request (TextInput, Interrupt, ToolOutput, SessionConfig,
//        PushToTalk, SetMode, NewConversation), chat.request (per-client
//        text chats), tool.offer / tool.answer (register_tools); GET /health
#pragma once

#include <map>
#include <memory>
#include <string>

#include "actors/gateway/avatar_library.h"
#include "actors/gateway/dashboard_feed.h"
#include "actors/gateway/gateway_core.h"
#include "actors/gateway/token_auth.h"
#include "actors/gateway/ws_server.h"
#include "bus/actor.h"

namespace vb::gateway {

class GatewayActor : public bus::Actor, private ClientTransport, private CommandSink {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  Status Activate(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  // ClientTransport
  void Send(ConnId conn, Frame frame) override { server_->Send(conn, std::move(frame)); }
  void Close(ConnId conn, std::string_view reason) override { server_->Close(conn, reason); }
  // CommandSink
  bool Publish(const v1::DialogRequest& command) override { return command_.Publish(command); }
  bool PublishChat(const v1::TextChatRequest& request) override { return chat_.Publish(request); }
  bool PublishToolOffer(const v1::ToolOffer& offer) override { return tool_offer_.Publish(offer); }
  bool PublishToolAnswer(const v1::ToolAnswer& answer) override { return tool_answer_.Publish(answer); }

  Status LoadTokens();
  void DrainServer();
  void Tick();
  // GET /health's JSON: actors (heartbeats), session, uptime.
  std::string Health(int64_t now_ns) const;

  // Config
  std::string host_ = "127.0.0.1";
  int port_ = 5500;
  std::string ws_path_ = "/v1/chat/stream";
  std::string token_file_;
  bool generate_token_ = true;
  std::string avatar_dir_, backgrounds_dir_;
  int ping_interval_ms_ = 20000, idle_timeout_ms_ = 60000, turn_start_timeout_ms_ = 15000;
  int auth_timeout_ms_ = 10000, turn_idle_timeout_ms_ = 120000;
  int max_frame_bytes_ = 65536, max_clients_ = 128, max_queued_kb_ = 8192;
  bool mirror_text_turns_ = false;
  int history_turns_ = 50;
  bool per_client_conversations_ = true;
  int clause_min_chars_ = 6, unit_max_chars_ = 200;
  std::string level_source_ = "audio.clean";
  int level_hz_ = 10;
  bool dashboard_ = true;

  bus::Context* ctx_ = nullptr;
  TokenSet tokens_;
  std::unique_ptr<AvatarLibrary> library_;
  std::unique_ptr<WsServer> server_;
  std::unique_ptr<GatewayCore> core_;
  DashboardFeed feed_;
  bus::Publisher<v1::DialogRequest> command_;
  bus::Publisher<v1::TextChatRequest> chat_;
  bus::Publisher<v1::ToolOffer> tool_offer_;
  bus::Publisher<v1::ToolAnswer> tool_answer_;
  int64_t started_ns_ = 0;
  std::map<std::string, int32_t> session_pids_;  // session actors by name → pid (a change = it restarted)
  Json session_ = Json::object();                // the last SessionStatus, for /health
};

}  // namespace vb::gateway
