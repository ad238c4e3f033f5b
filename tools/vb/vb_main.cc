// vb: the one command users type. `vb help` lists the commands and topics;
// their texts live in help.cc, the commands in commands.cc and demo.cc.
//
//   vb run [CONFIG]               start broker + actors, watch and restart them
//   vb demo [--config FILE]       the main job: talk to the (simulated) agent, WAV in/out
//   vb sniff COMMAND …            the bus sniffer (vb-sniff)
//   vb tune afe RECORDING …       offline tuning of vb-afe/vb-wakevad (vb-tune)
//   vb status, ptt, say, speak, mode, interrupt, new-conversation, keygen
//   vb help [TOPIC], vb --print-default-config
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <set>

#include "tools/vb/commands.h"
#include "tools/vb/first_run.h"
#include "tools/vb/help.h"
#include "tools/vb/launcher.h"

int main(int argc, char** argv) {
  using namespace vb::cli;
  if (argc < 2) {
    Help({});
    return 64;
  }
  std::string cmd = argv[1];
  Args args(argv + 2, argv + argc);
  if (cmd == "run") return Run(args);
  if (cmd == "demo") return Demo(args);
  if (cmd == "keygen") return Keygen(args);
  if (cmd == "status") return ShowStatus(args);
  if (cmd == "contract") return Contract(args);
  if (cmd == "ptt" || cmd == "say" || cmd == "mode" || cmd == "interrupt" || cmd == "speak" ||
      cmd == "new-conversation")
    return SendCommand(cmd, args);
  if (cmd == "--print-default-config") {
    if (WantsHelp(args)) return PrintHelp("print-default-config");
    if (args.empty()) return PrintDefaultConfig();
    if (args.size() != 2 || args[0] != "--config")
      return UsageError("print-default-config", "takes only --config FILE");
    return PrintDefaultConfig(args[1]);
  }
  if (cmd == "help" || cmd == "-h" || cmd == "--help") return Help(args);
  if (cmd == "sniff" || cmd == "tune") {  // vb-sniff, vb-tune (offline tuning on a recording)
    std::string run_dir;
    (void)RuntimeDir(&run_dir);  // vb run's ${VB_RUN_DIR}, for --config config/demo.yaml
    std::string sniff = vb::launcher::BinDir() + "/vb-" + cmd;
    std::vector<char*> av = {const_cast<char*>(sniff.c_str())};
    for (int i = 2; i < argc; ++i) av.push_back(argv[i]);
    // vb sniff without --config or --endpoint listens where the one `vb run`
    // going is (as vb say does), not on the built-in default bus.
    std::string running, flag = "--config";
    static const std::set<std::string> kOnTheBus = {"list", "echo", "hz", "bw", "drops", "latency", "record", "replay"};
    if (cmd == "sniff" && !WantsHelp(args) && !args.empty() && kOnTheBus.count(args[0]) &&
        std::none_of(args.begin(), args.end(),
                     [](const std::string& a) { return a == "--config" || a == "--endpoint"; })) {
      if (vb::Status st = RunningConfig(&running); !st.ok()) {
        std::cerr << "vb sniff: " << st.message() << "\n";
        return 64;
      }
      if (!running.empty()) {
        ExportConfigDir(running);
        av.push_back(flag.data());
        av.push_back(running.data());
      }
    }
    av.push_back(nullptr);
    execv(sniff.c_str(), av.data());
    std::cerr << "vb: cannot run " << sniff << "\n";
    return 127;
  }
  std::cerr << "vb: unknown command '" << cmd << "' (vb help lists them)\n";
  return 64;
}
