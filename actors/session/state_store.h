// StateStore: the session's small persistent state — the conversation id
// per bot and service — in one JSON file (e.g.
// $XDG_STATE_HOME/voicebus/session-<device>.json), written atomically
// (temporary file, fsync, rename) so a crash at any moment leaves either the
// old or the new content, never a torn file. This is what lets a restarted
// vb-session continue the same conversation.
//
// Not thread-safe; used on the actor's loop.
#pragma once

#include <string>

#include "bus/status.h"

namespace vb::session {

struct SessionState {
  std::string conversation_id;
  std::string bot_id;    // the conversation belongs to this bot…
  std::string service;   // …on this REST host
};

class StateStore {
 public:
  explicit StateStore(std::string path) : path_(std::move(path)) {}
  // The default directory: $XDG_STATE_HOME/voicebus, else ~/.local/state/voicebus.
  static std::string DefaultDir();
  // Missing file → ok with an empty state; unreadable or corrupt → error
  // (the caller starts a new conversation and overwrites it).
  Status Load(SessionState* out) const;
  Status Save(const SessionState& state) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace vb::session
