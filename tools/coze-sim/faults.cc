// Implementation of faults.h.
#include "tools/coze-sim/faults.h"

namespace vb::cozesim {

nlohmann::json Faults::ToJson() const {
  return {{"drop_after_events", drop_after_events}, {"drop_probability", drop_probability},
          {"stall_after_events", stall_after_events}, {"refuse_handshake", refuse_handshake},
          {"error_code", error_code}, {"slow_audio", slow_audio}, {"remaining", remaining}};
}

bool Faults::Any() const {
  return drop_after_events || drop_probability > 0 || stall_after_events || refuse_handshake || error_code ||
         slow_audio > 0;
}

bool Faults::Merge(const nlohmann::json& j, std::string* error) {
  if (!j.is_object()) {
    *error = "faults must be a JSON object";
    return false;
  }
  Faults next = *this;
  for (auto& [k, v] : j.items()) {
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
