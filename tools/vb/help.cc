// The help texts of `vb` and its argument parser (see help.h).
#include "tools/vb/help.h"

#include <cstdio>
#include <iostream>

namespace vb::cli {
namespace {

const char kOverview[] =
    "usage: vb COMMAND [ARGS…]      vb help TOPIC      vb COMMAND --help\n"
    "\n"
    "voicebus: a voice assistant for Coze agents, one process per stage on a ZeroMQ bus.\n"
    "`vb run` starts and watches them; the other commands talk to a running assistant.\n";

const std::vector<HelpTopic> kTopics = {
    {"run", "start the assistant (broker, simulator, actors) and keep it going",
     "usage: vb run [CONFIG | --config CONFIG] [--quiet] [--role all|hub|satellite] [--device NAME]\n"
     "\n"
     "Starts the broker (and the local Coze simulator if launcher.simulator), then the actors of\n"
     "launcher.actors, and keeps them going until Ctrl-C or SIGTERM. CONFIG defaults to\n"
     "config/demo.yaml; a relative CONFIG not found from the current folder is looked up in the\n"
     "installed configs (share/voicebus) and the source tree, so `vb run config/demo.yaml` works\n"
     "from any folder.\n"
     "\n"
     "Before anything starts, everything the config needs is checked (the Coze token and bot id,\n"
     "the sound cards of ALSA capture and playback, the dashboard's port) and ONE summary of what\n"
     "is missing, with what to do, is printed (exit 78). With the simulator, its throwaway token is made on the spot,\n"
     "and a missing WAV microphone inside the runtime folder is spoken with espeak-ng.\n"
     "\n"
     "On a terminal the dialog is shown live (state, what was heard, what the agent says) and\n"
     "the dashboard's address; --quiet shows only the launcher's lines.\n"
     "\n"
     "Restarts: a crashed child is restarted at once, back-off (1 s doubling to 32 s) only for a\n"
     "crash loop; an actor silent for launcher.heartbeat_timeout_ms while the bus works is killed\n"
     "and restarted; an actor that exits 78 (config error) is not restarted and `vb run` exits 78\n"
     "when stopped.\n"
     "\n"
     "Under systemd (Type=notify, `vb help systemd`) it reports READY=1 once every actor has sent\n"
     "its first heartbeat, WATCHDOG=1 from its loop, and STATUS= with the dialog state.\n"
     "\n"
     "Hub and satellites (devices.list, `vb help config`): --role hub runs the broker, launcher.actors\n"
     "and the actors of devices that are not satellites; --role satellite [--device NAME] runs one\n"
     "satellite: its own bus (vb-broker --satellite NAME, joined to the hub at bus.endpoint over\n"
     "tcp:// with CURVE, redialled whenever the hub is lost) and its devices.actors (KIND@NAME).\n"
     "Default (launcher.role): all, everything on this host.\n"
     "\n"
     "  --quiet    no live dialog view\n"
     "  --role R   all, hub or satellite (overrides launcher.role)\n"
     "  --device D role satellite: the device this host is (overrides launcher.device)\n"
     "Environment: VB_RUN_DIR (runtime folder, `vb help files`), COZE_API_TOKEN, COZE_BOT_ID.\n"},
    {"demo", "one spoken exchange with the (simulated) agent, WAV in and out",
     "usage: vb demo [--config FILE] [--say TEXT] [--out DIR] [--timeout SEC] [--turns N]\n"
     "\n"
     "The main job: runs the pipeline of FILE (default config/demo.yaml: the local Coze simulator,\n"
     "a WAV file as microphone and speaker), speaks TEXT (default \"What time is it?\", synthesised\n"
     "with espeak-ng) into it, shows the dialog live, and stops once N replies (default 1) have\n"
     "been played, naming the WAV file the reply is in.\n"
     "\n"
     "  --config FILE   pipeline to run (default config/demo.yaml, found as for `vb run`)\n"
     "  --say TEXT      the question\n"
     "  --out DIR       output folder, VB_RUN_DIR for the config (default ./vb-demo-out)\n"
     "  --timeout SEC   give up after SEC seconds (default 120)\n"
     "  --turns N       stop after N replies (default 1)\n"
     "Exit: 0 the reply was played, 1 failed or timed out, 78 config error, 130 interrupted.\n"},
    {"status", "actor health from their heartbeats",
     "usage: vb status [--config FILE] [--duration SEC]\n"
     "\n"
     "Listens to heartbeats for SEC seconds (default 1.5) and prints one line per actor: state,\n"
     "pid, messages in/out, drops, malformed input, CPU, memory. Exit 1 if nobody beats.\n"
     "Without --config: the bus of the `vb run` going, else the built-in default.\n"},
    {"sniff", "the bus sniffer (vb-sniff): list, echo, hz, bw, drops, latency, record, replay, info, recover",
     "usage: vb sniff list|echo|hz|bw|drops|latency [TOPIC] [--config FILE] [--json] …\n"
     "       vb sniff record FILE.mcap [TOPIC…] | replay FILE.mcap | info FILE.mcap | recover IN OUT\n"
     "\n"
     "Runs vb-sniff with the same arguments; `vb sniff --help` prints all of its options.\n"
     "Without --config or --endpoint the commands that listen (list … record, replay) use the bus\n"
     "of the `vb run` going, else the built-in default (vb-sniff itself: only the latter).\n"},
    {"tune", "offline tuning: a recording's mic + reference through vb-afe and vb-wakevad, two configs side by side",
     "usage: vb tune afe RECORDING.mcap [--set SECTION.KEY=VALUE …] [--config FILE] [--out DIR] [--json]\n"
     "\n"
     "Runs vb-tune with the same arguments; `vb tune --help` says what it prints.\n"},
    {"contract", "what every actor kind subscribes to and publishes, and a conformance test for replacements",
     "usage: vb contract [KIND] [--json] [--config FILE]\n"
     "       vb contract test KIND -- COMMAND [ARG…]\n"
     "\n"
     "vb contract asks each actor binary (vb-KIND --contract) what it declares once configured on a\n"
     "private in-process bus (defaults, or --config FILE): topics in and out with payload type and\n"
     "plane, its config section, heartbeat and stop duties. The wire itself: docs/wire.md.\n"
     "vb contract test starts a private broker and COMMAND --config F --name KIND, feeds the kind's\n"
     "inputs and checks the outputs a user depends on (wakevad: speech → SPEECH_START/END; afe:\n"
     "audio.mic → contiguous audio.clean; capture: a WAV → audio.mic; playback: a turn of audio.out\n"
     "→ STARTED, DRAINED, audio.ref; decoder: packets → audio.out; control, session: commands acked;\n"
     "tools: an offer → tool.catalog; gateway: a call for a gone client → an error answer), then\n"
     "heartbeats, seq, malformed frames counted and survived, and exit 0 within 2 s of SIGTERM\n"
     "(tests/integration/contract/conformance.py; needs python3-zmq, python3-protobuf).\n"
     "Exit: 0 conforms, 1 does not, 64 bad command line.\n"},
    {"ptt", "push to talk: key down / key up",
     "usage: vb ptt down|up [--config FILE] [--device NAME] [--timeout SEC]\n"
     "\n"
     "Key down cancels what the agent says and starts streaming; key up ends the question.\n"
     "Waits for vb-control's answer on dialog.ack: exit 0 accepted or queued, 1 refused (with\n"
     "the reason), 69 not delivered (nobody listens, or no answer within SEC, default 3).\n"},
    {"say", "type a question to the agent",
     "usage: vb say TEXT… [--config FILE] [--device NAME] [--timeout SEC]\n"
     "\n"
     "Sends TEXT as the user's turn; the reply is spoken. Waits for vb-session's answer: exit 0\n"
     "accepted or queued (offline: sent on reconnect), 1 refused, 69 not delivered.\n"
     "Without --config it reaches the `vb run` going (its config, noted in the runtime folder),\n"
     "else the built-in default bus. With --config, the runtime folder is vb run's (`vb help\n"
     "files`), so `vb say --config config/demo.yaml hi` reaches `vb run config/demo.yaml`.\n"
     "Use `vb say -- -TEXT` for a text that starts with a dash.\n"},
    {"speak", "the agent's voice says a text (an announcement)",
     "usage: vb speak TEXT… [--config FILE] [--device NAME] [--timeout SEC]\n"
     "\n"
     "The agent's voice says TEXT (1-1023 bytes): no reply from the agent, and what it was saying\n"
     "stops. Waits for vb-session's answer: exit 0 accepted, 1 refused (e.g. offline), 69 not\n"
     "delivered.\n"},
    {"mode", "switch the dialog mode",
     "usage: vb mode continuous|wake_word|push_to_talk [--config FILE] [--device NAME] [--timeout SEC]\n"
     "\n"
     "Switches vb-control's mode (`vb help modes`). Exit 0 accepted, 1 refused, 69 not delivered.\n"},
    {"interrupt", "stop what the agent is saying",
     "usage: vb interrupt [--config FILE] [--device NAME] [--timeout SEC]\n"
     "\n"
     "Barge-in by command: playback flushes, the chat is cancelled. Exit 0 accepted, 1 refused,\n"
     "69 not delivered.\n"},
    {"new-conversation", "forget what was said before",
     "usage: vb new-conversation [--config FILE] [--device NAME] [--timeout SEC]\n"
     "\n"
     "Starts a new conversation: the agent no longer sees what was said before (Coze\n"
     "conversation.clear). Exit 0 accepted or queued (offline: cleared on reconnect), 1 refused,\n"
     "69 not delivered.\n"},
    {"keygen", "a CURVE key pair for a tcp:// bus",
     "usage: vb keygen FILE\n"
     "\n"
     "Writes a new CURVE key pair to FILE (mode 0600) and prints the public key. List public keys\n"
     "in the broker's bus.curve allow-list; give each host its own FILE (bus.curve.key_file).\n"},
    {"print-default-config", "every config key of every section, documented",
     "usage: vb --print-default-config [--config FILE]\n"
     "\n"
     "Prints the bus, devices and launcher sections and every actor's section with each key's\n"
     "default, range and meaning. With --config, also the section of every actor that FILE runs\n"
     "through `command:` (asked from the program itself: COMMAND --print-default-config).\n"},
    {"help", "these texts",
     "usage: vb help [TOPIC | --all | --man]\n"
     "\n"
     "Without TOPIC: the list of topics. --all: every topic; --man: the vb(1) man page (roff).\n"},
    {"config", "the config file",
     "usage: vb run CONFIG   (and --config FILE of the other commands)\n"
     "\n"
     "One YAML file: `bus` (endpoint, CURVE), `devices` (names), `launcher` (actors to run,\n"
     "simulator, log folder, restart policy) and one section per actor instance, named as in\n"
     "launcher.actors. config/default.yaml: the real Coze service and the sound card;\n"
     "config/demo.yaml: the local simulator, WAV in and out, and the dashboard.\n"
     "\n"
     "Values may use the environment: ${NAME} (an unset NAME is an error) or ${NAME:-DEFAULT}.\n"
     "`vb run` and `vb demo` set VB_RUN_DIR (the runtime folder), VB_CONFIG_DIR (the folder of\n"
     "the config file, for paths next to it) and, with the simulator, VB_SIM_PORT.\n"
     "Unknown keys, wrong types, duplicate keys and bad values are errors naming file:line:key\n"
     "(exit 78). Secrets never go in the file: COZE_API_TOKEN or session.token_file.\n"
     "`vb --print-default-config` documents every key.\n"},
    {"modes", "continuous, wake word, push to talk",
     "usage: control.mode: continuous|wake_word|push_to_talk   (or `vb mode MODE` at run time)\n"
     "\n"
     "continuous: the service's VAD ends each turn, no wake word. wake_word: the device waits for\n"
     "the wake phrase (wakevad.wake.phrase), listens for one turn or until a timeout, then idles.\n"
     "push_to_talk: `vb ptt down` (or a key, or the dashboard) cancels and starts streaming,\n"
     "`vb ptt up` ends the question. In every mode, speech or the wake word while the agent\n"
     "speaks interrupts it (control.barge_in).\n"},
    {"files", "the runtime folder and the files vb uses",
     "usage: VB_RUN_DIR=DIR vb run CONFIG\n"
     "\n"
     "The runtime folder is VB_RUN_DIR if set, else $XDG_RUNTIME_DIR/voicebus, else\n"
     "/tmp/voicebus-UID; vb creates it with mode 0700 and refuses one owned by someone else (or a\n"
     "VB_RUN_DIR others may write into). config/demo.yaml keeps there: the bus sockets, the simulator's throwaway\n"
     "token (sim-token), the WAV microphone (question.wav) and speaker (reply.wav), logs/ (one log\n"
     "per actor), the gateway's token (gateway-token) and the session's state.\n"
     "A relative config is looked up in the current folder, then PREFIX/share/voicebus (installed),\n"
     "then the source tree. `cmake --install` puts man pages in share/man/man1, the systemd units\n"
     "in lib/systemd/system and the voicebus user's entry in lib/sysusers.d.\n"},
    {"systemd", "running under systemd",
     "usage: systemctl enable --now voicebus.service\n"
     "\n"
     "voicebus.service runs `vb run /etc/voicebus/voicebus.yaml` as Type=notify under the user\n"
     "voicebus (sysusers.d, in the audio group), with its runtime folder in /run/voicebus and\n"
     "hardening (ProtectSystem=strict, NoNewPrivileges, …). vb reports READY=1 after every\n"
     "actor's first heartbeat, WATCHDOG=1 at half of WatchdogSec from its loop, and STATUS= with\n"
     "the dialog state (`systemctl status voicebus`). An actor's config error before READY\n"
     "fails the start at once with 78 (not restarted). The token comes from\n"
     "/etc/voicebus/voicebus.env (EnvironmentFile, mode 0600).\n"
     "\n"
     "One actor per unit instead (systemd supervises, no launcher): voicebus-broker.service and\n"
     "voicebus-actor@NAME.service (NAME is an instance of launcher.actors; kind = NAME).\n"
     "Logs go to journald with their levels (journalctl -u voicebus -p warning).\n"},
    {"exit-codes", "what the exit codes mean",
     "usage: echo $?\n"
     "\n"
     "0 done; 1 failed (or refused by the receiver); 64 bad command line; 69 not delivered\n"
     "(nobody listens on the bus, or no answer in time); 78 config error or something the config\n"
     "needs is missing (token, bot id, sound card); 127 a binary could not be run; 130\n"
     "interrupted.\n"},
};

std::string UsageLines(const HelpTopic& t) {
  std::string text = t.text;
  size_t blank = text.find("\n\n");
  return blank == std::string::npos ? text : text.substr(0, blank + 1);
}

// roff needs backslashes doubled and lines that start with . or ' escaped.
std::string Roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
    line_start = c == '\n';
  }
  return out;
}

