// vb demo: the main job. Placeholder until the pipeline actors land: it runs
// the configured pipeline like `vb run` for a bounded time.
#include <iostream>

#include "tools/vb/commands.h"

namespace vb::cli {

int Demo(const Args& in) {
  Args args = in;
  std::string config = TakeOption(&args, "--config", "config/demo.yaml");
  return Run({config});
}

}  // namespace vb::cli
