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
//  - per_client_conversations (the actor's default): chat_message → a text
//    chat of vb-session (chat.request → chat.event) in the client's own
//    conversation, keyed by user_id and session_id (else the connection),
//    with its user_id; chats of different clients run at once and never
//    share history. `new_conversation` gives the client a fresh one.
//  - interrupt_stream → the asker's own text chats are cancelled, and a
//    running voice turn gets Interrupt{USER_REQUEST}; another client's chat
//    is never touched. The turn ends at once for its clients (stream_end,
//    interrupted), later events of it are dropped, and the asker always gets
//    `interrupt_ack {turn_ids, outcome: interrupted | nothing_running}`.
//  - Auth failures and refused messages are logged, at most 5 lines per
//    10 s (then a count of the suppressed), never with the token.
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
#include "actors/gateway/turn_history.h"
#include "vb/v1/chat.pb.h"
#include "vb/v1/dialog.pb.h"
#include "vb/v1/tools.pb.h"

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
  virtual bool Publish(const v1::DialogRequest& command) = 0;
  // chat.request (per-client conversations); false if not sent.
  virtual bool PublishChat(const v1::TextChatRequest& /*request*/) { return false; }
  // tool.offer / tool.answer (tools clients serve: register_tools).
  virtual bool PublishToolOffer(const v1::ToolOffer& /*offer*/) { return false; }
  virtual bool PublishToolAnswer(const v1::ToolAnswer& /*answer*/) { return false; }
};

