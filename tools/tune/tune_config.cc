// Tuning config through the actors' declarations (see tune_config.h).
#include "tools/tune/tune_config.h"

#include <yaml-cpp/yaml.h>

#include "actors/afe/afe_actor.h"
#include "actors/wakevad/wakevad_actor.h"
#include "bus/actor_main.h"
#include "bus/config.h"

namespace vb::tune {
namespace {

// Puts `value` (YAML) at the dotted `path` of root.
Status ApplySet(YAML::Node root, const std::string& set) {
  const size_t eq = set.find('=');
  if (eq == std::string::npos || eq == 0) return Status::Config("--set " + set + ": expected section.key=value");
  const std::string path = set.substr(0, eq), text = set.substr(eq + 1);
  std::vector<std::string> keys;
  for (size_t start = 0;;) {
    size_t dot = path.find('.', start);
    keys.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (keys.size() < 2 || (keys[0] != "afe" && keys[0] != "wakevad"))
    return Status::Config("--set " + path + ": only afe.KEY and wakevad.KEY are tuned offline");
  for (const auto& k : keys)
    if (k.empty()) return Status::Config("--set " + path + ": empty key name");
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::Config("--set " + path + ": value '" + text + "' is not YAML: " + e.what());
  }
  // yaml-cpp's operator[] on a Node rebinds on assignment: walk with copies
  // of the child handles, creating mappings as needed.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node child = chain.back()[keys[i]];
    if (child.IsDefined() && !child.IsNull() && !child.IsMap())
      return Status::Config("--set " + path + ": " + keys[i] + " is not a section");
    if (!child.IsDefined() || child.IsNull()) chain.back()[keys[i]] = YAML::Node(YAML::NodeType::Map);
    chain.push_back(chain.back()[keys[i]]);
  }
  chain.back()[keys.back()] = value;
  return Status::Ok();
}

}  // namespace

Status LoadTuneConfig(const std::string& config_path, const std::vector<std::string>& sets, TuneConfig* out) {
  config::File file;
  if (!config_path.empty()) {
    if (Status st = file.Load(config_path); !st.ok()) return Status::Config(st.message());
  }
  if (!sets.empty() || config_path.empty()) {
    YAML::Node root(YAML::NodeType::Map);
    if (!config_path.empty()) {
      try {
        root = YAML::LoadFile(config_path);
      } catch (const YAML::Exception& e) {
        return Status::Config(config_path + ": " + e.what());
      }
      if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
    }
    for (const auto& s : sets)
      if (Status st = ApplySet(root, s); !st.ok()) return st;
    YAML::Emitter emit;
    emit << root;
    const std::string name = config_path.empty() ? "(defaults)" : config_path;
    if (Status st = file.LoadString(std::string(emit.c_str()) + "\n", sets.empty() ? name : name + " with --set");
        !st.ok())
      return Status::Config(st.message());
  }
  auto report = file.NewReport();
  afe::AfeActor afe_actor;
  wakevad::WakeVadActor wakevad_actor;
  {
    auto s = file.Get("afe", report);
    bus::CommonActorConfig common;  // device: declared by every actor
    common.Declare(s);
    afe_actor.DeclareConfig(s);
    s.Finish();
  }
  {
    auto s = file.Get("wakevad", report);
    bus::CommonActorConfig common;
    common.Declare(s);
    wakevad_actor.DeclareConfig(s);
    s.Finish();
  }
  if (Status st = config::ToStatus(*report); !st.ok()) return st;
  out->afe = afe_actor.config();
  out->ref_wait_ms = afe_actor.ref_wait_ms();
  out->wakevad = wakevad_actor.options();
  return Status::Ok();
}

}  // namespace vb::tune
