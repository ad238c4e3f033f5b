// ControlActor: vb-control's bus adapter. Feeds the Dialog state machine
// from session.event, playback.event, voice.vad, voice.wake, dialog.request
// and actor heartbeats (a watched actor silent for health_timeout_ms is
// reported down, and back when it heartbeats again); publishes dialog.state
// (on change and with every heartbeat, for late joiners) and the commands
// the dialog decides on (dialog.order). A push-to-talk key can come from an evdev device.
//
// Issue 12 duties: answers push_to_talk, set_mode and interrupt that carry a
// command_id on dialog.ack; publishes on session.event, on the session's
// behalf, the TurnEnded FAILED of a turn the session can no longer end and
// a SessionError when a reply was cut (README: "Every turn ends"); notices a
// watched actor's restart by its heartbeat's pid; and, restarted itself,
// re-derives the dialog from the session's status and the playback's
// heartbeat (Dialog::Start); and tells the person when the device is deaf:
// audio.clean frames feed a HearingWatch (hearing.h), whose verdict rides
// on dialog.state (deaf, deaf_reason) and whose repeat cue is a PlayPrompt.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "actors/control/arbiter.h"
#include "actors/control/dialog.h"
#include "actors/control/hearing.h"
#include "actors/control/key_source.h"
#include "bus/actor.h"
#include "bus/dialog_request.h"
#include "bus/peer_health.h"

namespace vb::control {

class ControlActor : public bus::Actor, public DialogOutput, public HearingOutput {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

  // DialogOutput.
  void StateChanged(const v1::DialogState& state) override;
  void Command(const v1::DialogCommand& cmd) override;
  void TurnAbandoned(const std::string& turn_id, const std::string& why) override;
  void ReplyCut(const std::string& turn_id, const std::string& why) override;
  void TransitionRefused(v1::DialogStateKind from, v1::DialogStateKind to, const std::string& reason) override;

  // HearingOutput.
  void HearingChanged(bool hearing, const std::string& reason) override;
  void RepeatCue(std::chrono::milliseconds deaf_for) override;

 private:
  void Reschedule();
  void RescheduleHearing();
  // dialog.state: the dialog's state with the hearing verdict.
  void PublishState(const v1::DialogState& state);
  void CheckHealth();
  // One timer for the health checks, at the first moment a watched actor
  // (or the wake spotter) could turn silent: heartbeats move that moment on,
  // and the timer is not re-armed for each; when it fires early it is set
  // again (instead of a check every 250 ms: 4 wake-ups a second).
  void RescheduleHealth();
  void OnKey();
  void ReopenKey();
  void Ack(const std::string& command_id, const Verdict& verdict);
  // Issue 16: reports of several devices go through the arbiter; the chosen
  // one's becomes the dialog's input and its device the one served.
  bool Arbitrates() const { return arbiter_ && arbiter_->options().devices > 1; }
  bool Known(const std::string& device) const;
  void Offer(Report r);
  void Apply(const Decision& d);
  void RescheduleArbiter();
  // The device whose audio.clean the session streams and whose speaker plays.
  const std::string& Served() const;

  bus::Context* ctx_ = nullptr;
  std::string mode_;
  DialogOptions options_;
  int holdoff_ms_ = 2500;
  int wake_guard_ms_ = 2500;
  std::optional<Clock::time_point> wakevad_seen_;  // its last heartbeat (wake spotting)
  int listen_timeout_ms_ = 8000, reply_timeout_ms_ = 30000, health_timeout_ms_ = 3000, busy_timeout_ms_ = 2200;
  std::vector<std::string> watch_;
  std::string evdev_path_, ptt_key_;
  std::unique_ptr<Dialog> dialog_;
  HearingOptions hearing_options_;
  int deaf_after_ms_ = 400, start_grace_ms_ = 5000, resume_after_ms_ = 100, cue_after_ms_ = 1000,
      cue_min_gap_ms_ = 5000;
  std::string cue_;
  std::unique_ptr<HearingWatch> hearing_;
  // One one-shot timer kept at the earliest deadline asked of it (the
  // hearing rule's and the health checks'): a later deadline keeps the
  // armed timer, an earlier one re-arms it, none disarms it. It fires just
  // past the deadline (silent/deaf means longer than the allowance).
  class EarliestTimer {
   public:
    void Set(bus::Loop& loop, std::optional<Clock::time_point> deadline, std::function<void()> fire);

   private:
    bus::Loop::TimerId id_ = 0;
    Clock::time_point at_{};
  };
  EarliestTimer hearing_timer_, health_timer_;
  std::unique_ptr<EvdevKeySource> key_;
  bus::Loop::GroupId key_group_ = 0;
  bus::Publisher<v1::DialogState> state_pub_;
  bus::Publisher<v1::DialogCommand> command_pub_;
  bus::Publisher<v1::CommandAck> ack_pub_;
  bus::Publisher<v1::SessionEvent> session_pub_;  // only for turns the session cannot end
  bus::Loop::TimerId dialog_timer_ = 0;
  int arbitration_window_ms_ = 200;
  double arbitration_tie_db_ = 1.0;
  std::unique_ptr<Arbiter> arbiter_;
  bus::Loop::TimerId arbiter_timer_ = 0;
  std::string served_;                   // "" = our own device
  bool switched_ = false;                // served_ changed since the last StartListening
  std::vector<std::string> stood_down_;  // of the last decision
  std::string arbitration_why_;
  std::map<std::string, bus::Publisher<v1::DialogCommand>> device_commands_;  // PlayPrompt, Flush, Interrupt
  struct Health {
    PeerHealth peer;  // the shared rule: down after its missed beats, restart by pid/uptime
    bool alive = false;
  };
  // Keyed by the configured watch list only: heartbeats of other names
  // (any number a publisher invents) are not kept.
  std::map<std::string, Health> health_;
};

}  // namespace vb::control
