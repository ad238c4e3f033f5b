// GatewayCore: the chat-stream protocol's state machine, between WebSocket
// clients and the bus, knowing neither sockets nor ZeroMQ.
//
// Inputs: client frames and connection events (from the transport), session
// events and dialog state (from the bus), and Tick() for time. Outputs:
// frames to clients (ClientTransport) and dialog commands (CommandSink).
//
//  - Authorization: until a good `authorize`, every other message gets an
//    error 401 and nothing else happens; repeated bad tokens close the
//    connection.
//  - chat_message → TextInput{request_id}; the TurnStarted echoing that id
//    makes the turn the asker's (mirrored to all if mirror_text_turns). Turns
//    nobody here asked for (voice turns, `vb say`) go to every authorized
//    client. Each turn streams stream_start, stream_token per AgentText delta,
//    tool_call/tool_result, tts_ready_chunk per speakable unit, stream_end
//    whose content is the concatenated tokens.
//  - interrupt_stream → Interrupt{USER_REQUEST}; the turn ends at once for
//    its clients (stream_end, interrupted) and later events of it are dropped.
//  - Tick(): a ping every ping_interval; a connection silent for
//    idle_timeout, or not authorized within auth_timeout, is closed; a chat
//    whose turn never starts gets an error 500; a turn the session stops
//    talking about (e.g. it crashed) ends as failed after turn_idle_timeout.
//  - Dashboard clients (extension) also get every turn and SendToDashboards().
//
// Single-threaded (the actor's loop thread). Every output is bounded by the
// number of connections and turns, which are capped.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "actors/gateway/avatar_library.h"
#include "actors/gateway/protocol.h"
#include "actors/gateway/token_auth.h"
#include "actors/gateway/tts_segmenter.h"
#include "vb/v1/dialog.pb.h"

namespace vb::gateway {

using ConnId = uint64_t;

class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  virtual void Send(ConnId conn, Frame frame) = 0;
  // Closes the connection; the core forgets it at once (a later OnClose is ignored).
  virtual void Close(ConnId conn, std::string_view reason) = 0;
};

class CommandSink {
 public:
  virtual ~CommandSink() = default;
  // False if the command could not be sent (e.g. the actor is not active).
  virtual bool Publish(const v1::DialogCommand& command) = 0;
};

struct CoreOptions {
  int64_t ping_interval_ns = 20'000'000'000;
  int64_t idle_timeout_ns = 60'000'000'000;
  int64_t turn_start_timeout_ns = 15'000'000'000;
  int64_t auth_timeout_ns = 10'000'000'000;  // a connection must authorize within this
  int64_t turn_idle_timeout_ns = 120'000'000'000;  // a turn with no event this long ends as failed
  bool mirror_text_turns = false;
  int max_auth_failures = 5;
  size_t max_pending_requests = 256;
  size_t max_turns = 64;
  TtsSegmenter::Options segmenter;
};

struct CoreCounters {
  uint64_t connections = 0, authorized = 0, auth_failures = 0, bad_requests = 0;
  uint64_t chats = 0, turns = 0, tokens = 0, interrupts = 0, idle_closed = 0, start_timeouts = 0, auth_timeouts = 0, turns_timed_out = 0;
  uint64_t commands_failed = 0;
};

class GatewayCore {
 public:
  GatewayCore(CoreOptions options, const TokenSet& tokens, const AvatarLibrary& library,
              ClientTransport& transport, CommandSink& commands);

  void OnOpen(ConnId conn, int64_t now_ns);
  void OnText(ConnId conn, std::string_view text, int64_t now_ns);
  // A frame refused by the transport (too large, binary): error `code`.
  void OnBadFrame(ConnId conn, int code, std::string_view message, int64_t now_ns);
  void OnClose(ConnId conn);

  // session.event; header_turn_id = Header.turn_id.
  void OnSessionEvent(const v1::SessionEvent& event, std::string_view header_turn_id, int64_t now_ns);
  void OnDialogState(const v1::DialogState& state);
  // The user stopped speaking (VAD end, push-to-talk up): start of a voice
  // turn's response latency.
  void NoteSpeechEnd(int64_t now_ns) { speech_end_ns_ = now_ns; }

  void Tick(int64_t now_ns);

  // Dashboard feed (extension): frames only dashboard clients receive, and
  // the snapshot a new dashboard client gets first.
  void SendToDashboards(const Json& message);
  bool HasDashboards() const { return dashboards_ > 0; }
  void SetDashboardSnapshot(std::function<Json()> fn) { snapshot_ = std::move(fn); }

  const CoreCounters& counters() const { return counters_; }
  size_t connections() const { return conns_.size(); }
  size_t running_turns() const { return turns_.size(); }
  const std::string& conversation_id() const { return conversation_id_; }
  // Latest latency figures (ms, -1 = none yet), for the dashboard snapshot.
  Json Latency() const { return latency_; }

 private:
  struct Conn {
    std::string connection_id;
    bool authorized = false;
    bool dashboard = false;
    int auth_failures = 0;
    int64_t last_rx_ns = 0;
    int64_t opened_ns = 0;
  };
  struct Pending {
    ConnId conn = 0;
    std::string reply_to;
    int64_t sent_ns = 0;
    bool cancelled = false;
  };
  struct Turn {
    std::string turn_id, session_id;
    std::vector<ConnId> audience;
    bool voice = true;
    std::string content;
    std::map<std::string, std::string> message_text;  // per message id, to reconcile final texts
    TtsSegmenter segmenter;
    int64_t origin_ns = 0;  // request sent / speech ended (0 = unknown)
    int64_t last_event_ns = 0;
    bool first_token = false;
  };

  void Handle(ConnId id, Conn& conn, const ClientMessage& m, int64_t now_ns);
  void HandleChat(ConnId id, Conn& conn, const ClientMessage& m, int64_t now_ns);
  void HandleInterrupt(const ClientMessage& m);
  void HandleSwitchAvatar(ConnId id, Conn& conn, const ClientMessage& m);
  bool PublishCommand(const v1::DialogCommand& cmd);

  Turn* StartTurn(const std::string& turn_id, const std::string& conversation_id, bool voice,
                  const std::string& request_id, int64_t now_ns);
  Turn* FindTurn(std::string_view turn_id);
  void EmitText(Turn& turn, const std::string& chunk, int64_t now_ns);
  void EndTurn(std::string turn_id, std::string_view outcome, std::string_view error);
  void Retire(std::string turn_id);

  void SendTo(ConnId conn, const Json& message);
  void SendTo(ConnId conn, const Frame& frame);
  void SendToAudience(const Turn& turn, const Json& message);
  void SendToAuthorized(const Json& message);
  void Drop(ConnId conn, std::string_view reason);

  CoreOptions options_;
  const TokenSet& tokens_;
  const AvatarLibrary& library_;
  ClientTransport& transport_;
  CommandSink& commands_;

  std::map<ConnId, Conn> conns_;
  size_t dashboards_ = 0;
  std::map<std::string, Pending> pending_;  // by request_id
  std::map<std::string, Turn, std::less<>> turns_;
  std::deque<std::string> retired_;  // ended turns whose late events are dropped
  std::string current_turn_;         // for events that carry no turn id
  std::string conversation_id_;
  int64_t next_ping_ns_ = 0;
  int64_t speech_end_ns_ = 0;
  std::function<Json()> snapshot_;
  Json latency_ = Json::object();
  Json session_status_ = Json::object();  // last SessionStatus, for new dashboards
  CoreCounters counters_;
};

}  // namespace vb::gateway
