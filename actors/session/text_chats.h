// TextChats: text-only chats that vb-session runs for bus clients (topic
// chat.request → chat.event, proto/vb/v1/chat.proto), each in its own Coze
// conversation, over REST v3 streaming (`POST /v3/chat` with `stream: true`,
// SSE), so they run at the same time as the voice WebSocket and as one
// another without cancelling anything (coze-protocol.md; seed 003).
//
//  - A chat continues the conversation it names, else the one made before
//    for its conversation_key, else a new one (`/v1/conversation/create`;
//    two chats of one key waiting for it share the creation).
//  - One running chat per conversation (Coze refuses a second, 4016): a new
//    chat in a conversation whose chat still runs ends that one (CANCELLED,
//    NEW_MESSAGE) and starts after its `/v3/chat/cancel` was answered.
//  - `requires_action`: every tool call goes out (chat.event, and
//    session.event for vb-tools); ToolOutputs naming the chat are gathered and
//    go up together (`/v3/chat/submit_tool_outputs`, streamed); calls left
//    unanswered after tool_timeout are answered with an error output, so the
//    chat always ends.
//  - Every chat ends with exactly one `ended`: completed, failed (with Coze's
//    code and message, a broken stream, no event for stall_timeout), or
//    cancelled.
//
// No sockets and no bus: the port does HTTP and publishing; time is passed
// in. Single-threaded (the actor's loop).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vb/v1/chat.pb.h"

namespace vb::session {

// Splits a Server-Sent Events byte stream into events (field `event:` and
// the joined `data:` lines), whatever the chunking. Bounded: an event larger
// than max_event_bytes is dropped and counted.
class SseParser {
 public:
  struct Event {
    std::string name, data;
  };
  explicit SseParser(size_t max_event_bytes = 1 << 20) : max_(max_event_bytes) {}
  // Appends bytes; returns the events they completed.
  std::vector<Event> Push(const std::string& bytes);
  uint64_t oversized() const { return oversized_; }

 private:
  void Line(std::string line, std::vector<Event>* out);
  size_t max_;
  std::string buf_;
  Event cur_;
  bool has_data_ = false;
  uint64_t oversized_ = 0;
};

class TextChatPort {
 public:
  virtual ~TextChatPort() = default;
  using Chunk = std::function<void(std::string)>;
  using Done = std::function<void(int status, std::string body, std::string error)>;
  // POST to the REST base; streamed (chunks, then done) or whole (done only).
  virtual uint64_t PostStream(const std::string& path, std::string body, Chunk chunk, Done done) = 0;
  virtual void Post(const std::string& path, std::string body, Done done) = 0;
  virtual void Abort(uint64_t stream) = 0;
  virtual void PublishChatEvent(const v1::TextChatEvent& event) = 0;
  // The call also goes on session.event (Header.turn_id = chat id): vb-tools answers it.
  virtual void PublishToolCall(const v1::ToolCall& call, const std::string& chat_id) = 0;
  // A chat that ended while its tool calls were outstanding: also said on
  // session.event (Header.turn_id = chat id), so vb-tools drops those calls
  // rather than timing them out (and playing its fallback) later.
  virtual void PublishTurnEndedWithTools(const v1::TurnEnded& /*ended*/, const std::string& /*chat_id*/) {}
  virtual void Problem(const std::string& what) = 0;
};

struct TextChatOptions {
  std::string bot_id;
  std::string default_user_id;
  int64_t tool_timeout_ns = 10'000'000'000;
  int64_t stall_timeout_ns = 30'000'000'000;
  size_t max_chats = 32;   // running at once; more are refused (ended FAILED)
  size_t max_keys = 1024;  // conversation_key → id remembered (oldest forgotten)
  size_t max_text_bytes = 4096;
};

struct TextChatCounters {
  uint64_t started = 0, completed = 0, failed = 0, cancelled = 0, refused = 0, tool_calls = 0, tool_timeouts = 0,
           conversations_created = 0, stalls = 0, bad_events = 0;
};

class TextChats {
 public:
  // `now` gives the monotonic time (ns) for callbacks that carry none.
  TextChats(TextChatOptions options, TextChatPort* port, std::function<int64_t()> now)
      : options_(std::move(options)), port_(port), now_(std::move(now)) {}

  void OnRequest(const v1::TextChatRequest& request, int64_t now_ns);
  // A ToolOutput: true if `chat_id` is one of ours (then *refusal says why it
  // was not taken, "" if taken).
  bool OnToolOutput(const std::string& chat_id, const std::string& call_id, const std::string& output, int64_t now_ns,
                    std::string* refusal);
  // Tool and stall deadlines.
  void Tick(int64_t now_ns);
  bool Owns(const std::string& chat_id) const;
  void set_bot_id(const std::string& bot_id) { options_.bot_id = bot_id; }

  size_t running() const { return chats_.size(); }
  const TextChatCounters& counters() const { return counters_; }

 private:
  enum class Phase { kConversation, kQueued, kStreaming, kTools, kCancelling };
  struct Chat {
    std::string request_id, key, conversation_id, chat_id, user_id, text;
    std::string body_prefix;  // a non-SSE answer (an error envelope), kept for the reason
    Phase phase = Phase::kConversation;
    uint64_t stream = 0;      // current HTTP stream (0 = none)
    size_t stream_bytes = 0;  // of the current stream
    SseParser sse;
    int64_t last_event_ns = 0;
    int64_t tools_deadline_ns = 0;
    std::vector<std::pair<std::string, std::string>> calls;    // id, name
    std::vector<std::pair<std::string, std::string>> outputs;  // id, output
    std::map<std::string, std::string> text_by_message;
    bool started = false;
  };

  void Start(Chat& c, int64_t now_ns);
  void CreateConversation(const std::string& key);
  void OnConversation(const std::string& key, int status, const std::string& body, const std::string& error);
  void RunChat(Chat& c, int64_t now_ns);
  void OpenStream(Chat& c, const std::string& path, std::string body);
  void OnChunk(const std::string& rid, uint64_t stream, const std::string& bytes);
  void OnStreamDone(const std::string& rid, uint64_t stream, int status, const std::string& error);
  void OnSse(Chat& c, const SseParser::Event& e, int64_t now_ns);
  void SubmitOutputs(Chat& c, int64_t now_ns);
  void Cancel(const std::string& rid, v1::TurnEnded::CancelReason reason);
  // Publishes `ended` and forgets the chat (c is invalid afterwards).
  void End(const std::string& rid, v1::TurnEnded::Outcome outcome, const std::string& error,
           v1::TurnEnded::CancelReason reason = v1::TurnEnded::CANCEL_UNSPECIFIED, uint32_t in_tokens = 0,
           uint32_t out_tokens = 0);
  v1::TextChatEvent Event(const Chat& c) const;
  Chat* Find(const std::string& rid);
  Chat* RunningIn(const std::string& conversation_id, const std::string& except_rid);
  void Remember(const std::string& key, const std::string& id);
  // Chats waiting for a conversation (queued) whose turn it is now.
  void StartWaiting(const std::string& conversation_id, int64_t now_ns);

  TextChatOptions options_;
  TextChatPort* port_;
  std::map<std::string, Chat> chats_;        // by request_id
  std::map<std::string, std::string> keys_;  // conversation_key → conversation id
  std::deque<std::string> key_order_;
  std::map<std::string, bool> creating_;   // keys whose conversation is being made
  std::map<std::string, int> cancelling_;  // conversation → cancel requests under way
  std::function<int64_t()> now_;
  TextChatCounters counters_;
};

}  // namespace vb::session
