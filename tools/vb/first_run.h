// First run: what `vb run` / `vb demo` settle before anything starts, so a
// new user's first command works from any folder with nothing prepared, and
// a real config with something missing stops at once with one summary.
//
//  - ResolveConfig: a relative config path not found from the current folder
//    is looked up in the installed configs and the source tree.
//  - RuntimeDir: VB_RUN_DIR, else $XDG_RUNTIME_DIR/voicebus, else
//    /tmp/voicebus-UID, created 0700 and refused if someone else could
//    write into it (bus sockets and the simulator's token live there).
//  - PrepareSimulatorFiles: the simulator's throwaway token, the spoken
//    question of a WAV microphone.
//  - Preflight: every missing thing of the config (Coze token, bot id, ALSA
//    sound cards), each with what to do, in one list.
#pragma once

#include <string>
#include <vector>

#include "bus/status.h"
#include "tools/vb/launcher.h"

namespace vb::cli {

// Absolute path of the config file `path` (see above); an error naming every
// place looked at if there is none.
Status ResolveConfig(const std::string& path, std::string* absolute);

// Sets VB_CONFIG_DIR to the folder of `config_path` (absolute), for paths
// written relative to the config file (${VB_CONFIG_DIR}/…).
void ExportConfigDir(const std::string& config_path);
// VB_PROTO_PY = BIN/../sdk/python (the build's vb.v1 Python modules) unless set: for Python actors.
void ExportSdkEnv();

// The runtime folder (see above), created; VB_RUN_DIR is set to it.
Status RuntimeDir(std::string* dir);

// Writes a fresh random token for the local simulator to `path` (0600).
Status WriteSimulatorToken(const std::string& path);

// Synthesises `question` with espeak-ng into `wav` after 1 s of silence
// (the speaker waits as a person would, while the actors join the bus).
Status SpeakQuestion(const std::string& question, const std::string& wav);

// For `vb run`: what the config needs made on the spot. With
// launcher.simulator, a missing ${VB_RUN_DIR}/sim-token; a WAV microphone
// (capture source: wav) inside the runtime folder that does not exist yet is
// spoken. `made` gets one line per file made.
Status PrepareSimulatorFiles(const std::string& config_path, const launcher::LauncherConfig& lc,
                             const std::string& run_dir, std::vector<std::string>* made);

// One line per missing thing, each saying what to do; empty when nothing is
// missing. Never contains a secret.
std::vector<std::string> Preflight(const std::string& config_path, const launcher::LauncherConfig& lc);

// Where the dashboard of a gateway actor of the config is served, and the
// file with its token ("" if the config runs no gateway).
struct Dashboard {
  std::string url, token_file;
};
Dashboard FindDashboard(const std::string& config_path, const launcher::LauncherConfig& lc);

}  // namespace vb::cli
