// Dialog: the state machine of the conversation, apart from the bus.
//
// States: OFFLINE (session not connected) → IDLE (not listening) ⇄
// LISTENING (user audio goes to the agent) → THINKING (user turn committed)
// → SPEAKING (agent audio at the speaker) → back to LISTENING (continuous)
// or IDLE (wake word, push-to-talk).
//
// Modes, from the ESP32 example:
// - continuous: the service's VAD finds turns; always listening when online.
// - wake word: a wake event opens listening (with the audio around it) until
//   the turn ends or `listen_timeout` passes with nobody speaking.
// - push-to-talk: key down = interrupt + listen; key up = commit the turn.
// Barge-in while the agent thinks or speaks: the service's speech_started,
// client VAD (only with the echo canceller on), or the wake word → Interrupt
// (playback flushes, decoder and session drop the turn).
//
// Every turn ends (issue 12): when the session restarts, goes silent or
// stops naming the turn under way, the dialog gives the turn up itself
// (TurnAbandoned: vb-control publishes the TurnEnded FAILED the session
// could not); when the playback or the decoder dies mid-reply, the reply is
// interrupted and the user told (ReplyCut, error tone — replayed once the
// playback is back if it was down).
//
// A restarted vb-control (Start() called) does not assume LISTENING: it
// waits (≤ recover_timeout) to hear the session's status (its turn_id) and
// the playback's heartbeat (speaking or not) and resumes THINKING or
// SPEAKING when a reply is under way.
//
// Requests from others (push-to-talk, mode, interrupt; dialog.request)
// return a verdict for dialog.ack.
//
// Every change of state goes through one transition table (Allowed): one it
// does not list is refused — the state stays, DialogOutput::TransitionRefused
// says so — and never crashes.
//
// Inputs are method calls with the current time; outputs go to DialogOutput.
// Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "vb/v1/dialog.pb.h"
#include "vb/v1/voice.pb.h"

namespace vb::control {

using Clock = std::chrono::steady_clock;

class DialogOutput {
 public:
  virtual ~DialogOutput() = default;
  virtual void StateChanged(const v1::DialogState& state) = 0;
  virtual void Command(const v1::DialogCommand& cmd) = 0;
  // The session cannot end turn_id any more (gone, restarted, lost it): the
  // others must hear it ended, FAILED, with `why`.
  virtual void TurnAbandoned(const std::string& turn_id, const std::string& why) {}
  // The spoken reply of turn_id was cut (playback or decoder died): say so
  // where people look (the gateway's clients, the dashboard).
  virtual void ReplyCut(const std::string& turn_id, const std::string& why) {}
  // The dialog was asked to go from `from` to `to`, which its transition
  // table does not allow (a bug, or an event no flow expects): it stayed in
  // `from`. `reason` is what the refused transition was for.
  virtual void TransitionRefused(v1::DialogStateKind from, v1::DialogStateKind to, const std::string& reason) {}
};

// The answer to a command someone sent (dialog.ack).
struct Verdict {
  v1::CommandAck::Result result = v1::CommandAck::ACCEPTED;
  std::string reason;
};

struct DialogOptions {
  v1::DialogMode mode = v1::MODE_CONTINUOUS;
  bool barge_in_client_vad = true;  // only sensible with the AEC on
  bool barge_in_server_vad = true;
  bool barge_in_wake_word = true;
  // Client VAD is not trusted for this long after the agent starts speaking:
  // the echo canceller is still converging on the new echo and its residue
  // reads as speech (the service's VAD and the wake word still interrupt).
  std::chrono::milliseconds client_vad_holdoff{2500};
  std::chrono::milliseconds listen_timeout{8000};   // wake word: nobody speaks
  std::chrono::milliseconds drain_timeout{120000};  // agent audio never reported drained
  std::chrono::milliseconds reply_timeout{30000};   // committed turn, no reply
  // With a wake word spotted (WakeSpotting), while the agent thinks or
  // speaks the audio to the service runs this far behind (UplinkGuard), so a
  // wake phrase said over the reply is cut out before the service hears it;
  // other speech over the agent reaches the service this much later. 0 = off.
  std::chrono::milliseconds wake_guard{2500};  // as control.barge_in.wake_guard_ms
  bool wake_prompt = true;                     // chime on wake
  bool error_prompt = true;                    // tone on errors
  // A restarted control waits this long at most for the session's status
  // and the playback's heartbeat before choosing a state.
  std::chrono::milliseconds recover_timeout{2500};
};

// When the audio behind an event was captured, on this host's Clock: the
// event's age when it was published (mono_ns − origin_ns, both stamped on
// the publisher's host) taken back from `now`. Not origin_ns itself: a
// satellite's CLOCK_MONOTONIC is not the hub's, and read on the hub's clock
// its stamps would make every barge-in look early or late. nullopt without
// both stamps, or with an age outside 0…60 s (stamps from two hosts).
std::optional<Clock::time_point> CapturedAt(int64_t origin_ns, int64_t mono_ns, Clock::time_point now);

class Dialog {
 public:
  Dialog(DialogOptions options, DialogOutput& out);

