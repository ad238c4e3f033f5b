// Client message validation and server message building (see protocol.h).
#include "actors/gateway/protocol.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

namespace vb::gateway {
namespace {

const std::map<std::string, ClientType, std::less<>>& Types() {
  static const std::map<std::string, ClientType, std::less<>> kTypes = {
      {"authorize", ClientType::kAuthorize},
      {"pong", ClientType::kPong},
      {"chat_message", ClientType::kChatMessage},
      {"interrupt_stream", ClientType::kInterruptStream},
      {"fetch_backgrounds", ClientType::kFetchBackgrounds},
      {"fetch_avatar_configs", ClientType::kFetchAvatarConfigs},
      {"switch_avatar_config", ClientType::kSwitchAvatarConfig},
      {"submit_tool_output", ClientType::kSubmitToolOutput},
      {"push_to_talk", ClientType::kPushToTalk},
      {"set_mode", ClientType::kSetMode},
      {"dashboard_subscribe", ClientType::kDashboardSubscribe},
      {"new_conversation", ClientType::kNewConversation},
      {"register_tools", ClientType::kRegisterTools},
  };
  return kTypes;
}

ProtocolError Bad(std::string message) { return ProtocolError{400, std::move(message)}; }

// Reads field `key` of `obj` as a string into *out. Missing: error if required.
ProtocolError String(const Json& obj, const char* key, bool required, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return Bad(std::string("missing field '") + key + "'");
    return {};
  }
  if (!it->is_string()) return Bad(std::string("field '") + key + "' must be a string");
  *out = it->get<std::string>();
  return {};
}

}  // namespace

