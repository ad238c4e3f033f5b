// Implementation of faults.h.
#include "tools/coze-sim/faults.h"

namespace vb::cozesim {

std::string CozeErrorMessage(int code) {
  switch (code) {
    case 4000: return "invalid parameter";
    case 4001: return "invalid chat";
    case 4002: return "invalid conversation";
    case 4003: return "meta_data over limit";
    case 4004: return "additional_messages over limit";
    case 4005: return "invalid message";
    case 4006: return "bot not found or not published";
    case 4008: return "rate limit exceeded for this user";
    case 4009: return "server busy, please try again later";
    case 4010: return "the prompt is too long";
    case 4011: return "insufficient balance";
    case 4013: return "model error";
    case 4015: return "the bot is not published to the API channel";
    case 4016: return "a chat is already running in this conversation";
    case 4100: return "authentication is invalid";
    case 4101: return "no permission";
    case 4102: return "blocked by risk control";
    case 4104: return "the chat cannot be canceled";
    case 4105: return "sensitive content";
    case 4200: return "not found";
    case 5000: return "internal error";
    default: return "error (" + std::to_string(code) + ")";
  }
}

TurnFault Faults::TakeTurnFault() {
  TurnFault t;
  if (!chat_failed && !turn_error) return t;
  if (turn_error) {
    t.kind = TurnFault::kError;
    t.code = turn_error;
  } else {
    t.kind = TurnFault::kChatFailed;
    t.code = chat_failed;
    t.after_sentences = chat_failed_after;
  }
  t.msg = CozeErrorMessage(t.code) + " (injected fault)";
  if (turn_faults_remaining > 0 && --turn_faults_remaining == 0) {
    chat_failed = chat_failed_after = turn_error = 0;
    turn_faults_remaining = -1;
  }
  return t;
}

nlohmann::json Faults::ToJson() const {
  return {{"drop_after_events", drop_after_events},
          {"drop_probability", drop_probability},
          {"stall_after_events", stall_after_events},
          {"refuse_handshake", refuse_handshake},
          {"error_code", error_code},
          {"slow_audio", slow_audio},
          {"remaining", remaining},
          {"chat_failed", chat_failed},
          {"chat_failed_after", chat_failed_after},
          {"turn_error", turn_error},
          {"turn_faults_remaining", turn_faults_remaining}};
}

bool Faults::Any() const {
  return drop_after_events || drop_probability > 0 || stall_after_events || refuse_handshake || error_code ||
         slow_audio > 0 || chat_failed || turn_error;
}

bool Faults::Merge(const nlohmann::json& j, std::string* error) {
  if (!j.is_object()) {
    *error = "faults must be a JSON object";
    return false;
  }
  Faults next = *this;
  for (const auto& item : j.items()) {
    const std::string& k = item.key();  // not a structured binding: clang 14 cannot capture one
    const nlohmann::json& v = item.value();
    auto want_int = [&](int* dst, int lo, int hi) {
      if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
        *error = k + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        return false;
      }
      *dst = v.get<int>();
      return true;
    };
    auto want_num = [&](double* dst, double lo, double hi) {
      if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi) {
        *error = k + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        return false;
      }
      *dst = v.get<double>();
      return true;
    };
    bool ok;
    if (k == "drop_after_events") ok = want_int(&next.drop_after_events, 0, 1 << 30);
    else if (k == "drop_probability") ok = want_num(&next.drop_probability, 0, 1);
    else if (k == "stall_after_events") ok = want_int(&next.stall_after_events, 0, 1 << 30);
    else if (k == "refuse_handshake") ok = want_int(&next.refuse_handshake, 0, 599);
    else if (k == "error_code") ok = want_int(&next.error_code, 0, 99999);
    else if (k == "slow_audio") ok = want_num(&next.slow_audio, 0, 100);
    else if (k == "remaining") ok = want_int(&next.remaining, -1, 1 << 30);
    else if (k == "chat_failed") ok = want_int(&next.chat_failed, 0, 99999);
    else if (k == "chat_failed_after") ok = want_int(&next.chat_failed_after, 0, 1000);
    else if (k == "turn_error") ok = want_int(&next.turn_error, 0, 99999);
    else if (k == "turn_faults_remaining") ok = want_int(&next.turn_faults_remaining, -1, 1 << 30);
    else {
      *error = "unknown fault: " + k;
      ok = false;
    }
    if (!ok) return false;
  }
  *this = next;
  return true;
}

}  // namespace vb::cozesim
