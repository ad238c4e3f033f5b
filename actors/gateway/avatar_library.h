// AvatarLibrary: the files a front end may choose from — background images in
// one directory and avatar configs (persona YAML files) in another.
//
// An avatar config (README has an example):
//   name: display name (required)
//   bot_id, persona_prompt: the agent to talk to and its instructions
//   voice: {voice_id, speech_rate}
//   model_info: {model_path, expressions: [], motions: []}  (front-end model)
//   conf_uid: stable id (default: file name without extension)
// Only plain file names listed in the directory are accepted: no paths.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bus/status.h"

namespace vb::gateway {

struct AvatarEntry {
  std::string filename;
  std::string name;
};

struct AvatarConfig {
  std::string filename;
  std::string name;
  std::string conf_uid;
  std::string bot_id;
  std::string voice_id;
  std::optional<int> speech_rate;
  std::string persona_prompt;
  std::string model_path;
  std::vector<std::string> expressions, motions;
};

class AvatarLibrary {
 public:
  AvatarLibrary(std::string avatar_dir, std::string backgrounds_dir)
      : avatar_dir_(std::move(avatar_dir)), backgrounds_dir_(std::move(backgrounds_dir)) {}

  // Regular files of the backgrounds directory, sorted; none if unset.
  Status ListBackgrounds(std::vector<std::string>* out) const;
  // *.yaml / *.yml of the avatar directory with their display names, sorted;
  // files that do not parse are skipped.
  Status ListAvatars(std::vector<AvatarEntry>* out) const;
  // Loads one config. Invalid: not a listed file name; Config: it does not
  // parse or a field has the wrong type.
  Status Load(const std::string& filename, AvatarConfig* out) const;

 private:
  std::string avatar_dir_, backgrounds_dir_;
};

}  // namespace vb::gateway
