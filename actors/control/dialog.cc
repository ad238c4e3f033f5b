// The dialog state machine (see dialog.h).
#include "actors/control/dialog.h"

#include <algorithm>
#include <utility>

namespace vb::control {
namespace {
int64_t Ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
bool Busy(v1::DialogStateKind s) { return s == v1::STATE_THINKING || s == v1::STATE_SPEAKING; }
}  // namespace

Dialog::Dialog(DialogOptions options, DialogOutput& out) : options_(options), out_(out) {
  state_.set_state(v1::STATE_OFFLINE);
  state_.set_mode(options_.mode);
  state_.set_reason("starting: session not connected yet");
}

bool Dialog::Ended(const std::string& turn_id) const {
  return std::find(ended_turns_.begin(), ended_turns_.end(), turn_id) != ended_turns_.end();
}

void Dialog::RememberEnded(const std::string& turn_id, Clock::time_point now) {
  if (turn_id.empty() || Ended(turn_id)) return;
  ended_turns_.push_back(turn_id);
  while (ended_turns_.size() > kRememberEnded) ended_turns_.pop_front();
  for (auto& u : unconfirmed_)
    if (u.turn_id == turn_id && !u.deadline) u.deadline = now + kUnconfirmedGrace;
}

void Dialog::Confirmed(const std::string& turn_id) {
  for (auto it = unconfirmed_.begin(); it != unconfirmed_.end(); ++it)
    if (it->turn_id == turn_id) {
      unconfirmed_.erase(it);
      return;
    }
}

void Dialog::Start(Clock::time_point now) {
  recovering_ = true;
  recover_deadline_ = now + options_.recover_timeout;
  state_.set_reason("starting: asking the session and the playback what is under way");
}

void Dialog::Settle(Clock::time_point now) {
  recovering_ = false;
  recover_deadline_.reset();
  if (!connected_) return Enter(v1::STATE_OFFLINE, "session not connected", now);
  if (state_.state() != v1::STATE_OFFLINE) return;  // events already moved the dialog on
  if (!session_turn_.empty() && !Ended(session_turn_)) {
    // A reply is under way: resume it rather than listen over it. Held as
    // if its TurnStarted had been heard: if control lets go of it (no reply
    // in time) and the session never ends it, control ends it (issue 12).
    state_.set_turn_id(session_turn_);
    TrackTurn(session_turn_, now);
    audio_pending_ = playback_speaking_;
    reply_done_ = false;
    if (playback_speaking_) {
      speaking_since_ = now;
      return Enter(v1::STATE_SPEAKING, "recovered: the agent is speaking", now);
    }
    Enter(v1::STATE_THINKING, "recovered: the agent is replying", now);
    reply_deadline_ = now + options_.reply_timeout;
    return;
  }
  if (playback_speaking_) {
    // The session is done with the turn but its audio still plays: speak
    // until the playback drains (whichever turn it names) or falls idle.
    adopt_playback_turn_ = true;
    audio_pending_ = reply_done_ = true;
    speaking_since_ = now;
    drain_deadline_ = now + options_.drain_timeout;
    return Enter(v1::STATE_SPEAKING, "recovered: the agent is speaking", now);
  }
  Enter(RestingState(), "recovered: nothing under way", now);
}

void Dialog::SessionStatus(const v1::SessionStatus& status, Clock::time_point now) {
  const std::string& turn = status.turn_id();
  if (!turn.empty()) session_names_turns_ = true;
  session_turn_ = turn;
  if (recovering_) {
    session_heard_ = true;
    if (!status.conversation_id().empty()) state_.set_conversation_id(status.conversation_id());
    connected_ = status.connected();
    state_.set_session_connected(connected_);
    if (playback_heard_) Settle(now);
    return;
  }
  SessionConnected(status.connected(), status.conversation_id(), now);
  // The session is up and reports no longer running our turn, and never
  // ended it (its TurnEnded was lost, or it forgot the turn): end it. Only
  // once it has shown it names its turns: an older session leaves turn_id
  // empty. Status and TurnStarted travel in order on one topic, so a status
  // after TurnStarted that names another turn is not a race.
  if (connected_ && session_names_turns_ && !state_.turn_id().empty() && !reply_done_ && turn != state_.turn_id() &&
      Busy(state_.state()))
    Abandon("the session no longer runs this turn", now);
}

v1::DialogStateKind Dialog::RestingState() const {
  if (!connected_) return v1::STATE_OFFLINE;
  return options_.mode == v1::MODE_CONTINUOUS ? v1::STATE_LISTENING : v1::STATE_IDLE;
}

// The transition table, rows from, columns to, both indexed by the enum
// (unspecified, IDLE, LISTENING, THINKING, SPEAKING, OFFLINE). Staying is
// allowed (a new reason). Losing the session
// is possible from anywhere; back at rest (IDLE or LISTENING) from anywhere;
// THINKING from anywhere (a committed voice turn, a text turn, a key
// released over a reply, a reply resumed after a restart); SPEAKING only
// once a reply was asked for (THINKING) or resumed (OFFLINE: a restarted
// vb-control). Refused: a reply heard while nobody asked for one
// (IDLE/LISTENING → SPEAKING: its turn would have made the dialog THINK
// first), and an unspecified or unknown state either way.
bool Dialog::Allowed(v1::DialogStateKind from, v1::DialogStateKind to) {
  using S = v1::DialogStateKind;
  constexpr int kStates = 5;  // STATE_IDLE .. STATE_OFFLINE are 1..5
  // clang-format off
  static constexpr bool kTable[kStates + 1][kStates + 1] = {
      //            -      IDLE   LISTEN THINK  SPEAK  OFFLINE
      /* -      */ {false, false, false, false, false, false},
      /* IDLE   */ {false, true,  true,  true,  false, true},
      /* LISTEN */ {false, true,  true,  true,  false, true},
      /* THINK  */ {false, true,  true,  true,  true,  true},
      /* SPEAK  */ {false, true,  true,  true,  true,  true},
      /* OFFLINE*/ {false, true,  true,  true,  true,  true},
  };
  // clang-format on
  static_assert(S::STATE_IDLE == 1 && S::STATE_LISTENING == 2 && S::STATE_THINKING == 3 && S::STATE_SPEAKING == 4 &&
                S::STATE_OFFLINE == 5);
  if (from < 0 || from > kStates || to < 0 || to > kStates) return false;
  return kTable[from][to];
}

void Dialog::Enter(v1::DialogStateKind s, const std::string& reason, Clock::time_point now) {
  if (state_.state() == s && state_.reason() == reason) return;
  if (!Allowed(state_.state(), s)) {
    ++transitions_refused_;
    out_.TransitionRefused(state_.state(), s, reason);
    return;
  }
  bool changed = state_.state() != s;
  if (!Busy(s)) busy_since_.reset();
  else if (!Busy(state_.state())) busy_since_ = now;
  state_.set_state(s);
  state_.set_reason(reason);
  if (changed) state_.set_since_mono_ns(Ns(now));
  state_.set_session_connected(connected_);
  state_.set_mode(options_.mode);
  if (s != v1::STATE_THINKING) reply_deadline_.reset();
  out_.StateChanged(state_);
  UpdateGuard(now);
}

void Dialog::UpdateGuard(Clock::time_point now) {
  const bool wanted = Busy(state_.state()) && options_.barge_in_wake_word && options_.wake_guard.count() > 0 &&
                      wake_spotting_ && options_.mode != v1::MODE_PUSH_TO_TALK;
  if (wanted) {
    guard_release_.reset();
    if (!guard_on_) HoldUplink(now);
    return;
  }
  if (!guard_on_) return;
  // Push-to-talk or no spotter: nothing to cut. Otherwise a phrase begun as
  // the reply ended may still be in the line.
  if (options_.mode == v1::MODE_PUSH_TO_TALK || !wake_spotting_ || !options_.barge_in_wake_word) ReleaseGuard(0);
  else if (!guard_release_) guard_release_ = now + options_.wake_guard;
}

void Dialog::HoldUplink(Clock::time_point now) {
  v1::DialogCommand c;
  c.mutable_uplink_guard()->set_hold(true);
  c.mutable_uplink_guard()->set_delay_ms(uint32_t(options_.wake_guard.count()));
  out_.Command(c);
  guard_on_ = true;
  guard_renew_ = now + kGuardRenew;
}

void Dialog::ReleaseGuard(uint64_t cut_before_sample) {
  v1::DialogCommand c;
  c.mutable_uplink_guard()->set_hold(false);
  c.mutable_uplink_guard()->set_cut_before_sample(cut_before_sample);
  out_.Command(c);
  guard_on_ = false;
  guard_release_.reset();
  guard_renew_.reset();
}

void Dialog::WakeSpotting(bool on, Clock::time_point now) {
  if (on == wake_spotting_) return;
  wake_spotting_ = on;
  UpdateGuard(now);
}

void Dialog::Prompt(const std::string& name) {
  v1::DialogCommand c;
  c.mutable_play_prompt()->set_name(name);
  out_.Command(c);
}

void Dialog::StartListening(Clock::time_point now, const std::string& reason, std::optional<uint64_t> from_sample) {
  v1::DialogCommand c;
  auto& sl = *c.mutable_start_listening();
  if (from_sample) sl.set_from_sample(*from_sample);
  out_.Command(c);
  streaming_ = true;
  Enter(v1::STATE_LISTENING, reason, now);
}

void Dialog::StopListening(bool commit) {
  v1::DialogCommand c;
  c.mutable_stop_listening()->set_commit(commit);
  out_.Command(c);
  streaming_ = false;
}

void Dialog::Interrupt(v1::Interrupt::Reason reason, Clock::time_point now) {
  v1::DialogCommand c;
  c.mutable_interrupt()->set_reason(reason);
  c.mutable_interrupt()->set_turn_id(state_.turn_id());
  out_.Command(c);
  ++barge_ins_;
  RememberEnded(state_.turn_id(), now);
  state_.clear_turn_id();
  audio_pending_ = false;
  reply_done_ = false;
  drain_deadline_.reset();
}

void Dialog::SessionConnected(bool connected, const std::string& conversation_id, Clock::time_point now) {
  if (!conversation_id.empty()) state_.set_conversation_id(conversation_id);
  if (recovering_) {
    connected_ = connected;
    state_.set_session_connected(connected);
    return;
  }
  if (connected == connected_) {
    state_.set_session_connected(connected);
    return;
  }
  connected_ = connected;
  if (!connected) {
    // Whatever was running is gone with the connection; say so if the
    // session did not.
    if (!state_.turn_id().empty() && !reply_done_) {
      ++turns_abandoned_;
      out_.TurnAbandoned(state_.turn_id(), "the session lost its connection");
      Confirmed(state_.turn_id());
    }
    RememberEnded(state_.turn_id(), now);
    state_.clear_turn_id();
    audio_pending_ = reply_done_ = false;
    streaming_ = false;
    listen_deadline_.reset();
    drain_deadline_.reset();
    Enter(v1::STATE_OFFLINE, "session disconnected", now);
    return;
  }
  Enter(RestingState(), "session connected", now);
}

void Dialog::TrackTurn(const std::string& turn_id, Clock::time_point now) {
  if (turn_id.empty()) return;
  for (const auto& u : unconfirmed_)
    if (u.turn_id == turn_id) return;
  // A turn control already let go of (interrupted before it started) gets
  // its grace now.
  unconfirmed_.push_back({turn_id, Ended(turn_id) ? std::optional(now + kUnconfirmedGrace) : std::nullopt});
  while (unconfirmed_.size() > kMaxUnconfirmed) unconfirmed_.pop_front();
}

void Dialog::TurnStarted(const std::string& turn_id, Clock::time_point now) {
  TrackTurn(turn_id, now);
  if (Ended(turn_id)) return;
  state_.set_turn_id(turn_id);
  audio_pending_ = false;
  reply_done_ = false;
  listen_deadline_.reset();
  if (state_.state() != v1::STATE_SPEAKING) {
    Enter(v1::STATE_THINKING, "the agent is replying", now);
    reply_deadline_ = now + options_.reply_timeout;
  }
}

void Dialog::TurnFinished(Clock::time_point now, const std::string& reason) {
  RememberEnded(state_.turn_id(), now);
  adopt_playback_turn_ = false;
  playback_idle_reports_ = 0;
  state_.clear_turn_id();
  audio_pending_ = reply_done_ = false;
  drain_deadline_.reset();
  if (options_.mode != v1::MODE_CONTINUOUS && streaming_ && !ptt_down_) StopListening(false);
  if (ptt_down_) {
    Enter(v1::STATE_LISTENING, reason, now);
    return;
  }
  Enter(RestingState(), reason, now);
}

void Dialog::TurnEnded(const std::string& turn_id, v1::TurnEnded::Outcome outcome, Clock::time_point now) {
  if (outcome != v1::TurnEnded::REQUIRES_ACTION) Confirmed(turn_id);
  if (turn_id != state_.turn_id() || Ended(turn_id)) return;
  switch (outcome) {
    case v1::TurnEnded::REQUIRES_ACTION: return;  // waiting for a tool: still the same turn
    case v1::TurnEnded::COMPLETED:
      reply_done_ = true;
      if (audio_pending_) {
        drain_deadline_ = now + options_.drain_timeout;
        return;  // finish when playback has drained
      }
      return TurnFinished(now, "turn completed");
    case v1::TurnEnded::CANCELLED: return TurnFinished(now, "turn cancelled");
    default:
      if (options_.error_prompt) Prompt("error");
      return TurnFinished(now, "turn failed");
  }
}

void Dialog::AgentAudioEnded(const std::string& turn_id, uint64_t packets, Clock::time_point now) {
  if (turn_id != state_.turn_id() || packets == 0) return;
  if (state_.state() != v1::STATE_SPEAKING) audio_pending_ = true;  // audio on its way to the speaker
}

void Dialog::PlaybackSpeaking(bool speaking, Clock::time_point now) {
  playback_speaking_ = speaking;
  if (recovering_) {
    playback_heard_ = true;
    if (session_heard_) Settle(now);
    return;
  }
  // A lost DRAINED: the session has finished the turn and the playback has
  // said twice (a heartbeat apart) that nothing plays.
  if (speaking || state_.state() != v1::STATE_SPEAKING || !reply_done_) {
    playback_idle_reports_ = 0;
    return;
  }
  if (++playback_idle_reports_ >= 2) TurnFinished(now, "reply played (the playback is idle)");
}

void Dialog::PlaybackStarted(const std::string& turn_id, Clock::time_point now) {
  if (turn_id.empty() || turn_id != state_.turn_id() || Ended(turn_id)) return;
  audio_pending_ = true;
  if (state_.state() != v1::STATE_SPEAKING) speaking_since_ = now;
  Enter(v1::STATE_SPEAKING, "the agent is speaking", now);
}

void Dialog::PlaybackDrained(const std::string& turn_id, Clock::time_point now) {
  if (adopt_playback_turn_ && state_.turn_id().empty() && !Ended(turn_id)) state_.set_turn_id(turn_id);
  if (turn_id != state_.turn_id()) return;
  audio_pending_ = false;
  if (reply_done_) TurnFinished(now, "reply played");
}

std::optional<Clock::time_point> CapturedAt(int64_t origin_ns, int64_t mono_ns, Clock::time_point now) {
  const int64_t age_ns = mono_ns - origin_ns;
  if (origin_ns <= 0 || mono_ns <= 0 || age_ns < 0 || age_ns > 60'000'000'000) return std::nullopt;
  return now - std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(age_ns));
}

bool Dialog::BeforeTurnBoundary(std::optional<Clock::time_point> captured) {
  if (!captured || !busy_since_ || *captured >= *busy_since_) return false;
  ++late_speech_;
  return true;
}

void Dialog::ServerSpeech(bool started, Clock::time_point now, std::optional<Clock::time_point> captured) {
  if (!connected_) return;
  if (started) {
    if (Busy(state_.state()) && options_.barge_in_server_vad) {
      if (BeforeTurnBoundary(captured)) return;
      Interrupt(v1::Interrupt::SERVER_SPEECH, now);
      Enter(v1::STATE_LISTENING, "barge-in: the service heard speech", now);
    } else if (state_.state() == v1::STATE_LISTENING) {
      listen_deadline_.reset();  // someone speaks: no timeout
      Enter(v1::STATE_LISTENING, "user speaking", now);
    }
  } else if (state_.state() == v1::STATE_LISTENING && options_.mode != v1::MODE_PUSH_TO_TALK) {
    Enter(v1::STATE_THINKING, "user turn ended (service VAD)", now);
    reply_deadline_ = now + options_.reply_timeout;
  }
}

void Dialog::ClientVad(bool speech_started, Clock::time_point now, std::optional<Clock::time_point> captured) {
  if (!speech_started || !options_.barge_in_client_vad) return;
  if (state_.state() == v1::STATE_SPEAKING) {
    if (BeforeTurnBoundary(captured)) return;
    if (now - speaking_since_ < options_.client_vad_holdoff) {
      ++vad_held_off_;
      return;
    }
    Interrupt(v1::Interrupt::USER_SPEECH, now);
    if (options_.mode == v1::MODE_CONTINUOUS || streaming_) Enter(v1::STATE_LISTENING, "barge-in: user speech", now);
    else if (options_.mode == v1::MODE_WAKE_WORD) StartListening(now, "barge-in: user speech");
    else TurnFinished(now, "barge-in: user speech");  // push-to-talk listens only on the key
  } else if (state_.state() == v1::STATE_LISTENING) {
    listen_deadline_.reset();
  }
}

void Dialog::Wake(const v1::WakeEvent& wake, Clock::time_point now) {
  // The phrase is still in the held-back uplink: cut it out, so the service
  // never makes it a turn (or the start of the question).
  const bool cut = guard_on_;
  if (cut) {
    ++wake_cuts_;
    ReleaseGuard(wake.end_sample());
  }
  if (!connected_) return;
  if (Busy(state_.state())) {
    if (!options_.barge_in_wake_word) return;
    Interrupt(v1::Interrupt::WAKE_WORD, now);
  }
  if (options_.wake_prompt) Prompt("wake");
  if (options_.mode == v1::MODE_CONTINUOUS) {
    Enter(v1::STATE_LISTENING, "wake word", now);
    return;
  }
  if (options_.mode != v1::MODE_WAKE_WORD) return;
  if (cut && streaming_) {
    // Already streaming (speech over the reply began it): what follows the
    // phrase flows once the cut is made; a second StartListening would send
    // it twice.
    Enter(v1::STATE_LISTENING, "wake word: listening", now);
    listen_deadline_ = now + options_.listen_timeout;
    return;
  }
  // Stream from the end of the wake phrase, so a question spoken right after
  // it is not cut: the session finds that sample in the device's audio (its
  // own ring, or the device's vb-wakevad ring). Not the phrase itself: the
  // service would take "ok voice bus" + a pause for a turn of its own.
  StartListening(now, "wake word: listening", wake.end_sample());
  listen_deadline_ = now + options_.listen_timeout;
}

Verdict Dialog::PushToTalk(bool down, Clock::time_point now) {
  if (down == ptt_down_)
    return {v1::CommandAck::ACCEPTED, down ? "the key was already down" : "the key was already up"};
  ptt_down_ = down;
  if (!connected_) return {v1::CommandAck::REFUSED, "the session is not connected"};
  if (down) {
    if (Busy(state_.state())) Interrupt(v1::Interrupt::USER_REQUEST, now);
    StartListening(now, "push-to-talk: key down");
    listen_deadline_.reset();
  } else if (streaming_) {
    StopListening(true);
    Enter(v1::STATE_THINKING, "push-to-talk: key up", now);
    reply_deadline_ = now + options_.reply_timeout;
  }
  return {};
}

Verdict Dialog::SetMode(v1::DialogMode mode, Clock::time_point now) {
  if (mode == v1::MODE_UNSPECIFIED) return {v1::CommandAck::REFUSED, "no mode given"};
  if (mode == options_.mode) return {v1::CommandAck::ACCEPTED, "already in that mode"};
  if (Busy(state_.state())) Interrupt(v1::Interrupt::USER_REQUEST, now);
  if (streaming_) StopListening(false);
  options_.mode = mode;
  listen_deadline_.reset();
  ptt_down_ = false;
  Enter(RestingState(), "mode changed", now);
  return {};
}

void Dialog::UserInterrupt(Clock::time_point now) {
  if (!Busy(state_.state())) return;
  Interrupt(v1::Interrupt::USER_REQUEST, now);
  TurnFinished(now, "interrupted");
}

Verdict Dialog::InterruptObserved(const std::string& turn_id, Clock::time_point now) {
  // The playback, decoder and session act on the Interrupt itself (vb-control
  // hands the request on to them as an order).
  if (!Busy(state_.state())) return {v1::CommandAck::ACCEPTED, "nothing was under way"};
  if (!turn_id.empty() && turn_id != state_.turn_id()) return {v1::CommandAck::ACCEPTED, "not the turn under way"};
  ++barge_ins_;
  TurnFinished(now, "interrupted");
  return {};
}

void Dialog::SessionError(const std::string& message, bool fatal, Clock::time_point now) {
  if (options_.error_prompt) Prompt("error");
  if (fatal) Enter(state_.state(), "session error: " + message, now);
}

void Dialog::Abandon(const std::string& why, Clock::time_point now) {
  const std::string turn = state_.turn_id();
  ++turns_abandoned_;
  out_.TurnAbandoned(turn, why);
  Confirmed(turn);
  // What of it is still queued, or still comes (a hung session that
  // resumes), would be a reply nobody waits for: the playback and the
  // decoder drop the turn, a session that still runs it cancels it (one
  // that does not only mutes it). Not a barge-in: no reason of the user's.
  v1::DialogCommand c;
  c.mutable_interrupt()->set_turn_id(turn);
  out_.Command(c);
  if (options_.error_prompt) Prompt("error");
  TurnFinished(now, "turn failed: " + why);
}

void Dialog::CutReply(const std::string& actor, Clock::time_point now) {
  if (!Busy(state_.state())) return;
  const std::string turn = state_.turn_id();
  const std::string why = actor + " died mid-reply: the reply was cut";
  ++replies_cut_;
  out_.ReplyCut(turn, why);
  Interrupt(v1::Interrupt::USER_REQUEST, now);  // the rest would play with a hole in it
  TurnFinished(now, why);
}

void Dialog::ActorHealth(const std::string& actor, bool alive, Clock::time_point now) {
  if (alive) {
    // The tone sent while the playback was down was never heard.
    if (actor == "playback" && std::exchange(prompt_when_playback_back_, false) && options_.error_prompt)
      Prompt("error");
    return;
  }
  if (actor == "playback") prompt_when_playback_back_ = true;
  if (actor == "session") {
    if (recovering_) return Settle(now);  // nothing to wait for
    // Dead or hung: its turn will not end by itself (a hung one that
    // resumes must not go on with it either). Abandon plays the tone.
    if (!state_.turn_id().empty() && !reply_done_ && Busy(state_.state()))
      Abandon("the session stopped answering", now);
    else if (options_.error_prompt) Prompt("error");
    return SessionConnected(false, "", now);
  }
  if (options_.error_prompt) Prompt("error");
  // Decoder or playback gone mid-reply: the reply cannot be heard; end the
  // turn so the dialog does not wait for a drain that will never come.
  if (actor == "playback" || actor == "decoder") CutReply(actor, now);
}

void Dialog::ActorRestarted(const std::string& actor, Clock::time_point now) {
  if (actor == "session") {
    if (guard_on_) HoldUplink(now);  // the new process holds nothing yet
    // Its chat died with it (a restarted session ends it too, but maybe
    // not in time, or not at all if it is an older one).
    if (!state_.turn_id().empty() && !reply_done_ && Busy(state_.state())) Abandon("the session restarted", now);
    return;
  }
  if (actor == "playback" || actor == "decoder") {
    if (Busy(state_.state()) && options_.error_prompt) Prompt("error");  // the new playback plays it
    CutReply(actor, now);
  }
}

void Dialog::Tick(Clock::time_point now) {
  if (recover_deadline_ && now >= *recover_deadline_) Settle(now);
  if (guard_release_ && now >= *guard_release_) ReleaseGuard(0);
  if (guard_on_ && guard_renew_ && now >= *guard_renew_) HoldUplink(now);
  for (auto it = unconfirmed_.begin(); it != unconfirmed_.end();) {
    if (it->deadline && now >= *it->deadline) {
      ++turns_abandoned_;
      out_.TurnAbandoned(it->turn_id, "the session never ended this turn");
      it = unconfirmed_.erase(it);
    } else {
      ++it;
    }
  }
  if (listen_deadline_ && now >= *listen_deadline_) {
    listen_deadline_.reset();
    if (state_.state() == v1::STATE_LISTENING && options_.mode == v1::MODE_WAKE_WORD) {
      StopListening(false);
      Enter(v1::STATE_IDLE, "nobody spoke after the wake word", now);
    }
  }
  if (drain_deadline_ && now >= *drain_deadline_) {
    drain_deadline_.reset();
    TurnFinished(now, "playback never reported the end of the reply");
  }
  if (reply_deadline_ && now >= *reply_deadline_) {
    reply_deadline_.reset();
    if (state_.state() == v1::STATE_THINKING) {
      if (options_.error_prompt) Prompt("error");
      TurnFinished(now, "no reply from the agent");
    }
  }
}

std::optional<Clock::time_point> Dialog::NextDeadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& d :
       {listen_deadline_, drain_deadline_, reply_deadline_, recover_deadline_, guard_release_, guard_renew_})
    if (d && (!next || *d < *next)) next = d;
  for (const auto& u : unconfirmed_)
    if (u.deadline && (!next || *u.deadline < *next)) next = u.deadline;
  return next;
}

}  // namespace vb::control