  // A fresh vb-control: re-derive the state from what the others report
  // (see above) instead of starting at rest. Without it (unit tests of the
  // plain flow) the first SessionConnected decides at once.
  void Start(Clock::time_point now);
  bool recovering() const { return recovering_; }

  // Session.
  // SessionStatus (heartbeat rate): connection, conversation, turn under way.
  void SessionStatus(const v1::SessionStatus& status, Clock::time_point now);
  void SessionConnected(bool connected, const std::string& conversation_id, Clock::time_point now);
  void TurnStarted(const std::string& turn_id, Clock::time_point now);
  void TurnEnded(const std::string& turn_id, v1::TurnEnded::Outcome outcome, Clock::time_point now);
  void AgentAudioEnded(const std::string& turn_id, uint64_t packets, Clock::time_point now);
  // `captured`: when the audio the speech was found in was captured (the
  // event's origin_ns), if known. Speech captured before the reply under
  // way began (the turn boundary: the dialog became busy) is no barge-in:
  // it is old audio delivered late (a capture that was deaf for seconds and
  // then caught up), a question asked before this reply existed. Counted
  // (late_speech), the reply goes on.
  void ServerSpeech(bool started, Clock::time_point now, std::optional<Clock::time_point> captured = {});
  void SessionError(const std::string& message, bool fatal, Clock::time_point now);
  // Playback.
  // From the playback's heartbeat: is a reply being heard right now?
  void PlaybackSpeaking(bool speaking, Clock::time_point now);
  void PlaybackStarted(const std::string& turn_id, Clock::time_point now);
  void PlaybackDrained(const std::string& turn_id, Clock::time_point now);
  // Voice.
  void ClientVad(bool speech_started, Clock::time_point now, std::optional<Clock::time_point> captured = {});
  void Wake(const v1::WakeEvent& wake, Clock::time_point now);
  // Whether a wake word is being spotted (vb-wakevad's heartbeat says so).
  void WakeSpotting(bool on, Clock::time_point now);
  // User commands.
  Verdict PushToTalk(bool down, Clock::time_point now);
  Verdict SetMode(v1::DialogMode mode, Clock::time_point now);
  void UserInterrupt(Clock::time_point now);
  // Someone else (gateway, `vb interrupt`) asked for an Interrupt
  // (dialog.request): vb-control hands it on to the playback, decoder and
  // session as an order; the dialog only follows.
  Verdict InterruptObserved(const std::string& turn_id, Clock::time_point now);
  // A watched actor went down / came back.
  void ActorHealth(const std::string& actor, bool alive, Clock::time_point now);
  // A watched actor heartbeats with a new pid: it died and is back; what it
  // held (the session's turn, the playback's queue) is gone.
  void ActorRestarted(const std::string& actor, Clock::time_point now);
  // Timers: call at NextDeadline().
  void Tick(Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const;

  // The transition table: may the dialog go from `from` to `to`? Staying
  // (a new reason) is always allowed; see dialog.cc for the table.
  static bool Allowed(v1::DialogStateKind from, v1::DialogStateKind to);
  uint64_t transitions_refused() const { return transitions_refused_; }

  const v1::DialogState& state() const { return state_; }
  v1::DialogStateKind kind() const { return state_.state(); }
  uint64_t barge_ins() const { return barge_ins_; }
  // Speech events not taken for a barge-in: captured before the turn boundary.
  uint64_t late_speech() const { return late_speech_; }

 private:
  void Enter(v1::DialogStateKind s, const std::string& reason, Clock::time_point now);
  void Interrupt(v1::Interrupt::Reason reason, Clock::time_point now);
  // from_sample: where the question starts in the device's audio.clean
  // (the session finds it there by position); none: live audio from now.
  void StartListening(Clock::time_point now, const std::string& reason, std::optional<uint64_t> from_sample = {});
  void StopListening(bool commit);
  // The uplink guard follows the state: on while busy, released wake_guard
  // after (a phrase said as the reply ends is still cut), or at a wake.
  void UpdateGuard(Clock::time_point now);
  void HoldUplink(Clock::time_point now);
  void ReleaseGuard(uint64_t cut_before_sample);
  void TurnFinished(Clock::time_point now, const std::string& reason);
  v1::DialogStateKind RestingState() const;
  void Prompt(const std::string& name);
  // The session will never end the open turn: end it for everyone.
  void Abandon(const std::string& why, Clock::time_point now);
  // The reply cannot be heard any more (playback/decoder died).
  void CutReply(const std::string& actor, Clock::time_point now);
  // Recovery: choose the state from what was heard (or not) of the others.
  void Settle(Clock::time_point now);

  DialogOptions options_;
  DialogOutput& out_;
  v1::DialogState state_;
  bool connected_ = false;
  bool audio_pending_ = false;  // agent audio of the current turn not yet drained
  bool reply_done_ = false;     // TurnEnded seen for the current turn
  bool ptt_down_ = false;
  bool streaming_ = false;  // StartListening sent without StopListening
  // Late events of these turns are ignored. Bounded (the last kRememberEnded):
  // turn ids come from the bus, and a publisher may invent any number.
  static constexpr size_t kRememberEnded = 256;
  std::deque<std::string> ended_turns_;
  bool Ended(const std::string& turn_id) const;
  void RememberEnded(const std::string& turn_id, Clock::time_point now);
  // Turns the session started and has not ended (TurnEnded) yet. Once
  // control lets go of one (finished, interrupted, session gone), whoever
  // runs it has kUnconfirmedGrace to end it; a session that died before it
  // could (killed between a cancel and its confirmation) or that forgot it
  // never will, so control ends it on its behalf: no turn stays open for
  // gateway clients and the dashboard. Bounded like ended_turns_.
  struct Unconfirmed {
    std::string turn_id;
    std::optional<Clock::time_point> deadline;  // unset while control runs it
  };
  static constexpr auto kUnconfirmedGrace = std::chrono::seconds(3);
  static constexpr size_t kMaxUnconfirmed = 64;
  std::deque<Unconfirmed> unconfirmed_;
  void Confirmed(const std::string& turn_id);
  // Track a turn the session runs (TurnStarted, or resumed after a restart).
  void TrackTurn(const std::string& turn_id, Clock::time_point now);
  std::optional<Clock::time_point> listen_deadline_, drain_deadline_, reply_deadline_;
  bool wake_spotting_ = false;
  bool guard_on_ = false;
  std::optional<Clock::time_point> guard_release_, guard_renew_;
  uint64_t wake_cuts_ = 0;
  uint64_t barge_ins_ = 0;
  uint64_t late_speech_ = 0;
  // When the dialog last became busy (THINKING or SPEAKING from a resting
  // state): the turn boundary of the reply under way.
  std::optional<Clock::time_point> busy_since_;
  // Speech captured before busy_since_ (counted in late_speech_).
  bool BeforeTurnBoundary(std::optional<Clock::time_point> captured);
  Clock::time_point speaking_since_{};
  uint64_t vad_held_off_ = 0;
  // Recovery after a restart of vb-control.
  bool recovering_ = false;
  std::optional<Clock::time_point> recover_deadline_;
  bool session_heard_ = false, playback_heard_ = false;
  std::string session_turn_;          // SessionStatus.turn_id last heard
  bool session_names_turns_ = false;  // the session fills SessionStatus.turn_id
  bool playback_speaking_ = false;
  int playback_idle_reports_ = 0;     // consecutive "not speaking" while SPEAKING
  bool adopt_playback_turn_ = false;  // recovered SPEAKING without knowing the turn
  bool prompt_when_playback_back_ = false;

 public:
  uint64_t vad_held_off() const { return vad_held_off_; }
  uint64_t wake_cuts() const { return wake_cuts_; }
  bool guard_on() const { return guard_on_; }
  // The session lets a hold not renewed this long go (a control that died
  // while holding must not leave the uplink behind for good).
  static constexpr auto kGuardRenew = std::chrono::seconds(2);
  uint64_t turns_abandoned() const { return turns_abandoned_; }
  uint64_t replies_cut() const { return replies_cut_; }

 private:
  uint64_t turns_abandoned_ = 0, replies_cut_ = 0;
  uint64_t transitions_refused_ = 0;
  friend struct DialogTransitionProbe;  // tests: ask for any transition
};

}  // namespace vb::control
