// The devices section and per-device actor sections (see devices.h): YAML
// only, in vb_base. The bus-section loader and satellite endpoints need the
// bus and live in bus_sections.cc (vb_bus).
#include "bus/devices.h"

#include <regex>
#include <set>

namespace vb::bus {
namespace {

// The value of `key` in mapping `n` (undefined if absent); never creates it.
YAML::Node Find(const YAML::Node& n, const std::string& key) {
  if (n.IsDefined() && n.IsMap())
    for (auto it = n.begin(); it != n.end(); ++it)
      if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
  return YAML::Node(YAML::NodeType::Undefined);
}

// A new mapping: `base` with `over` laid over it, mapping by mapping.
// Values are shared with the file (they keep their file:line), never edited.
YAML::Node Overlay(const YAML::Node& base, const YAML::Node& over) {
  if (over.IsDefined() && !over.IsNull() && !over.IsMap()) return over;  // the actor says "must be a mapping"
  YAML::Node out(YAML::NodeType::Map);
  const bool have_base = base.IsDefined() && base.IsMap();
  const bool have_over = over.IsDefined() && over.IsMap();
  if (have_base)
    for (auto it = base.begin(); it != base.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      const std::string k = it->first.Scalar();
      YAML::Node o = have_over ? Find(over, k) : YAML::Node(YAML::NodeType::Undefined);
      if (!o.IsDefined()) out[k] = it->second;
      else if (o.IsMap() && it->second.IsMap()) out[k] = Overlay(it->second, o);
      else out[k] = o;
    }
  if (have_over)
    for (auto it = over.begin(); it != over.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      const std::string k = it->first.Scalar();
      if (!have_base || !Find(base, k).IsDefined()) out[k] = it->second;
    }
  return out;
}

const std::regex& NameRule() {
  static const std::regex kName("[A-Za-z0-9_-]{1,64}");
  return kName;
}

}  // namespace

std::string DeviceInstance(const std::string& kind, const std::string& device) { return kind + "@" + device; }

bool SplitDeviceInstance(const std::string& name, std::string* kind, std::string* device) {
  const size_t at = name.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= name.size()) return false;
  *kind = name.substr(0, at);
  *device = name.substr(at + 1);
  return true;
}

void DevicesConfig::Declare(config::Section& s) {
  const auto present = s.Keys();
  const bool names_given = std::find(present.begin(), present.end(), "names") != present.end();
  s.Key("names", &names, {"local"},
        "devices this hub serves (topic suffix: letters, digits, - and _); the first is the default. "
        "With `list`, taken from it");
  s.Key("actors", &actors, {},
        "actor kinds every device of `list` runs, each as an instance KIND@DEVICE "
        "(e.g. [capture, afe, wakevad, playback]); their shared settings are the KIND sections");
  auto l = s.Sub("list",
                 "the devices by name, each NAME: {room: for people (default NAME); satellite: true = runs on a "
                 "host of its own (`vb run --role satellite --device NAME`) and joins the hub over bus.endpoint; "
                 "client_key_file: a satellite's CURVE key pair (default bus.curve.client_key_file); KIND: {…} "
                 "laid over section KIND for this device}. YAML merge keys (<<: *x) welcome");
  auto entry = [&](config::Section& d, DeviceEntry* e) {
    d.Key("room", &e->room, e->name, "room name, for people (dashboard, dialog state)");
    d.Key("satellite", &e->satellite, false,
          "runs on a host of its own (`vb run --role satellite --device NAME`) and joins the hub over "
          "bus.endpoint; false: its actors run with the hub's");
    d.Key("client_key_file", &e->client_key_file, std::string(""),
          "satellite: its CURVE key pair for the hub's bus (empty: bus.curve.client_key_file)");
  };
  if (!l.report()->describe) {
    for (const auto& name : l.Keys()) {
      auto d = l.Sub(name, "");
      DeviceEntry e;
      e.name = name;
      entry(d, &e);
      // Each kind's settings are the actor's to check (in section KIND@DEVICE).
      for (const auto& kind : actors) (void)d.Sub(kind, "");
      d.Finish();
      if (!std::regex_match(name, NameRule())) l.Error(name, "'" + name + "' is not a valid device name");
      list.push_back(std::move(e));
    }
  }
  l.Finish();
  if (!list.empty()) {
    std::vector<std::string> from_list;
    for (const auto& e : list) from_list.push_back(e.name);
    if (names_given && names != from_list) s.Error("names", "disagrees with the devices of `list` (give one of them)");
    names = from_list;
  } else {
    for (const auto& n : names) list.push_back(DeviceEntry{n, n, false, ""});
  }
  for (const auto& n : names)
    if (!std::regex_match(n, NameRule())) s.Error("names", "'" + n + "' is not a valid device name");
  if (names.empty()) s.Error("names", "needs at least one device");
  std::set<std::string> kinds;
  for (size_t i = 0; i < actors.size(); ++i) {
    if (!std::regex_match(actors[i], NameRule())) s.Error("actors", "'" + actors[i] + "' is not an actor kind", int(i));
    if (!kinds.insert(actors[i]).second) s.Error("actors", "'" + actors[i] + "' is listed twice", int(i));
  }
  s.Finish();
}

const DeviceEntry* DevicesConfig::Find(const std::string& name) const {
  for (const auto& e : list)
    if (e.name == name) return &e;
  return nullptr;
}

bool DevicesConfig::AnySatellite() const {
  for (const auto& e : list)
    if (e.satellite) return true;
  return false;
}

void ExpandDeviceSections(const YAML::Node& root, std::map<std::string, YAML::Node>* out) {
  const YAML::Node devices = Find(root, "devices");
  const YAML::Node actors = Find(devices, "actors");
  const YAML::Node list = Find(devices, "list");
  if (!actors.IsDefined() || !actors.IsSequence() || !list.IsDefined() || !list.IsMap()) return;
  for (auto d = list.begin(); d != list.end(); ++d) {
    if (!d->first.IsScalar() || (d->second.IsDefined() && !d->second.IsNull() && !d->second.IsMap())) continue;
    const std::string device = d->first.Scalar();
    for (size_t i = 0; i < actors.size(); ++i) {
      if (!actors[i].IsScalar()) continue;
      const std::string kind = actors[i].Scalar();
      const std::string name = DeviceInstance(kind, device);
      YAML::Node section = Overlay(Find(root, kind), Find(d->second, kind));
      // A section written for this very instance has the last word.
      if (YAML::Node own = Find(root, name); own.IsDefined()) section = Overlay(section, own);
      if (section.IsMap() && !Find(section, "device").IsDefined()) section["device"] = device;
      (*out)[name] = section;
    }
  }
}

}  // namespace vb::bus
