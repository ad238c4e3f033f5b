// The config of an offline tuning run, read through the actors' own
// declarations (AfeActor::DeclareConfig, WakeVadActor::DeclareConfig): the
// same keys, defaults, ranges and errors as a config file given to vb-afe
// and vb-wakevad, so `--set afe.backend=webrtc` is checked exactly as that
// line in the `afe:` section would be.
#pragma once

#include <string>
#include <vector>

#include "bus/status.h"
#include "tools/tune/tune.h"

namespace vb::tune {

// Reads the `afe:` and `wakevad:` sections of `config_path` (empty: the
// shipped defaults) with `sets` applied on top, each "section.key=value"
// (nested keys with more dots: wakevad.vad.threshold=0.6; the value is YAML:
// a number, true/false, a string, [a, b]). A config Status names the file,
// key and problem.
Status LoadTuneConfig(const std::string& config_path, const std::vector<std::string>& sets, TuneConfig* out);

}  // namespace vb::tune