// Logs at most `burst` lines per `window_ns`, then says how many it
// suppressed: a flood of bad clients cannot flood the log.
class LogLimiter {
 public:
  LogLimiter(int burst = 5, int64_t window_ns = 10'000'000'000) : burst_(burst), window_ns_(window_ns) {}
  // True if a line may be logged now; *suppressed = lines dropped since the last one allowed.
  bool Allow(int64_t now_ns, uint64_t* suppressed);

 private:
  int burst_;
  int64_t window_ns_;
  int64_t window_start_ns_ = INT64_MIN / 2;
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

struct CoreOptions {
  int64_t ping_interval_ns = 20'000'000'000;
  int64_t idle_timeout_ns = 60'000'000'000;
  int64_t turn_start_timeout_ns = 15'000'000'000;
  int64_t auth_timeout_ns = 10'000'000'000;        // a connection must authorize within this
  int64_t turn_idle_timeout_ns = 120'000'000'000;  // a turn with no event this long ends as failed
  bool mirror_text_turns = false;
  // chat_message as a text chat in the client's own conversation (vb-session's
  // chat.request); false: a TextInput into the voice dialog's one conversation.
  bool per_client_conversations = false;
  size_t max_client_conversations = 4096;  // remembered client → conversation (oldest forgotten)
  // Tools clients register are offered as provider "<tool_provider>:<connection_id>";
  // the actor's instance name, so two gateways never answer each other's calls.
  std::string tool_provider = "gateway";
  int max_auth_failures = 5;
  size_t max_pending_requests = 256;
  size_t max_turns = 64;
  TtsSegmenter::Options segmenter;
  TurnHistory::Options history;  // the dashboard's memory of ended turns (gateway.history_turns)
};

struct CoreCounters {
  uint64_t connections = 0, authorized = 0, auth_failures = 0, bad_requests = 0;
  uint64_t chats = 0, turns = 0, tokens = 0, interrupts = 0, idle_closed = 0, start_timeouts = 0, auth_timeouts = 0,
           turns_timed_out = 0;
  uint64_t commands_failed = 0;
  uint64_t text_chats = 0, new_conversations = 0, logs_suppressed = 0, tool_invocations = 0, tool_answers = 0;
};

class GatewayCore {
 public:
  GatewayCore(CoreOptions options, const TokenSet& tokens, const AvatarLibrary& library, ClientTransport& transport,
              CommandSink& commands);

  void OnOpen(ConnId conn, int64_t now_ns);
  void OnText(ConnId conn, std::string_view text, int64_t now_ns);
  // A frame refused by the transport (too large, binary): error `code`.
  void OnBadFrame(ConnId conn, int code, std::string_view message, int64_t now_ns);
  void OnClose(ConnId conn);

  // session.event; header_turn_id = Header.turn_id.
  void OnSessionEvent(const v1::SessionEvent& event, std::string_view header_turn_id, int64_t now_ns);
  void OnDialogState(const v1::DialogState& state);
  // chat.event: the text chats this gateway asked for.
  void OnChatEvent(const v1::TextChatEvent& event, int64_t now_ns);
  // The session that ran the text chats died (restarted or silent): every
  // running or requested text chat ends now, failed with `reason`, instead
  // of at turn_idle_timeout.
  void FailTextChats(const std::string& reason);
  // tool.invoke: a call of a tool a client registered (provider "<tool_provider>:<connection_id>").
  void OnToolInvocation(const v1::ToolInvocation& invocation, int64_t now_ns);
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
  size_t client_conversations() const { return client_convs_.size(); }
  size_t running_text_chats() const;
  // Latest latency figures (ms, -1 = none yet), for the dashboard snapshot.
  Json Latency() const { return latency_; }
  // The last ended turns, oldest first (what dashboard_history carries).
  const TurnHistory& history() const { return history_; }

 private:
  struct Conn {
    std::string connection_id;
    std::string client_key;           // the conversation it chatted in last ("" = none yet)
    std::vector<v1::ToolSpec> tools;  // register_tools: offered as provider "<tool_provider>:<connection_id>"
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
    bool text_chat = false;  // per-client: a chat.request, not a TextInput
    std::string client_key;
    int generation = 0;
    std::string question, asker;  // for the dashboard's history
  };
  // A client's conversation: user_id + session_id (else its connection).
  struct ClientConversation {
    std::string conversation_id;  // "" until vb-session made one
    std::string user_id;
    int generation = 0;  // new_conversation bumps it
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
    bool text_chat = false;  // per-client text chat: events come on chat.event
    std::string request_id;
    ConnId owner = 0;
    std::string client_key;
    // For the dashboard's history.
    std::string question, asker;
    int64_t started_ms = 0;         // wall clock
    int64_t asked_ms = 0;           // wall clock of origin_ns (0 = unknown)
    int64_t first_token_at_ms = 0;  // wall clock
    double first_token_ms = -1;
    Json tools = Json::array();  // calls in order, with their results
  };

  void Handle(ConnId id, Conn& conn, const ClientMessage& m, int64_t now_ns);
  void HandleChat(ConnId id, Conn& conn, const ClientMessage& m, int64_t now_ns);
  void HandleInterrupt(ConnId id, Conn& conn, const ClientMessage& m);
  void HandleNewConversation(ConnId id, Conn& conn, const ClientMessage& m);
  std::string ClientKey(const Conn& conn, const ClientMessage& m) const;
  ClientConversation& Conversation(const std::string& key);
  void CancelChat(const std::string& request_id);
  void OnAgentText(Turn& turn, const v1::AgentText& a, int64_t now_ns);
  void SendToolCall(Turn& turn, const v1::ToolCall& call);
  void SendToolResult(Turn& turn, const v1::ToolResult& result);
  void Remember(const Turn& turn, std::string_view outcome, std::string_view error);
  void LogRejected(const Conn& conn, int code, std::string_view why, int64_t now_ns);
  void OfferTools(const Conn& conn);
  // True the first time call_id goes to conn (a registered tool's call may
  // come both as the turn's tool_call and as an invocation).
  bool FirstCallTo(ConnId conn, const std::string& call_id);
  void HandleSwitchAvatar(ConnId id, Conn& conn, const ClientMessage& m);
  bool PublishCommand(const v1::DialogRequest& cmd);

  Turn* StartTurn(const std::string& turn_id, const std::string& conversation_id, bool voice,
                  const std::string& request_id, int64_t now_ns, bool text_chat = false);
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
  std::map<std::string, ClientConversation> client_convs_;  // by client key
  std::deque<std::string> client_order_;                    // oldest first
  std::map<std::string, std::string> issued_;               // conversation id → user_id it was made for
  LogLimiter log_limit_;
  struct Invocation {
    ConnId conn = 0;
    std::string provider;
    int64_t deadline_ns = 0;
  };
  std::map<std::string, Invocation> invocations_;          // by call id
  std::deque<std::pair<ConnId, std::string>> calls_sent_;  // recent (conn, call id)
  int64_t next_offer_ns_ = 0;
  std::deque<std::string> retired_;  // ended turns whose late events are dropped
  std::string current_turn_;         // for events that carry no turn id
  std::string conversation_id_;
  int64_t next_ping_ns_ = 0;
  int64_t speech_end_ns_ = 0;
  std::function<Json()> snapshot_;
  Json latency_ = Json::object();
  Json session_status_ = Json::object();  // last SessionStatus, for new dashboards
  TurnHistory history_;
  std::string last_transcript_;  // the last final user transcript (a voice turn's question)
  int64_t last_transcript_ns_ = 0;
  CoreCounters counters_;
};

}  // namespace vb::gateway
