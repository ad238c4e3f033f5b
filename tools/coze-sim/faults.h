// Faults injected on demand, from command-line flags or `POST /_sim/faults`
// at run time, so clients' recovery paths can be tested against the same
// server: dropped connections, stalls, refused handshakes, Coze error codes,
// slow audio. Read and written on the event loop thread only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vb::cozesim {

struct Faults {
  int drop_after_events = 0;       // close a WS connection after N downstream events (0 = never)
  double drop_probability = 0;     // close after any downstream event with this probability
  int stall_after_events = 0;      // stop sending (keep reading) after N events (0 = never)
  int refuse_handshake = 0;        // HTTP status for WS handshakes (0 = accept)
  int error_code = 0;              // 4008/4009/5000…: answer turns and REST calls with this code
  double slow_audio = 0;           // >1: audio deltas paced at factor × real time
  int remaining = -1;              // apply to this many more connections (-1 = all)

  nlohmann::json ToJson() const;
  // Merges the keys present in `j`; false with *error on a bad key or value.
  bool Merge(const nlohmann::json& j, std::string* error);
  bool Any() const;
};

}  // namespace vb::cozesim
