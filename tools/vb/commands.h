// The `vb` subcommands, one function each (vb_main.cc dispatches). Each
// answers --help with its topic of help.h and refuses unknown options.
#pragma once

#include <string>
#include <vector>

#include "bus/status.h"

namespace vb::cli {

using Args = std::vector<std::string>;

int Run(const Args& args);                                   // vb run [CONFIG] [--quiet]
int Demo(const Args& args);                                  // vb demo [--config FILE] [--say TEXT] [--out DIR]
int Keygen(const Args& args);                                // vb keygen FILE
int ShowStatus(const Args& args);                            // vb status [--config FILE]
int SendCommand(const std::string& verb, const Args& args);  // ptt, say, speak, mode, interrupt, new-conversation
int PrintDefaultConfig(const std::string& config = "");      // + sections of `command:` actors in config
int PrintCommandSections(const std::string& config);         // vb --print-default-config --config F
int Contract(const Args& args);
// The config of the one `vb run` going in the runtime folder; "" when none
// is (the built-in default bus is used). Several: an error naming them.
Status RunningConfig(std::string* config);  // vb contract [KIND] [--json] [--config FILE] | test KIND -- COMMAND…

}  // namespace vb::cli
