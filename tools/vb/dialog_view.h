// The dialog shown live on the console, for `vb demo` and `vb run`: state
// changes ("[listening] …"), what the agent heard ("you:   …"), what it
// answers ("agent: …"), tool calls and failures. Subscribes on the caller's
// node; prints through `line`.
//
// Threading: the caller's loop thread (the node's).
#pragma once

#include <functional>
#include <string>

#include "bus/node.h"

namespace vb::cli {

// One word for a dialog state: idle, listening, thinking, speaking, offline, deaf.
const char* StateWord(v1::DialogStateKind s);

class DialogView {
 public:
  using Line = std::function<void(const std::string&)>;
  // `show`: print the dialog; `on_state` (may be null) hears every state
  // change as "word[: reason]" whether shown or not.
  DialogView(bus::Node& node, bool show, Line line, std::function<void(const std::string&)> on_state = nullptr);

 private:
  bool show_;
  Line line_;
  std::function<void(const std::string&)> on_state_;
  v1::DialogStateKind last_state_ = v1::STATE_UNSPECIFIED;
  std::string last_reason_;
};

}  // namespace vb::cli
