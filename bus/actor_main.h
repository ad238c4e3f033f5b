// ActorMain: the body of the one generated main() (cmake/actor_main.cc.in).
//
//   vb-<kind> --config FILE [--name NAME] [--log-level debug|info|warn|error]
//   vb-<kind> --print-default-config
//
// Loads and validates the config (exit 78 on any config error, naming file,
// line and key), connects to the bus, runs the actor until SIGTERM/SIGINT,
// and stops cleanly.
#pragma once

#include <functional>
#include <memory>

#include "bus/actor.h"

namespace vb::bus {

using ActorFactory = std::function<std::unique_ptr<Actor>()>;

int ActorMain(int argc, char** argv, const char* kind, ActorFactory factory);

// Declares the keys every actor section has (device) before the actor's own.
struct CommonActorConfig {
  std::string device;
  std::vector<std::string> command;  // the launcher's; unused by the actor
  void Declare(config::Section& s);
};

// Declares and validates the `devices` section; names[0] is the default device.
void DeclareDevices(config::Section& s, std::vector<std::string>* names);

}  // namespace vb::bus
