// vb: the one command users type.
//
//   vb run CONFIG                 start broker + actors, watch and restart them
//   vb demo [--config FILE]       the main job: talk to the (simulated) agent, WAV in/out
//   vb sniff COMMAND …            the bus sniffer (vb-sniff)
//   vb status [--config FILE]     actor health from heartbeats
//   vb ptt down|up, vb say TEXT, vb mode MODE, vb interrupt   [--config FILE] [--device D]
//   vb speak TEXT, vb new-conversation                        (answered by vb-session)
//   vb keygen FILE                CURVE key pair for tcp:// buses
//   vb --print-default-config     every section, documented
#include <unistd.h>

#include <iostream>

#include "tools/vb/commands.h"
#include "tools/vb/launcher.h"

namespace {

int Usage() {
  std::cerr << "usage: vb run CONFIG\n"
               "       vb demo [--config FILE] [--say TEXT] [--out DIR] [--timeout SEC]\n"
               "       vb sniff list|echo|hz|bw|drops|latency [TOPIC] [--config FILE] …\n"
               "       vb status [--config FILE]\n"
               "       vb ptt down|up | say TEXT | mode continuous|wake_word|push_to_talk | interrupt\n"
               "          | speak TEXT (the agent's voice says TEXT) | new-conversation\n"
               "          [--config FILE] [--device NAME] [--timeout SEC]\n"
               "          (waits for the receiver's answer: exit 0 accepted or queued, 1 refused,\n"
               "           69 not delivered)\n"
               "       vb keygen FILE\n"
               "       vb --print-default-config\n";
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vb::cli;
  if (argc < 2) return Usage();
  std::string cmd = argv[1];
  Args args(argv + 2, argv + argc);
  if (cmd == "run") return Run(args);
  if (cmd == "demo") return Demo(args);
  if (cmd == "keygen") return Keygen(args);
  if (cmd == "status") return ShowStatus(args);
  if (cmd == "ptt" || cmd == "say" || cmd == "mode" || cmd == "interrupt" || cmd == "speak" ||
      cmd == "new-conversation")
    return SendCommand(cmd, args);
  if (cmd == "--print-default-config") return PrintDefaultConfig();
  if (cmd == "sniff") {
    std::string sniff = vb::launcher::BinDir() + "/vb-sniff";
    std::vector<char*> av = {const_cast<char*>(sniff.c_str())};
    for (int i = 2; i < argc; ++i) av.push_back(argv[i]);
    av.push_back(nullptr);
    execv(sniff.c_str(), av.data());
    std::cerr << "vb: cannot run " << sniff << "\n";
    return 127;
  }
  if (cmd == "-h" || cmd == "--help" || cmd == "help") return Usage(), 0;
  std::cerr << "vb: unknown command '" << cmd << "'\n";
  return Usage();
}
