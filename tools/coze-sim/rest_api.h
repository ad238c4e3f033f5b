// The Coze REST API (coze-protocol.md §7) over the shared Store: requests in,
// complete responses out, no sockets. Streamed `/v3/chat` answers are built as
// a whole SSE body (the agent answers at once) whose events carry the time a
// model would produce them; the server sends them paced (HttpResponse::pieces). Also the simulator's own control
// endpoints under /_sim/. Runs on the event loop thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tools/coze-sim/agent.h"
#include "tools/coze-sim/faults.h"
#include "tools/coze-sim/store.h"

namespace vb::cozesim {

struct HttpRequest {
  std::string method;  // GET, POST
  std::string path;    // without query
  std::string query;   // raw, without '?'
  std::string body;
  std::string authorization;  // header value, may be empty
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Pacing of a streamed body (SSE): body[0, end) may be sent `at_ms` after
  // the request; empty = all at once.
  struct Piece {
    size_t end;
    int64_t at_ms;
  };
  std::vector<Piece> pieces;
};

// An SSE body built event by event, each stamped with when it is produced
// (ms after the request), so the server sends it paced as a model would.
struct SseStream {
  // Time to the first answer delta, and between deltas (about three words:
  // ~50 words per second, a fast streaming model).
  static constexpr int64_t kFirstDeltaMs = 250;
  static constexpr int64_t kDeltaMs = 60;
  std::string body;
  std::vector<HttpResponse::Piece> pieces;
  int64_t at_ms = 0;
  // Appends `event:NAME\ndata:JSON\n\n`, produced `gap_ms` after the previous one.
  void Event(const std::string& name, const nlohmann::json& data, int64_t gap_ms = 0);
  void Done();
  HttpResponse Response() const;
};

// Decides which tokens and bots are accepted (shared with the WS handshake).
struct AccessPolicy {
  std::vector<std::string> tokens;  // empty: any non-empty token
  std::vector<std::string> bots;    // empty: any bot id
  bool TokenOk(const std::string& bearer_header_value) const;
  bool BotOk(const std::string& bot_id) const;
};

class RestApi {
 public:
  RestApi(Store* store, const Agent* agent, Faults* faults, const AccessPolicy* access, std::string logid_seed = "")
      : store_(store), agent_(agent), faults_(faults), access_(access) {}
  HttpResponse Handle(const HttpRequest& req);
  // Statistics for /_sim/stats, set by the server.
  std::function<Json()> stats;

 private:
  HttpResponse Envelope(int code, const std::string& msg, Json data, const std::string& logid, int status = 200);
  HttpResponse CreateConversation(const Json& body, const std::string& logid);
  HttpResponse RetrieveConversation(const std::string& query, const std::string& logid);
  HttpResponse CreateMessage(const std::string& query, const Json& body, const std::string& logid);
  HttpResponse ListMessages(const std::string& query, const Json& body, const std::string& logid);
  HttpResponse ClearConversation(const std::string& id, const std::string& logid);
  HttpResponse Chat(const std::string& query, const Json& body, const std::string& logid);
  HttpResponse RetrieveChat(const std::string& query, const std::string& logid);
  HttpResponse ChatMessages(const std::string& query, const std::string& logid);
  HttpResponse CancelChat(const Json& body, const std::string& logid);
  HttpResponse SubmitToolOutputs(const std::string& query, const Json& body, const std::string& logid);
  HttpResponse Faults(const std::string& method, const std::string& body);

  // Runs the agent for `user_text` in `chat`; appends SSE events to *sse.
  // An injected `fault` (kChatFailed) makes the chat fail as a `fail` rule does.
  void RunChat(Conversation& conv, vb::cozesim::Chat& chat, const std::string& user_text, SseStream* sse,
               const TurnFault& fault);
  // The first `after_sentences` sentences of `text` as deltas, then the chat
  // fails with last_error (SSE `conversation.chat.failed`).
  void Fail(vb::cozesim::Chat& chat, const std::string& text, const TurnFault& f, SseStream* sse);
  void Answer(Conversation& conv, vb::cozesim::Chat& chat, const std::string& text, SseStream* sse);

  Store* store_;
  const Agent* agent_;
  vb::cozesim::Faults* faults_;
  const AccessPolicy* access_;
  struct PendingTool {
    ToolCall call;
    std::string tool_call_id;
  };
  std::map<std::string, PendingTool> pending_tools_;  // by chat id; bounded by kMaxPending
  static constexpr size_t kMaxPending = 1000;
};

}  // namespace vb::cozesim
