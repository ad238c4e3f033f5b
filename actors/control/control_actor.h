// ControlActor: vb-control's bus adapter. Feeds the Dialog state machine
// from session.event, playback.event, voice.vad, voice.wake, dialog.command
// and actor heartbeats (a watched actor silent for health_timeout_ms is
// reported down, and back when it heartbeats again); publishes dialog.state
// (on change and with every heartbeat, for late joiners) and the commands
// the dialog decides on. A push-to-talk key can come from an evdev device.
#pragma once

#include <map>
#include <memory>

#include "actors/control/dialog.h"
#include "actors/control/key_source.h"
#include "bus/actor.h"

namespace vb::control {

class ControlActor : public bus::Actor, public DialogOutput {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

  // DialogOutput.
  void StateChanged(const v1::DialogState& state) override;
  void Command(const v1::DialogCommand& cmd) override;

 private:
  void Reschedule();
  void CheckHealth();
  void OnKey();
  void ReopenKey();

  bus::Context* ctx_ = nullptr;
  std::string mode_;
  DialogOptions options_;
  int holdoff_ms_ = 2500;
  int listen_timeout_ms_ = 8000, reply_timeout_ms_ = 30000, health_timeout_ms_ = 3000;
  std::vector<std::string> watch_;
  std::string evdev_path_, ptt_key_;
  std::unique_ptr<Dialog> dialog_;
  std::unique_ptr<EvdevKeySource> key_;
  bus::Loop::GroupId key_group_ = 0;
  bus::Publisher<v1::DialogState> state_pub_;
  bus::Publisher<v1::DialogCommand> command_pub_;
  bus::Loop::TimerId dialog_timer_ = 0;
  struct Health {
    Clock::time_point last;
    bool alive = false;
    int pid = 0;
    uint64_t restarts = 0;
  };
  std::map<std::string, Health> health_;
};

}  // namespace vb::control
