// The YAML a test pipeline needs to reach the local Coze simulator, written
// once for the e2e harness, vb-chaos and whoever comes next.
#pragma once

#include <string>

namespace vb::testing {

// A `session:` section for the simulator that `vb run` starts (its port
// comes in as ${VB_SIM_PORT}), with the token file and state folder in
// `dir`. Keys for the same section may follow it in the YAML.
inline std::string SimSessionSection(const std::string& dir, const std::string& mode) {
  return "session:\n  bot_id: \"7000000000000000001\"\n"
         "  api_base: http://127.0.0.1:${VB_SIM_PORT}\n"
         "  ws_base: ws://127.0.0.1:${VB_SIM_PORT}\n"
         "  token_file: " +
         dir + "/sim-token\n  state_dir: " + dir + "/state\n  mode: " + mode + "\n";
}

}  // namespace vb::testing