int PrintMan() {
  std::cout << ".TH VB 1 \"\" \"voicebus\" \"User Commands\"\n"
               ".SH NAME\nvb \\- the voicebus voice assistant: run it, talk to it, watch it\n"
               ".SH SYNOPSIS\n.nf\n"
            << Roff("vb COMMAND [ARGS…]\nvb help TOPIC\nvb COMMAND --help\n") << ".fi\n.SH DESCRIPTION\n.nf\n"
            << Roff(kOverview) << ".fi\n";
  for (const auto& t : kTopics)
    std::cout << ".SH \"" << t.name << "\"\n" << Roff(t.summary) << "\n.PP\n.nf\n" << Roff(t.text) << ".fi\n";
  std::cout << ".SH SEE ALSO\nvb\\-sniff(1), vb\\-broker(1), vb\\-cozesim(1), vb\\-session(1), systemd.service(5)\n";
  return 0;
}

}  // namespace

const std::vector<HelpTopic>& HelpTopics() { return kTopics; }

const HelpTopic* FindHelp(std::string_view name) {
  for (const auto& t : kTopics)
    if (name == t.name) return &t;
  return nullptr;
}

int PrintHelp(std::string_view topic) {
  const HelpTopic* t = FindHelp(topic);
  std::cout << (t ? t->text : kOverview);
  return 0;
}

