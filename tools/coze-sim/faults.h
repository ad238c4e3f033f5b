// Faults injected on demand, from command-line flags or `POST /_sim/faults`
// at run time, so clients' recovery paths can be tested against the same
// server: dropped connections, stalls, refused handshakes, Coze error codes,
// slow audio, and turn faults: a chat that ends `conversation.chat.failed`
// with `last_error`, or a turn answered by an `error` event. Read and written
// on the event loop thread only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vb::cozesim {

// Coze's text for an error code of coze-protocol.md §7 ("error (CODE)" for
// codes the spec does not list).
std::string CozeErrorMessage(int code);

// One turn's injected failure, taken from the live faults.
struct TurnFault {
  enum Kind { kNone, kChatFailed, kError } kind = kNone;
  int code = 0;
  int after_sentences = 0;  // kChatFailed: sentences answered before the failure
  std::string msg;
};

struct Faults {
  int drop_after_events = 0;    // close a WS connection after N downstream events (0 = never)
  double drop_probability = 0;  // close after any downstream event with this probability
  int stall_after_events = 0;   // stop sending (keep reading) after N events (0 = never)
  int refuse_handshake = 0;     // HTTP status for WS handshakes (0 = accept)
  int error_code = 0;           // 4008/4009/5000…: answer turns and REST calls with this code
  double slow_audio = 0;        // >1: audio deltas paced at factor × real time
  int remaining = -1;           // apply to this many more connections (-1 = all)
  // Turn faults: read live by every turn (WebSocket and REST /v3/chat), also
  // on connections opened before they were set.
  int chat_failed = 0;             // Coze code: turns end conversation.chat.failed with last_error
  int chat_failed_after = 0;       // ... after this many answer sentences (text and audio)
  int turn_error = 0;              // Coze code: turns are answered by an `error` event
  int turn_faults_remaining = -1;  // apply the turn faults to this many more turns (-1 = all)

  nlohmann::json ToJson() const;
  // Merges the keys present in `j`; false with *error on a bad key or value.
  bool Merge(const nlohmann::json& j, std::string* error);
  bool Any() const;
  // The failure for the turn starting now, if any; counts down
  // turn_faults_remaining (at 0 the turn faults are cleared).
  TurnFault TakeTurnFault();
};

}  // namespace vb::cozesim
