// StateStore: the session's small persistent state — the conversation id
// per bot and service — in one JSON file (e.g.
// $XDG_STATE_HOME/voicebus/session-<device>.json), written atomically
// (temporary file, fsync, rename) so a crash at any moment leaves either the
// old or the new content, never a torn file. This is what lets a restarted
// vb-session continue the same conversation, end the turn that died with the
// previous process and fetch the audio it missed (the resume fields, written
// whenever they change, at most twice a second except on turn and listening
// changes; an advance of the resend point alone at most every 2 s).
//
// Not thread-safe; used on the actor's loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bus/status.h"

namespace vb::session {

// A text input accepted and not yet answered by a chat (session_core.h
// PendingText), with the wall-clock time it was first accepted.
struct SavedText {
  std::string text, request_id, command_id;
  int64_t queued_at_ms = 0;  // CLOCK_REALTIME, ms
  bool operator==(const SavedText&) const = default;
};

struct SessionState {
  std::string conversation_id;
  std::string bot_id;   // the conversation belongs to this bot…
  std::string service;  // …on this REST host
  // Resume point (session_core.h ResumePoint), as of saved_at_ms.
  std::string turn_id;  // chat under way when this was written
  std::string mode;     // continuous | wake_word | push_to_talk ("" = unknown)
  // The device whose audio.clean was streamed: resend_from is in its sample
  // numbering ("" = the session's own device, as in files written before
  // the session could move to another device).
  std::string device;
  bool listening = false;
  bool streaming = false;
  bool has_samples = false;
  uint64_t resend_from = 0;
  int64_t saved_at_ms = 0;       // wall clock (CLOCK_REALTIME), ms: how stale it is after a restart
  std::vector<SavedText> texts;  // oldest first
};

class StateStore {
 public:
  explicit StateStore(std::string path) : path_(std::move(path)) {}
  // The default directory: $XDG_STATE_HOME/voicebus, else ~/.local/state/voicebus.
  static std::string DefaultDir();
  // Missing file → ok with an empty state; unreadable or corrupt → error
  // (the caller starts a new conversation and overwrites it).
  Status Load(SessionState* out) const;
  // `durable`: fsync before the rename (the conversation id); the resume
  // fields change often and only need to survive the process (kill -9).
  Status Save(const SessionState& state, bool durable = true) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  mutable bool dir_made_ = false;  // by this store: Save makes it once (again if it vanished)
};

}  // namespace vb::session