ProtocolError ParseClientMessage(std::string_view text, ClientMessage* out) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("malformed JSON");
  if (!j.is_object()) return Bad("a message must be a JSON object");
  std::string type;
  if (auto e = String(j, "type", true, &type); !e.ok()) return e;
  auto t = Types().find(type);
  if (t == Types().end()) return Bad("unknown message type '" + type.substr(0, 64) + "'");
  *out = ClientMessage{};
  out->type = t->second;
  out->typed = true;
  // `id` may be any scalar in the wild; keep strings and numbers.
  if (auto it = j.find("id"); it != j.end()) {
    if (it->is_string()) out->id = it->get<std::string>();
    else if (it->is_number()) out->id = it->dump();
    else if (!it->is_null()) return Bad("field 'id' must be a string");
  }
  if (auto it = j.find("timestamp"); it != j.end() && !it->is_number() && !it->is_null())
    return Bad("field 'timestamp' must be a number");

  ProtocolError e;
  switch (out->type) {
    case ClientType::kAuthorize: e = String(j, "token", true, &out->token); break;
    case ClientType::kChatMessage: {
      if (!(e = String(j, "content", true, &out->content)).ok()) break;
      if (out->content.empty()) {
        e = Bad("field 'content' must not be empty");
        break;
      }
      if (!(e = String(j, "agent_id", true, &out->agent_id)).ok()) break;
      if (!(e = String(j, "user_id", true, &out->user_id)).ok()) break;
      if (!(e = String(j, "session_id", false, &out->session_id)).ok()) break;
      if (!(e = String(j, "persona", false, &out->persona)).ok()) break;
      if (auto it = j.find("images"); it != j.end() && !it->is_null()) {
        if (!it->is_array()) {
          e = Bad("field 'images' must be an array");
          break;
        }
      }
      if (auto it = j.find("limit"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer()) {
          e = Bad("field 'limit' must be an integer");
          break;
        }
        out->limit = it->get<int64_t>();
      }
      if (auto it = j.find("metadata"); it != j.end() && !it->is_null() && !it->is_object())
        e = Bad("field 'metadata' must be an object");
      break;
    }
    case ClientType::kInterruptStream: e = String(j, "turn_id", false, &out->turn_id); break;
    case ClientType::kSwitchAvatarConfig: e = String(j, "file", true, &out->file); break;
    case ClientType::kSubmitToolOutput:
      if (!(e = String(j, "turn_id", false, &out->turn_id)).ok()) break;
      if (!(e = String(j, "call_id", true, &out->call_id)).ok()) break;
      if (auto it = j.find("output"); it == j.end() || it->is_null()) {
        e = Bad("missing field 'output'");
      } else {
        // A JSON string is taken as is; any other JSON value is passed serialised.
        out->output =
            it->is_string() ? it->get<std::string>() : it->dump(-1, ' ', false, Json::error_handler_t::replace);
      }
      break;
    case ClientType::kPushToTalk: {
      auto it = j.find("down");
      if (it == j.end()) e = Bad("missing field 'down'");
      else if (!it->is_boolean()) e = Bad("field 'down' must be a boolean");
      else out->down = it->get<bool>();
      break;
    }
    case ClientType::kSetMode:
      if (!(e = String(j, "mode", true, &out->mode)).ok()) break;
      if (out->mode != "continuous" && out->mode != "wake_word" && out->mode != "push_to_talk")
        e = Bad("field 'mode' must be continuous, wake_word or push_to_talk");
      break;
    case ClientType::kNewConversation:
      // Optional: whose conversation (default: the one this connection chatted in last).
      if (!(e = String(j, "user_id", false, &out->user_id)).ok()) break;
      if (!(e = String(j, "session_id", false, &out->session_id)).ok()) break;
      if (auto it = j.find("device"); it != j.end()) {
        if (!it->is_boolean()) e = Bad("field 'device' must be a boolean");
        else out->device = it->get<bool>();
      }
      break;
    case ClientType::kRegisterTools: {
      auto it = j.find("tools");
      if (it == j.end() || !it->is_array()) {
        e = Bad("field 'tools' must be an array (empty withdraws them)");
        break;
      }
      if (it->size() > 64) {
        e = Bad("at most 64 tools");
        break;
      }
      for (const auto& item : *it) {
        ClientTool tool;
        if (!item.is_object()) {
          e = Bad("each tool must be an object");
          break;
        }
        if (!(e = String(item, "name", true, &tool.name)).ok()) break;
        if (tool.name.empty() || tool.name.size() > 64) {
          e = Bad("a tool name must have 1 to 64 characters");
          break;
        }
        if (!(e = String(item, "description", false, &tool.description)).ok()) break;
        if (auto p = item.find("parameters"); p != item.end() && !p->is_null()) {
          if (!p->is_object()) {
            e = Bad("field 'parameters' must be a JSON Schema object");
            break;
          }
          tool.parameters_json = p->dump(-1, ' ', false, Json::error_handler_t::replace);
        }
        if (auto to = item.find("timeout_ms"); to != item.end() && !to->is_null()) {
          if (!to->is_number_integer() || to->get<int64_t>() < 0 || to->get<int64_t>() > 60000) {
            e = Bad("field 'timeout_ms' must be an integer from 0 to 60000");
            break;
          }
          tool.timeout_ms = uint32_t(to->get<int64_t>());
        }
        out->tools.push_back(std::move(tool));
      }
      break;
    }
    case ClientType::kPong:
    case ClientType::kFetchBackgrounds:
    case ClientType::kFetchAvatarConfigs:
    case ClientType::kDashboardSubscribe: break;
  }
  return e;
}

Json ServerMessage(std::string_view type) {
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return Json{{"type", type}, {"timestamp", std::round(now * 1000.0) / 1000.0}};
}

Json ErrorMessage(int code, std::string_view message, std::string_view reply_to) {
  Json m = ServerMessage("error");
  m["code"] = code;
  m["error"] = message;
  if (!reply_to.empty()) m["reply_to"] = reply_to;
  return m;
}

Frame Serialize(const Json& message) {
  return std::make_shared<const std::string>(message.dump(-1, ' ', false, Json::error_handler_t::replace));
}

std::string NewUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  char s[37];
  std::snprintf(s, sizeof s, "%08x-%04x-%04x-%04x-%012llx", unsigned(a >> 32), unsigned((a >> 16) & 0xFFFF),
                unsigned(a & 0xFFFF), unsigned(b >> 48), static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
  return s;
}

}  // namespace vb::gateway
