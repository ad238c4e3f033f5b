// The one bus-section loader and the satellites' local endpoints (declared in
// devices.h). They read BusConfig (bus_config.h, ZeroMQ), so they are part of
// vb_bus, while the devices section itself (devices.cc) is in vb_base.
#include "bus/bus_config.h"
#include "bus/devices.h"

namespace vb::bus {

void ReadBusSections(const config::File& file, const std::shared_ptr<config::Report>& report, BusConfig* bus,
                     DevicesConfig* devices) {
  if (bus) {
    auto s = file.Get("bus", report);
    bus->Declare(s);
    s.Finish();
  }
  if (devices) {
    auto s = file.Get("devices", report);
    devices->Declare(s);
  }
}

Status LoadBusSections(const std::string& path, BusConfig* bus, DevicesConfig* devices) {
  config::File file;
  if (Status st = path.empty() ? file.LoadString("{}", "(defaults)") : file.Load(path); !st.ok()) return st;
  auto report = file.NewReport();
  ReadBusSections(file, report, bus, devices);
  return config::ToStatus(*report);
}

std::string SatelliteEndpoint(const std::string& pattern, const std::string& hub_endpoint, const std::string& device) {
  std::string p = pattern;
  if (p.empty()) {
    std::string base = hub_endpoint.rfind("ipc://", 0) == 0 ? hub_endpoint : DefaultEndpoint();
    p = base.substr(0, base.rfind('/') + 1) + "voicebus-sat-{device}";
    if (p.rfind("ipc://", 0) != 0) p = "ipc:///tmp/voicebus-sat-{device}";
  }
  for (size_t at; (at = p.find("{device}")) != std::string::npos;) p.replace(at, 8, device);
  return p;
}

}  // namespace vb::bus