int UsageError(std::string_view topic, const std::string& message) {
  std::cerr << "vb " << topic << ": " << message << "\n";
  if (const HelpTopic* t = FindHelp(topic)) std::cerr << UsageLines(*t);
  std::cerr << "(vb help " << topic << " for more)\n";
  return 64;
}

int Help(const Args& args) {
  if (args.empty()) {
    std::cout << kOverview << "\ncommands and topics (vb help TOPIC):\n";
    for (const auto& t : kTopics) printf("  %-22s %s\n", t.name, t.summary);
    return 0;
  }
  if (args.size() == 1 && args[0] == "--all") {
    std::cout << kOverview;
    for (const auto& t : kTopics) std::cout << "\n== " << t.name << " — " << t.summary << "\n" << t.text;
    return 0;
  }
  if (args.size() == 1 && args[0] == "--man") return PrintMan();
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) return PrintHelp("help");
  if (args.size() == 1 && FindHelp(args[0])) return PrintHelp(args[0]);
  std::string list;
  for (const auto& t : kTopics) list += (list.empty() ? "" : ", ") + std::string(t.name);
  return UsageError("help", "no topic '" + (args.empty() ? "" : args[0]) + "'; topics: " + list);
}

bool WantsHelp(const Args& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

bool ParseArgs(const Args& in, const std::vector<OptionSpec>& spec, std::map<std::string, std::string>* options,
               Args* positionals, std::string* error) {
  bool only_positionals = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& a = in[i];
    if (only_positionals || a == "-" || a.empty() || a[0] != '-') {
      positionals->push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    const OptionSpec* found = nullptr;
    for (const auto& s : spec)
      if (s.name == a) found = &s;
    if (!found) {
      *error = "unknown option '" + a + "'";
      return false;
    }
    if (!found->takes_value) {
      (*options)[a] = "";
      continue;
    }
    if (i + 1 >= in.size()) {
      *error = a + " needs a value";
      return false;
    }
    const std::string& v = in[i + 1];
    if (v.rfind("--", 0) == 0) {
      *error = a + " needs a value, not the option '" + v + "'";
      return false;
    }
    (*options)[a] = v;
    ++i;
  }
  return true;
}

}  // namespace vb::cli
