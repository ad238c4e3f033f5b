// The chat-stream protocol's messages (shared/spec/gateway-protocol.md):
// parsing and validating what clients send, and building what the server
// sends. Pure functions over JSON text; no sockets, no bus.
//
// A client frame is one JSON object with a string `type`. Anything else —
// malformed JSON, a non-object, an unknown type, a missing or mistyped field —
// is a ProtocolError with code 400 and a message naming the problem; the
// caller answers it with an `error` and keeps the connection.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vb::gateway {

using Json = nlohmann::json;

enum class ClientType {
  kAuthorize,
  kPong,
  kChatMessage,
  kInterruptStream,
  kFetchBackgrounds,
  kFetchAvatarConfigs,
  kSwitchAvatarConfig,
  // Extensions (README): tool outputs, push-to-talk, dialog mode, dashboard feed.
  kSubmitToolOutput,
  kPushToTalk,
  kSetMode,
  kDashboardSubscribe,
  kNewConversation,
  kRegisterTools,
};

// register_tools: one tool a client serves.
struct ClientTool {
  std::string name, description, parameters_json;
  uint32_t timeout_ms = 0;
};

struct ClientMessage {
  ClientType type = ClientType::kPong;
  bool typed = false;  // `type` was recognised (set even if a field is then refused)
  std::string id;      // optional client message id, echoed as `reply_to`
  // authorize
  std::string token;
  // chat_message
  std::string content, agent_id, user_id, session_id, persona;
  int64_t limit = 10;
  // interrupt_stream (empty = every running turn), submit_tool_output
  std::string turn_id;
  // switch_avatar_config
  std::string file;
  // submit_tool_output
  std::string call_id, output;
  // push_to_talk
  bool down = false;
  // new_conversation: the device's voice conversation too (the dashboard)
  bool device = false;
  // set_mode: continuous | wake_word | push_to_talk
  std::string mode;
  // register_tools
  std::vector<ClientTool> tools;
};

struct ProtocolError {
  int code = 0;  // 0 = ok; else HTTP-style 400/401/500
  std::string message;
  bool ok() const { return code == 0; }
};

// Parses one text frame.
ProtocolError ParseClientMessage(std::string_view text, ClientMessage* out);

// {"type": type, "timestamp": <unix seconds>}.
Json ServerMessage(std::string_view type);
// {"type":"error","code":code,"error":message}.
Json ErrorMessage(int code, std::string_view message, std::string_view reply_to = {});

// Serialises without ever throwing: invalid UTF-8 is replaced, not fatal.
using Frame = std::shared_ptr<const std::string>;
Frame Serialize(const Json& message);

// A random RFC 4122 version-4 UUID.
std::string NewUuid();

}  // namespace vb::gateway
