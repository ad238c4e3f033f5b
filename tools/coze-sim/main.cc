// vb-cozesim: command-line front end of the simulator. Parses flags, loads
// the agent script, starts the server and prints `listening HOST:PORT` as the
// first line on stdout, so a test can start it with `--port 0` and read the
// port without sleeping. Exits 0 on SIGINT/SIGTERM, 2 on bad usage.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "bus/signals.h"
#include "tools/coze-sim/agent.h"
#include "tools/coze-sim/server.h"

namespace {

const char* kUsage = R"(usage: vb-cozesim [options]
A local Coze server: WebSocket /v1/chat and the REST API on one port.
  --port N              listen port (0 = pick a free one; default 0)
  --host ADDR           listen address (default 127.0.0.1)
  --token T             accepted token (repeatable; default: any non-empty token)
  --token-file F        accepted token read from file F (first line)
  --bot-id ID           accepted bot id (repeatable; default: any bot id)
  --script FILE         agent rules (YAML); default: the built-in script
  --print-script        print the built-in script and exit
  --state-file F        keep conversations and messages in F across restarts
  --log-dir DIR         write each WS connection's received events as JSON lines,
                        and each REST request to rest.jsonl
  --recognizers N       recognition worker threads (default 2)
  --model-dir DIR       pocketsphinx model (default /usr/share/pocketsphinx/model/en-us)
  --no-grammar          recognize with the language model only
  --wait-models         load speech models before printing `listening`
  --verbose             libwebsockets notices on stderr
  --tls-cert F          serve https:// and wss:// (TLS) with the PEM certificate F
  --tls-key F           ... and its PEM private key F (both needed; see make-test-ca.sh)
faults (also at run time: POST /_sim/faults with the same names, snake_case):
  --drop-after N        close each WS connection after N downstream events
  --drop-probability P  close after any downstream event with probability P
  --stall-after N       stop sending after N events (connection stays open)
  --refuse-handshake S  answer WS handshakes with HTTP status S
  --error-code C        answer turns and REST calls with Coze error code C (4008, 4009, 5000…)
  --slow-audio F        deliver audio F times slower than real time
  --fault-connections N apply the faults to the next N connections only
  --chat-failed C       end turns with conversation.chat.failed, last_error {code: C}
                        (WebSocket and REST /v3/chat; also on open connections)
  --chat-failed-after N ... after N sentences of the answer (text and audio)
  --turn-error C        answer turns with an `error` event of code C (REST: envelope code C)
  --turn-faults N       apply --chat-failed/--turn-error to the next N turns only
)";

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts (the recognizers', the synthesizer's): they all
  // inherit the blocked SIGINT/SIGTERM, which reach only this descriptor.
  vb::StopSignals signals;
  vb::cozesim::ServerOptions opts;
  std::string script_path;
  bool wait_models = false, no_grammar = false;
  nlohmann::json faults = nlohmann::json::object();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&](const char* what) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vb-cozesim: %s needs a value\n", what);
        std::exit(2);
      }
      return argv[++i];
    };
    auto num = [&](const std::string& s, const char* what) -> double {
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end) {
        std::fprintf(stderr, "vb-cozesim: %s must be a number\n", what);
        std::exit(2);
      }
      return v;
    };
    if (a == "--port") opts.port = int(num(next("--port"), "--port"));
    else if (a == "--host") opts.host = next("--host");
    else if (a == "--token") opts.access.tokens.push_back(next("--token"));
    else if (a == "--token-file") {
      std::string text;
      if (!ReadFile(next("--token-file"), &text)) {
        std::fprintf(stderr, "vb-cozesim: cannot read the token file\n");
        return 2;
      }
      text = text.substr(0, text.find_first_of("\r\n"));
      opts.access.tokens.push_back(text);
    } else if (a == "--bot-id") opts.access.bots.push_back(next("--bot-id"));
    else if (a == "--script") script_path = next("--script");
    else if (a == "--print-script") {
      std::fputs(vb::cozesim::Agent::BuiltInScript(), stdout);
      return 0;
    } else if (a == "--log-dir") opts.log_dir = next("--log-dir");
    else if (a == "--state-file") opts.state_file = next("--state-file");
    else if (a == "--recognizers") opts.recognizer_threads = int(num(next("--recognizers"), "--recognizers"));
    else if (a == "--model-dir") opts.recognizer.model_dir = next("--model-dir");
    else if (a == "--no-grammar") no_grammar = true;
    else if (a == "--wait-models") wait_models = true;
    else if (a == "--verbose") opts.verbose = true;
    else if (a == "--tls-cert") opts.tls_cert = next("--tls-cert");
    else if (a == "--tls-key") opts.tls_key = next("--tls-key");
    else if (a == "--drop-after") faults["drop_after_events"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--drop-probability") faults["drop_probability"] = num(next(a.c_str()), a.c_str());
    else if (a == "--stall-after") faults["stall_after_events"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--refuse-handshake") faults["refuse_handshake"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--error-code") faults["error_code"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--slow-audio") faults["slow_audio"] = num(next(a.c_str()), a.c_str());
    else if (a == "--fault-connections") faults["remaining"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--chat-failed") faults["chat_failed"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--chat-failed-after") faults["chat_failed_after"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--turn-error") faults["turn_error"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "--turn-faults") faults["turn_faults_remaining"] = int(num(next(a.c_str()), a.c_str()));
    else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "vb-cozesim: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  std::string err;
  if (opts.tls_cert.empty() != opts.tls_key.empty()) {
    std::fprintf(stderr, "vb-cozesim: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (!opts.faults.Merge(faults, &err)) {
    std::fprintf(stderr, "vb-cozesim: %s\n", err.c_str());
    return 2;
  }
  if (opts.recognizer_threads < 1 || opts.recognizer_threads > 16) {
    std::fprintf(stderr, "vb-cozesim: --recognizers must be 1-16\n");
    return 2;
  }
  if (!opts.log_dir.empty()) {
    // Created here: without it every log file would fail to open, silently.
    std::error_code ec;
    std::filesystem::create_directories(opts.log_dir, ec);
    if (ec) {
      std::fprintf(stderr, "vb-cozesim: --log-dir %s: %s\n", opts.log_dir.c_str(), ec.message().c_str());
      return 2;
    }
  }
  std::unique_ptr<vb::cozesim::Agent> agent;
  if (!script_path.empty()) {
    std::string text;
    if (!ReadFile(script_path, &text)) {
      std::fprintf(stderr, "vb-cozesim: cannot read %s\n", script_path.c_str());
      return 2;
    }
    agent = vb::cozesim::Agent::FromYaml(text, &err);
    if (!agent) {
      std::fprintf(stderr, "vb-cozesim: %s: %s\n", script_path.c_str(), err.c_str());
      return 2;
    }
  } else {
    agent = vb::cozesim::Agent::BuiltIn();
  }
  opts.use_grammar = !no_grammar;
  vb::cozesim::Server server(opts, std::move(agent));
  if (!server.Start(&err)) {
    std::fprintf(stderr, "vb-cozesim: %s\n", err.c_str());
    std::fflush(stderr);
    // At once: returning would join the worker threads, which first finish
    // loading their speech models (seen taking over 20 s on a loaded machine).
    std::_Exit(1);
  }
  if (wait_models) {
    std::string merr = server.WaitModels();
    if (!merr.empty()) std::fprintf(stderr, "vb-cozesim: warning: %s\n", merr.c_str());
  }
  // lws's loop is this thread's: a watcher hands a stop signal to it.
  const int done = eventfd(0, EFD_CLOEXEC);
  std::thread watcher([&] {
    pollfd p[2] = {{signals.fd(), POLLIN, 0}, {done, POLLIN, 0}};
    while (poll(p, 2, -1) < 0 && errno == EINTR) {
    }
    if ((p[0].revents & POLLIN) && signals.Take()) server.Stop();
  });
  std::printf("listening %s:%d\n", opts.host.c_str(), server.port());
  std::fflush(stdout);
  server.Run();
  const uint64_t one = 1;
  (void)!write(done, &one, sizeof one);
  watcher.join();
  close(done);
  // Shutdown joins the worker threads (a recognizer may still be loading its
  // model). A stuck join must not keep a test's peer alive: exit regardless
  // after a grace period. (Seen once with an early build, not reproduced.)
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(10));
    std::_Exit(0);
  }).detach();
  return 0;
}
