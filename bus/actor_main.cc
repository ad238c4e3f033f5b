// The shared actor main(): arguments, config, signals, run (see actor_main.h).
#include "bus/actor_main.h"

#include "bus/contract.h"
#include "bus/devices.h"
#include "bus/signals.h"

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <regex>

namespace vb::bus {
namespace {

void Usage(const char* kind, std::ostream& out = std::cerr) {
  out << "usage: vb-" << kind << " --config FILE [--name NAME] [--log-level debug|info|warn|error]\n"
      << "       vb-" << kind << " --print-default-config\n"
      << "       vb-" << kind << " --contract [--json] [--config FILE]\n";
}

// --help: the usage and where the rest is documented (also the man page's text).
void Help(const char* kind) {
  Usage(kind, std::cout);
  std::cout << "\nThe voicebus " << kind << " actor: one stage of the assistant, a process on the bus.\n"
            << "Usually started and watched by `vb run` (launcher.actors), or by systemd as\n"
            << "voicebus-actor@NAME.service.\n\n"
            << "  --config FILE            the voicebus config; this actor reads bus, devices and its own section\n"
            << "  --name NAME              instance name = its config section and bus identity (default " << kind
            << ")\n"
            << "  --log-level LEVEL        debug, info (default), warn or error; logs go to stderr\n"
            << "  --print-default-config   its section's keys, defaults and meaning\n"
            << "  --contract [--json]      configure the actor (defaults, or --config FILE) on a private in-process\n"
            << "                           bus and print what it subscribes to and publishes (topic, payload type,\n"
            << "                           plane), its config section and its duties; see docs/wire.md\n\n"
            << "Exit: 0 stopped (SIGTERM/SIGINT), 1 failed at start, 64 bad command line, 78 config\n"
            << "error (file:line:key on stderr; not restarted by vb run). See vb(1), `vb help config`.\n";
}

}  // namespace

void CommonActorConfig::Declare(config::Section& s) {
  s.Key("device", &device, std::string(""), "device this actor serves (one of devices.names; empty = the first)");
  // Read by the launcher; declared here so every actor's section accepts it.
  s.Key("command", &command, {},
        "run this program instead of vb-KIND (argv list, e.g. [/usr/bin/python3, my_vad.py]; "
        "a relative program is taken from the config's folder, a bare name from PATH); it gets "
        "--config FILE --name NAME and the same supervision (docs/wire.md)");
}

void DeclareDevices(config::Section& s, std::vector<std::string>* names) {
  DevicesConfig d;
  d.Declare(s);
  *names = d.names;
}

int ActorMain(int argc, char** argv, const char* kind, ActorFactory factory) {
  std::string config_path, name = kind, log_level = "info";
  bool print_default = false, contract = false, json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    // An option's value is never another option (`--config --help`).
    auto value = [&](std::string* out) {
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0) return false;
      *out = argv[++i];
      return true;
    };
    if (a == "--config" && value(&config_path)) continue;
    if (a == "--name" && value(&name)) continue;
    if (a == "--log-level" && value(&log_level)) continue;
    if (a == "--print-default-config") {
      print_default = true;
      continue;
    }
    if (a == "--contract") {
      contract = true;
      continue;
    }
    if (a == "--json") {
      json = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      Help(kind);
      return 0;
    }
    if (a == "--config" || a == "--name" || a == "--log-level")
      std::cerr << "vb-" << kind << ": " << a << " needs a value\n";
    else std::cerr << "vb-" << kind << ": unknown argument '" << a << "'\n";
    Usage(kind);
    return 64;
  }
  SetLogIdentity(name);
  if (log_level == "debug") SetLogLevel(LogLevel::kDebug);
  else if (log_level == "warn") SetLogLevel(LogLevel::kWarn);
  else if (log_level == "error") SetLogLevel(LogLevel::kError);
  else if (log_level != "info") {
    std::cerr << "vb-" << kind << ": --log-level must be debug, info, warn or error\n";
    return 64;
  }

  std::unique_ptr<Actor> actor = factory();
  std::string described;
  if (print_default || contract) {
    auto report = config::DescribeReport();
    config::Section s(report, kind, YAML::Node());
    CommonActorConfig common;
    common.Declare(s);
    factory()->DeclareConfig(s);
    described = report->described;
  }
  if (print_default) {
    std::cout << "# vb-" << kind << " — default configuration section\n" << described;
    return 0;
  }
  if (config_path.empty() && !contract) {
    Usage(kind);
    return 64;
  }

  // ${VB_CONFIG_DIR}: the config file's folder, as `vb run` sets it, also
  // when systemd starts the actor alone (voicebus-actor@.service).
  if (!std::getenv("VB_CONFIG_DIR")) {
    char real[PATH_MAX];
    if (realpath(config_path.c_str(), real)) {
      std::string dir = real;
      setenv("VB_CONFIG_DIR", dir.substr(0, std::max<size_t>(1, dir.rfind('/'))).c_str(), 1);
    }
  }
  config::File file;
  if (Status st = config_path.empty() ? file.LoadString("{}", "(defaults)") : file.Load(config_path); !st.ok()) {
    std::cerr << "vb-" << kind << ": config error: " << st.message() << "\n";
    return kExitConfig;
  }
  auto report = file.NewReport();
  BusConfig bus;
  DevicesConfig devices_config;
  ReadBusSections(file, report, &bus, &devices_config);
  // The contract is read from an actor configured on a bus of its own.
  if (contract) bus.endpoint = "inproc://vb-contract";
  const std::vector<std::string>& devices = devices_config.names;
  CommonActorConfig common;
  auto section = file.Get(name, report);
  common.Declare(section);
  actor->DeclareConfig(section);
  section.Finish();
  if (common.device.empty() && !devices.empty()) common.device = devices.front();
  bool known_device = false;
  for (const auto& d : devices) known_device = known_device || d == common.device;
  if (!known_device) section.Error("device", "'" + common.device + "' is not in devices.names");
  // A satellite's own actors (KIND@DEVICE) share the bus of its host, which
  // `vb-broker --satellite DEVICE` bridges to the hub (devices.h).
  std::string inst_kind, inst_device;
  if (const DeviceEntry* e = devices_config.Find(common.device);
      e && e->satellite && !contract && SplitDeviceInstance(name, &inst_kind, &inst_device) && inst_device == e->name)
    bus.endpoint = SatelliteEndpoint(bus.satellite_endpoint, bus.endpoint, e->name);
  if (Status st = config::ToStatus(*report); !st.ok()) {
    std::cerr << "vb-" << kind << ": config error:\n" << st.message() << "\n";
    return kExitConfig;
  }

  // SIGINT/SIGTERM arrive through a signalfd in the loop: no global flag.
  StopSignals signals;

  int code = 0;
  {
    zmq::context_t zctx(1);
    ActorHost host(zctx, std::move(actor), kind, name, common.device, bus);
    host.context().SetDevices(devices);
    host.loop().AddFd(signals.fd(), POLLIN, [&](short) {
      if (int sig = signals.Take()) {
        VB_LOG(kInfo) << "received " << strsignal(sig) << ", stopping";
        host.context().Stop(0);
      }
    });
    if (contract) {
      if (Status st = host.Start(section); !st.ok()) {
        std::cerr << "vb-" << kind << ": cannot configure for --contract: " << st.message()
                  << "\n(give --config FILE with a config it can start with, e.g. config/demo.yaml)\n";
        return st.code() == Status::Code::kConfig ? kExitConfig : 1;
      }
      std::cout << ContractText(kind, host.node().Declarations(), described, json);
      host.actor().Deactivate(host.context());
      return 0;
    }
    if (Status st = host.Start(section); !st.ok()) {
      if (st.code() == Status::Code::kConfig) {
        std::cerr << "vb-" << kind << ": config error: " << st.message() << "\n";
        return kExitConfig;
      }
      VB_LOG(kError) << "cannot start: " << st.message();
      return 1;
    }
    VB_LOG(kInfo) << "active on device '" << common.device << "', bus " << bus.endpoint;
    code = host.Run();
    zctx.shutdown();
  }
  return code;
}

}  // namespace vb::bus
