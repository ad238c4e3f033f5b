// AvatarLibrary: directory listings and persona YAML parsing.
#include "actors/gateway/avatar_library.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace vb::gateway {
namespace fs = std::filesystem;
namespace {

bool IsAvatarFile(const std::string& name) {
  auto ext = fs::path(name).extension().string();
  return ext == ".yaml" || ext == ".yml";
}

// A plain file name: no directory part, not hidden.
bool IsPlainName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
         name.front() != '.' && name.find('\0') == std::string::npos;
}

Status ListFiles(const std::string& dir, std::vector<std::string>* out) {
  out->clear();
  if (dir.empty()) return Status::Ok();
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) return Status::Io("cannot list " + dir + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::Io("cannot list " + dir + ": " + ec.message());
    std::string name = it->path().filename().string();
    if (IsPlainName(name) && it->is_regular_file(ec)) out->push_back(name);
  }
  std::sort(out->begin(), out->end());
  return Status::Ok();
}

Status ReadString(const YAML::Node& n, const char* key, std::string* out) {
  auto v = n[key];
  if (!v.IsDefined() || v.IsNull()) return Status::Ok();
  if (!v.IsScalar()) return Status::Config(std::string("'") + key + "' must be a string");
  *out = v.as<std::string>();
  return Status::Ok();
}

Status ReadList(const YAML::Node& n, const char* key, std::vector<std::string>* out) {
  auto v = n[key];
  if (!v.IsDefined() || v.IsNull()) return Status::Ok();
  if (!v.IsSequence()) return Status::Config(std::string("'") + key + "' must be a list");
  for (const auto& e : v) {
    if (!e.IsScalar()) return Status::Config(std::string("'") + key + "' must list strings");
    out->push_back(e.as<std::string>());
  }
  return Status::Ok();
}

}  // namespace

Status AvatarLibrary::ListBackgrounds(std::vector<std::string>* out) const { return ListFiles(backgrounds_dir_, out); }

Status AvatarLibrary::ListAvatars(std::vector<AvatarEntry>* out) const {
  out->clear();
  std::vector<std::string> files;
  if (Status st = ListFiles(avatar_dir_, &files); !st.ok()) return st;
  for (const auto& f : files) {
    if (!IsAvatarFile(f)) continue;
    AvatarConfig c;
    if (Load(f, &c).ok()) out->push_back({f, c.name});
  }
  return Status::Ok();
}

Status AvatarLibrary::Load(const std::string& filename, AvatarConfig* out) const {
  if (avatar_dir_.empty()) return Status::Invalid("no avatar directory is configured");
  if (!IsPlainName(filename) || !IsAvatarFile(filename))
    return Status::Invalid("'" + filename + "' is not an avatar config file name");
  fs::path path = fs::path(avatar_dir_) / filename;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return Status::Invalid("no avatar config '" + filename + "'");
  *out = AvatarConfig{};
  out->filename = filename;
  out->conf_uid = fs::path(filename).stem().string();
  try {
    YAML::Node root = YAML::LoadFile(path.string());
    if (!root.IsMap()) return Status::Config(filename + ": not a mapping");
    Status st;
    if (!(st = ReadString(root, "name", &out->name)).ok()) return Status::Config(filename + ": " + st.message());
    if (out->name.empty()) return Status::Config(filename + ": 'name' is required");
    for (auto [key, dst] : {std::pair{"bot_id", &out->bot_id}, std::pair{"persona_prompt", &out->persona_prompt},
                            std::pair{"conf_uid", &out->conf_uid}})
      if (!(st = ReadString(root, key, dst)).ok()) return Status::Config(filename + ": " + st.message());
    if (auto voice = root["voice"]; voice.IsDefined() && !voice.IsNull()) {
      if (!voice.IsMap()) return Status::Config(filename + ": 'voice' must be a mapping");
      if (!(st = ReadString(voice, "voice_id", &out->voice_id)).ok())
        return Status::Config(filename + ": voice." + st.message());
      if (auto rate = voice["speech_rate"]; rate.IsDefined() && !rate.IsNull()) {
        int r = 0;
        if (!rate.IsScalar() || !YAML::convert<int>::decode(rate, r) || r < -50 || r > 100)
          return Status::Config(filename + ": voice.speech_rate must be an integer in [-50, 100]");
        out->speech_rate = r;
      }
    }
    if (auto model = root["model_info"]; model.IsDefined() && !model.IsNull()) {
      if (!model.IsMap()) return Status::Config(filename + ": 'model_info' must be a mapping");
      if (!(st = ReadString(model, "model_path", &out->model_path)).ok() ||
          !(st = ReadList(model, "expressions", &out->expressions)).ok() ||
          !(st = ReadList(model, "motions", &out->motions)).ok())
        return Status::Config(filename + ": model_info." + st.message());
    }
  } catch (const YAML::Exception& e) {
    return Status::Config(filename + ": " + e.what());
  }
  return Status::Ok();
}

}  // namespace vb::gateway
