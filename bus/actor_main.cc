// The shared actor main(): arguments, config, signals, run (see actor_main.h).
#include "bus/actor_main.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <regex>

namespace vb::bus {
namespace {

void Usage(const char* kind) {
  std::cerr << "usage: vb-" << kind << " --config FILE [--name NAME] [--log-level LEVEL]\n"
            << "       vb-" << kind << " --print-default-config\n";
}

}  // namespace

void CommonActorConfig::Declare(config::Section& s) {
  s.Key("device", &device, std::string(""),
        "device this actor serves (one of devices.names; empty = the first)");
}

void DeclareDevices(config::Section& s, std::vector<std::string>* names) {
  s.Key("names", names, {"local"},
        "devices this hub serves (topic suffix: letters, digits, - and _); the first is the default");
  static const std::regex kName("[A-Za-z0-9_-]{1,64}");
  for (const auto& n : *names)
    if (!std::regex_match(n, kName)) s.Error("names", "'" + n + "' is not a valid device name");
  if (names->empty()) s.Error("names", "needs at least one device");
  s.Finish();
}

int ActorMain(int argc, char** argv, const char* kind, ActorFactory factory) {
  std::string config_path, name = kind, log_level = "info";
  bool print_default = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (a == "--config" && value(&config_path)) continue;
    if (a == "--name" && value(&name)) continue;
    if (a == "--log-level" && value(&log_level)) continue;
    if (a == "--print-default-config") { print_default = true; continue; }
    if (a == "-h" || a == "--help") { Usage(kind); return 0; }
    std::cerr << "vb-" << kind << ": unknown argument '" << a << "'\n";
    Usage(kind);
    return 64;
  }
  SetLogIdentity(name);
  if (log_level == "debug") SetLogLevel(LogLevel::kDebug);
  else if (log_level == "warn") SetLogLevel(LogLevel::kWarn);
  else if (log_level == "error") SetLogLevel(LogLevel::kError);

  std::unique_ptr<Actor> actor = factory();
  if (print_default) {
    auto report = config::DescribeReport();
    config::Section s(report, kind, YAML::Node());
    CommonActorConfig common;
    common.Declare(s);
    actor->DeclareConfig(s);
    std::cout << "# vb-" << kind << " — default configuration section\n" << report->described;
    return 0;
  }
  if (config_path.empty()) {
    Usage(kind);
    return 64;
  }

  config::File file;
  if (Status st = file.Load(config_path); !st.ok()) {
    std::cerr << "vb-" << kind << ": config error: " << st.message() << "\n";
    return kExitConfig;
  }
  auto report = file.NewReport();
  BusConfig bus;
  {
    auto s = file.Get("bus", report);
    bus.Declare(s);
    s.Finish();
  }
  std::vector<std::string> devices;
  {
    auto s = file.Get("devices", report);
    DeclareDevices(s, &devices);
  }
  CommonActorConfig common;
  auto section = file.Get(name, report);
  common.Declare(section);
  actor->DeclareConfig(section);
  section.Finish();
  if (common.device.empty() && !devices.empty()) common.device = devices.front();
  bool known_device = false;
  for (const auto& d : devices) known_device = known_device || d == common.device;
  if (!known_device) section.Error("device", "'" + common.device + "' is not in devices.names");
  if (Status st = config::ToStatus(*report); !st.ok()) {
    std::cerr << "vb-" << kind << ": config error:\n" << st.message() << "\n";
    return kExitConfig;
  }

  // SIGINT/SIGTERM arrive through a signalfd in the loop: no global flag.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

  int code = 0;
  {
    zmq::context_t zctx(1);
    ActorHost host(zctx, std::move(actor), kind, name, common.device, bus);
    host.loop().AddFd(sfd, POLLIN, [&](short) {
      signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        VB_LOG(kInfo) << "received " << strsignal(int(si.ssi_signo)) << ", stopping";
        host.context().Stop(0);
      }
    });
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
  close(sfd);
  return code;
}

}  // namespace vb::bus
