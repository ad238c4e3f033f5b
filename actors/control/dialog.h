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
// Inputs are method calls with the current time; outputs go to DialogOutput.
// Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
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
};

struct DialogOptions {
  v1::DialogMode mode = v1::MODE_CONTINUOUS;
  bool barge_in_client_vad = true;   // only sensible with the AEC on
  bool barge_in_server_vad = true;
  bool barge_in_wake_word = true;
  // Client VAD is not trusted for this long after the agent starts speaking:
  // the echo canceller is still converging on the new echo and its residue
  // reads as speech (the service's VAD and the wake word still interrupt).
  std::chrono::milliseconds client_vad_holdoff{2500};
  std::chrono::milliseconds listen_timeout{8000};     // wake word: nobody speaks
  std::chrono::milliseconds drain_timeout{120000};    // agent audio never reported drained
  std::chrono::milliseconds reply_timeout{30000};     // committed turn, no reply
  bool wake_prompt = true;   // chime on wake
  bool error_prompt = true;  // tone on errors
};

class Dialog {
 public:
  Dialog(DialogOptions options, DialogOutput& out);

  // Session.
  void SessionConnected(bool connected, const std::string& conversation_id, Clock::time_point now);
  void TurnStarted(const std::string& turn_id, Clock::time_point now);
  void TurnEnded(const std::string& turn_id, v1::TurnEnded::Outcome outcome, Clock::time_point now);
  void AgentAudioEnded(const std::string& turn_id, uint64_t packets, Clock::time_point now);
  void ServerSpeech(bool started, Clock::time_point now);
  void SessionError(const std::string& message, bool fatal, Clock::time_point now);
  // Playback.
  void PlaybackStarted(const std::string& turn_id, Clock::time_point now);
  void PlaybackDrained(const std::string& turn_id, Clock::time_point now);
  // Voice.
  void ClientVad(bool speech_started, Clock::time_point now);
  void Wake(const v1::WakeEvent& wake, Clock::time_point now);
  // User commands.
  void PushToTalk(bool down, Clock::time_point now);
  void SetMode(v1::DialogMode mode, Clock::time_point now);
  void UserInterrupt(Clock::time_point now);
  // Someone else (gateway, `vb interrupt`) sent an Interrupt: playback,
  // decoder and session act on it; the dialog only follows.
  void InterruptObserved(const std::string& turn_id, Clock::time_point now);
  // A watched actor went down / came back.
  void ActorHealth(const std::string& actor, bool alive, Clock::time_point now);
  // Timers: call at NextDeadline().
  void Tick(Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const;

  const v1::DialogState& state() const { return state_; }
  v1::DialogStateKind kind() const { return state_.state(); }
  uint64_t barge_ins() const { return barge_ins_; }

 private:
  void Enter(v1::DialogStateKind s, const std::string& reason, Clock::time_point now);
  void Interrupt(v1::Interrupt::Reason reason, Clock::time_point now);
  // preroll_end_sample: audio.clean index just after the preroll (0: unknown).
  void StartListening(const std::string& preroll, Clock::time_point now, const std::string& reason,
                      uint64_t preroll_end_sample = 0);
  void StopListening(bool commit);
  void TurnFinished(Clock::time_point now, const std::string& reason);
  v1::DialogStateKind RestingState() const;
  void Prompt(const std::string& name);

  DialogOptions options_;
  DialogOutput& out_;
  v1::DialogState state_;
  bool connected_ = false;
  bool audio_pending_ = false;   // agent audio of the current turn not yet drained
  bool reply_done_ = false;      // TurnEnded seen for the current turn
  bool ptt_down_ = false;
  bool streaming_ = false;       // StartListening sent without StopListening
  std::set<std::string> ended_turns_;  // late events of these are ignored
  std::optional<Clock::time_point> listen_deadline_, drain_deadline_, reply_deadline_;
  uint64_t barge_ins_ = 0;
  Clock::time_point speaking_since_{};
  uint64_t vad_held_off_ = 0;

 public:
  uint64_t vad_held_off() const { return vad_held_off_; }
};

}  // namespace vb::control
