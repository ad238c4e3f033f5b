// vb contract: the actors' contracts as data, and the conformance kit.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

#include "tools/vb/commands.h"
#include "tools/vb/first_run.h"
#include "tools/vb/help.h"
#include "tools/vb/launcher.h"

namespace vb::cli {
namespace {

// Runs argv, returns its exit code and stdout (stderr kept in *err).
int Capture(const std::vector<std::string>& argv, std::string* out, const std::string& err_path) {
  std::string cmd;
  for (const auto& a : argv) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += q + "' ";
  }
  cmd += "2>'" + err_path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 127;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// A scratch folder in which config/demo.yaml can configure every actor
// (the simulator's token file, a silent question.wav); the actors only
// configure, nothing is connected or played.
std::string DemoScratch() {
  char tmpl[] = "/tmp/vb-contract-XXXXXX";
  if (!mkdtemp(tmpl)) return "";
  std::string d = tmpl;
  std::ofstream(d + "/sim-token") << "contract\n";
  // 16 kHz mono s16le WAV with no samples.
  const unsigned char wav[44] = {'R', 'I', 'F', 'F', 36, 0, 0,   0,   'W', 'A',  'V',  'E', 'f', 'm', 't',
                                 ' ', 16,  0,   0,   0,  1, 0,   1,   0,   0x80, 0x3e, 0,   0,   0,   0x7d,
                                 0,   0,   2,   0,   16, 0, 'd', 'a', 't', 'a',  0,    0,   0,   0};
  std::ofstream(d + "/question.wav", std::ios::binary).write(reinterpret_cast<const char*>(wav), sizeof wav);
  return d;
}

int Test(const Args& rest) {
  auto dash = std::find(rest.begin(), rest.end(), "--");
  if (rest.size() < 2 || rest[0] != "test" || dash != rest.begin() + 2 || dash + 1 == rest.end())
    return UsageError("contract", "expected: vb contract test KIND -- COMMAND [ARG…]");
  std::string kit = std::string(VB_SOURCE_DIR) + "/tests/integration/contract/conformance.py";
  if (access(kit.c_str(), R_OK) != 0) {
    std::cerr << "vb: the conformance kit " << kit << " is not there (it ships with the source tree)\n";
    return 69;
  }
  // The kit and a Python actor under test use the vb.v1 modules the build generated.
  ExportSdkEnv();
  std::vector<std::string> argv = {"/usr/bin/python3", kit,     "--broker", launcher::BinDir() + "/vb-broker",
                                   "--kind",           rest[1], "--"};
  argv.insert(argv.end(), dash + 1, rest.end());
  std::vector<char*> av;
  for (auto& a : argv) av.push_back(a.data());
  av.push_back(nullptr);
  execv(av[0], av.data());
  std::cerr << "vb: cannot run /usr/bin/python3 (Debian: python3, python3-zmq, python3-protobuf)\n";
  return 127;
}

}  // namespace

int PrintCommandSections(const std::string& config_arg) {
  std::string config, run_dir;
  if (!ResolveConfig(config_arg, &config).ok()) {
    std::cerr << "vb: config '" << config_arg << "' not found\n";
    return 66;
  }
  (void)RuntimeDir(&run_dir);  // ${VB_RUN_DIR} as vb run sets it
  ExportConfigDir(config);
  // Only the launcher section's view is needed: which actors run by command.
  launcher::LauncherConfig lc;
  bus::BusConfig unused_bus;
  const Status loaded = launcher::LoadLaunchConfig(config, &unused_bus, &lc);
  if (!loaded.ok()) return std::cerr << "vb: config error:\n" << loaded.message() << "\n", kExitConfig;
  int failed = 0;
  for (const auto& [name, argv0] : lc.commands) {
    std::vector<std::string> argv = argv0;
    argv.push_back("--print-default-config");
    std::string out, err_path = "/tmp/vb-print-err-" + std::to_string(getpid());
    int rc = Capture(argv, &out, err_path);
    unlink(err_path.c_str());
    std::cout << "\n# " << name << ": run by command: " << argv0[0] << (argv0.size() > 1 ? " " + argv0[1] : "") << "\n";
    if (rc != 0) {
      std::cerr << "vb: " << name << "'s command could not print its section (exit " << rc << ")\n";
      ++failed;
    }
    std::cout << out;
  }
  return failed ? 1 : 0;
}

int Contract(const Args& in) {
  if (WantsHelp(in)) return PrintHelp("contract");
  if (!in.empty() && in[0] == "test") return Test(in);
  std::map<std::string, std::string> opt;
  Args rest;
  std::string error;
  if (!ParseArgs(in, {{"--json", false}, {"--config", true}}, &opt, &rest, &error))
    return UsageError("contract", error);
  if (rest.size() > 1) return UsageError("contract", "at most one KIND");
  const bool json = opt.count("--json") > 0;
  const std::string bin = launcher::BinDir();
  std::vector<std::string> kinds;
  if (rest.empty()) {
    std::ifstream list(bin + "/vb-actors.list");
    for (std::string n; std::getline(list, n);)
      if (n.rfind("vb-", 0) == 0) kinds.push_back(n.substr(3));
    std::sort(kinds.begin(), kinds.end());
  } else {
    kinds.push_back(rest[0]);
    if (access((bin + "/vb-" + rest[0]).c_str(), X_OK) != 0) {
      std::cerr << "vb: unknown actor kind '" << rest[0] << "' (no " << bin << "/vb-" << rest[0] << ")\n";
      return 64;
    }
  }
  std::string config;
  if (opt.count("--config") && !ResolveConfig(opt["--config"], &config).ok()) {
    std::cerr << "vb: config '" << opt["--config"] << "' not found\n";
    return 66;
  }
  std::string scratch;
  int failed = 0;
  std::string all = json ? "[\n" : "";
  for (size_t i = 0; i < kinds.size(); ++i) {
    std::vector<std::string> argv = {bin + "/vb-" + kinds[i], "--contract"};
    if (json) argv.push_back("--json");
    std::string out, err_path = "/tmp/vb-contract-err-" + std::to_string(getpid());
    int rc;
    if (!config.empty()) {
      argv.insert(argv.end(), {"--config", config});
      rc = Capture(argv, &out, err_path);
    } else if ((rc = Capture(argv, &out, err_path)) != 0) {
      // Defaults are not enough for some kinds (a bot id, a WAV file): the demo config is.
      std::string demo;
      if (scratch.empty()) scratch = DemoScratch();
      if (ResolveConfig("config/demo.yaml", &demo).ok() && !scratch.empty()) {
        setenv("VB_RUN_DIR", scratch.c_str(), 1);
        setenv("VB_SIM_PORT", "9", 1);
        setenv("VB_GATEWAY_PORT", std::to_string(launcher::FreeLoopbackPort()).c_str(), 1);
        ExportConfigDir(demo);
        argv.insert(argv.end(), {"--config", demo});
        out.clear();
        rc = Capture(argv, &out, err_path);
      }
    }
    if (rc != 0) {
      std::ifstream e(err_path);
      std::string text((std::istreambuf_iterator<char>(e)), {});
      std::cerr << "vb: vb-" << kinds[i] << " --contract failed (" << rc << "):\n" << text;
      ++failed;
    } else if (json) {
      all += (all.size() > 2 ? ",\n" : "") + out;
    } else {
      all += (i ? "\n" : "") + out;
    }
    unlink(err_path.c_str());
  }
  if (!scratch.empty()) std::system(("rm -rf '" + scratch + "'").c_str());
  if (json) all += "]\n";
  if (json && rest.size() == 1) all = all.substr(2, all.size() - 4) + "\n";
  std::cout << all;
  return failed ? 1 : 0;
}

}  // namespace vb::cli
