// Devices declared once: the `devices` config section.
//
//   devices:
//     actors: [capture, afe, wakevad, playback]   # the actor set every device runs
//     list:
//       kitchen:
//         room: Kitchen
//         satellite: true                # runs on its own host, joins the hub
//         capture: {alsa: {device: "hw:1"}}   # laid over the shared `capture:` section
//         wakevad: {wake: {phrase: "hey kitchen"}}
//       office: {room: Office, satellite: true}
//
// For each device D and kind K of `actors`, the actor instance "K@D" runs
// with the section K (shared by all devices) with D's own `K:` settings laid
// over it, mapping by mapping, and `device: D` (config::File::Get). The old
// form `names: [a, b]` still works (no per-device actors then).
//
// Satellites: a device with `satellite: true` runs its actors on its own
// host. They share a bus local to that host (bus.satellite_endpoint, an
// ipc:// path per device), bridged to the hub's bus by `vb-broker
// --satellite D` (bus/broker/uplink.h): its microphone and reference
// streams stay on it unless someone at the hub subscribes.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

#include "bus/config.h"

namespace vb::bus {

struct DeviceEntry {
  std::string name;
  std::string room;
  bool satellite = false;
  std::string client_key_file;  // the satellite's CURVE key pair ("" = bus.curve.client_key_file)
};

struct DevicesConfig {
  std::vector<std::string> names;   // every device; the first is the default
  std::vector<std::string> actors;  // kinds every device runs (KIND@DEVICE)
  std::vector<DeviceEntry> list;    // one per name
  void Declare(config::Section& s);
  const DeviceEntry* Find(const std::string& name) const;
  bool AnySatellite() const;
};

// "KIND@DEVICE": the name of the instance of `kind` that serves `device`.
std::string DeviceInstance(const std::string& kind, const std::string& device);
// Splits "KIND@DEVICE"; false if `name` is not of that form.
bool SplitDeviceInstance(const std::string& name, std::string* kind, std::string* device);

// The sections of every KIND@DEVICE instance, built from `root` (a loaded
// config whose merge keys are resolved). Malformed devices sections expand
// to nothing: DevicesConfig::Declare reports them.
void ExpandDeviceSections(const YAML::Node& root, std::map<std::string, YAML::Node>* out);

// Everything above is YAML only (vb_base); what follows reads the bus
// section too and is part of vb_bus (bus_sections.cc).
struct BusConfig;

// The one bus-section loader: reads the `bus` and `devices` sections of a
// loaded config into *bus and *devices (either may be null), errors into
// `report`. Every program that joins the bus reads them this way.
void ReadBusSections(const config::File& file, const std::shared_ptr<config::Report>& report, BusConfig* bus,
                     DevicesConfig* devices);
// Loads `path` (empty: the built-in defaults) and reads its bus sections;
// a config Status names every error (file:line:key).
Status LoadBusSections(const std::string& path, BusConfig* bus, DevicesConfig* devices);

// The local bus of satellite `device` on its host: bus.satellite_endpoint
// with {device} replaced; its default is ipc://<dir of the hub's ipc
// endpoint, or of the default endpoint>/voicebus-sat-{device}.
std::string SatelliteEndpoint(const std::string& pattern, const std::string& hub_endpoint, const std::string& device);

}  // namespace vb::bus
