// vb-broker: binds the bus endpoints of the `bus` config section and
// forwards until SIGTERM/SIGINT. Config errors exit 78.
//
//   vb-broker --config FILE | --endpoint ENDPOINT
//   vb-broker --config FILE --satellite DEVICE   the bus of satellite DEVICE's
//                                                host, joined to the hub (uplink.h)
#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "bus/actor_main.h"
#include "bus/broker/broker.h"
#include "bus/broker/uplink.h"
#include "bus/devices.h"
#include "bus/log.h"
#include "bus/signals.h"

int main(int argc, char** argv) {
  using namespace vb;
  std::string config_path, endpoint, satellite;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const bool has_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
    if (a == "--help" || a == "-h") {
      std::cout << "usage: vb-broker --config FILE | --endpoint ENDPOINT\n"
                   "       vb-broker --config FILE --satellite DEVICE\n"
                   "       vb-broker --print-default-config\n\n"
                   "The voicebus bus broker (XSUB/XPUB proxy, CURVE on tcp://): binds the endpoints of\n"
                   "the config's bus section (or ENDPOINT) and forwards until SIGTERM. Stateless: `vb run`\n"
                   "restarts it at once. Exit 78 on a config error. See vb(1), `vb help config`.\n\n"
                   "--satellite DEVICE: the bus of a satellite's host instead (devices.list.DEVICE with\n"
                   "satellite: true): binds bus.satellite_endpoint for the device's own actors and joins\n"
                   "the hub at bus.endpoint (CURVE client key: the device's client_key_file, else\n"
                   "bus.curve.client_key_file). Only what the other side subscribes to crosses the link;\n"
                   "a lost hub is redialled for as long as it takes. `vb run --role satellite` starts it.\n";
      return 0;
    }
    if (a == "--config" && has_value) config_path = argv[++i];
    else if (a == "--endpoint" && has_value) endpoint = argv[++i];
    else if (a == "--satellite" && has_value) satellite = argv[++i];
    else if (a == "--print-default-config") {
      auto report = config::DescribeReport();
      config::Section s(report, "bus", YAML::Node());
      bus::BusConfig c;
      c.Declare(s);
      std::cout << report->described;
      return 0;
    } else {
      std::cerr << "usage: vb-broker --config FILE | --endpoint ENDPOINT\n";
      return 64;
    }
  }
  SetLogIdentity(satellite.empty() ? "broker" : "broker@" + satellite);
  bus::BusConfig bus;
  bus::DevicesConfig devices;
  Status st = bus::LoadBusSections(config_path, &bus, satellite.empty() ? nullptr : &devices);
  if (st.ok() && !satellite.empty()) {
    const bus::DeviceEntry* e = devices.Find(satellite);
    if (!e || !e->satellite)
      st = Status::Config((config_path.empty() ? std::string("(defaults)") : config_path) + ": devices.list." +
                          satellite + ": --satellite needs a device declared with satellite: true");
    else if (!e->client_key_file.empty()) bus.curve.client_key_file = e->client_key_file;
  }
  if (!st.ok()) {
    std::cerr << "vb-broker: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  if (!endpoint.empty()) bus.endpoint = endpoint;

  StopSignals signals;
  zmq::context_t ctx(1);
  if (!satellite.empty()) {
    bus::Loop loop;
    const std::string local = bus::SatelliteEndpoint(bus.satellite_endpoint, bus.endpoint, satellite);
    bus::SatelliteBridge bridge(ctx, loop, bus, local);
    if (Status b = bridge.Start(); !b.ok()) {
      std::cerr << "vb-broker: " << b.message() << "\n";
      return b.code() == Status::Code::kConfig ? kExitConfig : 1;
    }
    loop.AddFd(signals.fd(), POLLIN, [&](short) {
      if (signals.Take()) loop.Stop();
    });
    VB_LOG(kInfo) << "satellite " << satellite << ": serving " << local << ", joined to the hub at " << bus.endpoint;
    loop.Run();
    const auto& c = bridge.counters();
    VB_LOG(kInfo) << "stopped; sent up " << c.up[0] + c.up[1] << ", delivered from the hub " << c.down[0] + c.down[1]
                  << ", echoes dropped " << c.echoes_dropped;
    ctx.shutdown();
    return 0;
  }
  {
    bus::Loop loop;
    bus::Broker broker(ctx, loop, bus);
    if (Status b = broker.Bind(); !b.ok()) {
      std::cerr << "vb-broker: " << b.message() << "\n";
      return b.code() == Status::Code::kConfig ? kExitConfig : 1;
    }
    loop.AddFd(signals.fd(), POLLIN, [&](short) {
      if (signals.Take()) loop.Stop();
    });
    VB_LOG(kInfo) << "serving " << bus.endpoint;
    loop.Run();
    VB_LOG(kInfo) << "stopped after forwarding " << broker.counters().forwarded[0] << " stream and "
                  << broker.counters().forwarded[1] << " control messages";
  }
  ctx.shutdown();
  return 0;
}
