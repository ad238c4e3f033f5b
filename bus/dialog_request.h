// Requests (dialog.request) and orders (dialog.order): which part takes a
// request, and a request read as the DialogCommand its taker handles.
// Header-only, protobuf only: no bus, no ZeroMQ.
#pragma once

#include <string>

#include "vb/v1/dialog.pb.h"

namespace vb::bus {

// vb-control's: push-to-talk, mode, interrupt, prompt sounds.
inline bool ForControl(const v1::DialogRequest& r) {
  return r.has_push_to_talk() || r.has_set_mode() || r.has_interrupt() || r.has_play_prompt();
}

// vb-session's: text turns, tool outputs, the agent's settings, announcements,
// a new conversation.
inline bool ForSession(const v1::DialogRequest& r) {
  return r.has_text_input() || r.has_tool_output() || r.has_session_config() || r.has_speak() ||
         r.has_new_conversation();
}

// The request as a DialogCommand: every DialogRequest field has the number
// of its DialogCommand twin (dialog.proto), so the bytes are the same
// command (unit_bus RequestsReadAsTheirCommandTwin checks each kind).
inline v1::DialogCommand AsCommand(const v1::DialogRequest& r) {
  v1::DialogCommand c;
  c.ParseFromString(r.SerializeAsString());
  return c;
}

// The other way, for tests and tools that build a DialogCommand: the request
// it is (fields a request cannot carry, e.g. start_listening, are dropped
// as unknown fields would be: check with ForControl/ForSession).
inline v1::DialogRequest AsRequest(const v1::DialogCommand& c) {
  v1::DialogRequest r;
  r.ParseFromString(c.SerializeAsString());
  r.DiscardUnknownFields();
  return r;
}

}  // namespace vb::bus
