// The `vb` subcommands, one function each (vb_main.cc dispatches).
#pragma once

#include <string>
#include <vector>

namespace vb::cli {

using Args = std::vector<std::string>;

int Run(const Args& args);          // vb run CONFIG
int Demo(const Args& args);         // vb demo [--config FILE] [--say TEXT] [--out DIR]
int Keygen(const Args& args);       // vb keygen FILE
int ShowStatus(const Args& args);      // vb status [--config FILE]
int SendCommand(const std::string& verb, const Args& args);  // ptt, say, mode, interrupt
int PrintDefaultConfig();

// Parses "--config FILE" out of args (default: config/demo.yaml next to the
// sources, or ./config.yaml); the remaining positional args stay in *rest.
std::string TakeOption(Args* args, const std::string& name, const std::string& def = "");

}  // namespace vb::cli
