// First-run preparation and the preflight check (see first_run.h).
#include "tools/vb/first_run.h"

#include <alsa/asoundlib.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <random>

#include "actors/common/wav.h"
#include "tools/vb/launcher.h"

#ifndef VB_SOURCE_DIR
#define VB_SOURCE_DIR ""
#endif

namespace vb::cli {
namespace {

bool Exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

std::string Absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char cwd[PATH_MAX];
  return std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + p;
}

std::string DirName(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
}

// Runs argv to completion with stdout to /dev/null; its exit code (127: not found).
int Exec(const std::vector<std::string>& argv) {
  std::vector<char*> av;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO);
    execvp(av[0], av.data());
    _exit(127);
  }
  if (pid < 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// The value of a string key of an actor's section (nested by `sub` if not
// empty), ${…} expanded; `def` if absent. *unset_env is set when a ${NAME}
// in it is not set (the value is then "").
std::string ReadKey(const config::File& file, const std::string& section, const std::string& sub,
                    const std::string& key, const std::string& def, bool* unset_env = nullptr) {
  auto report = file.NewReport();
  auto s = file.Get(section, report);
  std::string v;
  if (sub.empty()) {
    s.Key(key, &v, def, "");
  } else {
    auto c = s.Sub(sub, "");
    c.Key(key, &v, def, "");
  }
  if (unset_env) *unset_env = !report->errors.empty();
  return report->errors.empty() ? v : "";
}

// "file:line:col: section.key: message" (the section's place if the key is absent).
std::string Located(const config::File& file, const std::string& section, const std::string& sub,
                    const std::string& key, const std::string& message) {
  auto report = file.NewReport();
  auto s = file.Get(section, report);
  if (sub.empty()) return s.ErrorAt(key, message).message();
  return s.Sub(sub, "").ErrorAt(key, message).message();
}

int ReadPort(const config::File& file, const std::string& section, int def) {
  auto report = file.NewReport();
  auto s = file.Get(section, report);
  int port = def;
  s.Key("port", &port, def, {1, 65535}, "");
  return report->errors.empty() ? port : def;
}

// True if host:port can be bound now (the gateway will bind it). An
// address that does not parse is the gateway's to report.
bool PortFree(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return true;
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return true;
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as servers do: TIME_WAIT is not "taken"
  const bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  const int err = errno;
  close(s);
  errno = err;
  return ok;
}

bool HasSoundCard() {
  int card = -1;
  return snd_card_next(&card) == 0 && card >= 0;
}

// alsa-lib's own lines ("ALSA lib confmisc.c:855: cannot find card '0'") would
// bury the summary; its error code says the same.
void QuietAlsa(const char*, int, const char*, int, const char*, ...) {}

// "" if the ALSA PCM opens, else why not.
std::string OpenAlsa(const std::string& device, snd_pcm_stream_t stream) {
  snd_lib_error_set_handler(QuietAlsa);
  snd_pcm_t* pcm = nullptr;
  int err = snd_pcm_open(&pcm, device.c_str(), stream, SND_PCM_NONBLOCK);
  if (err == 0) {
    snd_pcm_close(pcm);
    return "";
  }
  return snd_strerror(err);
}

std::string AlsaMissing(const config::File& file, const std::string& name, bool capture) {
  const std::string device = ReadKey(file, name, "alsa", "device", "default");
  const std::string why = OpenAlsa(device, capture ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK);
  if (why.empty()) return "";
  const std::string what = capture ? "microphone" : "speaker";
  const std::string list = capture ? "arecord -L" : "aplay -L";
  std::string line = "no " + what + " for " + name + ": " +
                     Located(file, name, "alsa", "device", "ALSA device '" + device + "' does not open (" + why + ")");
  if (!HasSoundCard()) line += "; this machine has no sound card";
  line += ".\n      Plug one in (and add this user to the audio group), or set " + name + ".alsa.device to one of `" +
          list + "`, or use " + name + (capture ? ".source: wav" : ".sink: wav") +
          " (config/demo.yaml does: WAV in and out).";
  return line;
}

}  // namespace

Status ResolveConfig(const std::string& path, std::string* absolute) {
  if (path.empty()) return Status::Config("no config file given");
  std::vector<std::string> tried = {Absolute(path)};
  if (path[0] != '/') {
    // Installed (BIN/../share/voicebus/…) and build tree (the sources).
    std::string rel = path;
    while (rel.rfind("./", 0) == 0) rel.erase(0, 2);
    const std::string share = launcher::BinDir() + "/../share/voicebus/";
    tried.push_back(share + rel);
    if (rel.find('/') == std::string::npos) tried.push_back(share + "config/" + rel);
    if (*VB_SOURCE_DIR) tried.push_back(std::string(VB_SOURCE_DIR) + "/" + rel);
  }
  for (const auto& t : tried) {
    if (!Exists(t)) continue;
    char real[PATH_MAX];
    *absolute = realpath(t.c_str(), real) ? std::string(real) : t;
    return Status::Ok();
  }
  std::string where;
  for (const auto& t : tried) where += "\n  " + t;
  return Status::Config(path + ": cannot read config file; looked at:" + where);
}

void ExportSdkEnv() {
  const std::string py = launcher::BinDir() + "/../sdk/python";
  if (!getenv("VB_PROTO_PY") && access((py + "/vb/v1/header_pb2.py").c_str(), R_OK) == 0)
    setenv("VB_PROTO_PY", py.c_str(), 1);
}

void ExportConfigDir(const std::string& config_path) {
  setenv("VB_CONFIG_DIR", DirName(config_path).c_str(), 1);
  ExportSdkEnv();
}

Status RuntimeDir(std::string* dir) {
  const char* run = getenv("VB_RUN_DIR");
  const char* xdg = getenv("XDG_RUNTIME_DIR");
  const bool given = run && *run;
  std::string d = given         ? Absolute(run)
                  : xdg && *xdg ? std::string(xdg) + "/voicebus"
                                : "/tmp/voicebus-" + std::to_string(getuid());
  if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Config("cannot create the runtime folder " + d + ": " + strerror(errno) +
                          (given ? " (VB_RUN_DIR)" : " (set VB_RUN_DIR to a folder of yours)"));
  struct stat st {};
  if (lstat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::Config("the runtime folder " + d + " is not a folder");
  // A shared /tmp: a folder someone else made (or may write into) could
  // hand our actors a fake bus or read the simulator's token.
  if (st.st_uid != getuid())
    return Status::Config("the runtime folder " + d + " belongs to someone else (uid " + std::to_string(st.st_uid) +
                          "): set VB_RUN_DIR to a folder of yours");
  if (!given && (st.st_mode & 077) != 0 && chmod(d.c_str(), 0700) != 0)
    return Status::Config("cannot make the runtime folder " + d + " private: " + strerror(errno));
  if (given && (st.st_mode & 022) != 0)
    return Status::Config("the runtime folder " + d + " (VB_RUN_DIR) is writable by others: chmod go-w it");
  setenv("VB_RUN_DIR", d.c_str(), 1);
  *dir = d;
  return Status::Ok();
}

Status WriteSimulatorToken(const std::string& path) {
  std::random_device rd;
  char token[40];
  snprintf(token, sizeof token, "demo-%08x%08x", rd(), rd());
  const mode_t old = umask(077);
  std::ofstream(path) << token << "\n";
  umask(old);
  if (!Exists(path)) return Status::Config("cannot write the simulator's token to " + path);
  return Status::Ok();
}

Status SpeakQuestion(const std::string& question, const std::string& wav) {
  if (Exec({"espeak-ng", "-v", "en-us", "-s", "150", "-w", wav, question}) != 0)
    return Status::Unavailable(
        "espeak-ng could not synthesise the question (is it installed? apt install espeak-ng, "
        "or tools/bootstrap.sh)");
  // The speaker waits a second, as a person would: espeak-ng starts within
  // 2 ms, and capture plays the file from the moment vb-afe listens, while
  // the actors after it may still be joining the bus (once seen: "what
  // time is it" heard as "ta eat").
  audio::PcmBuffer q;
  if (Status st = audio::ReadWav(wav, &q); !st.ok()) return st;
  q.samples.insert(q.samples.begin(), size_t(q.sample_rate) * q.channels, int16_t(0));
  return audio::WriteWav(wav, q);
}

Status PrepareSimulatorFiles(const std::string& config_path, const launcher::LauncherConfig& lc,
                             const std::string& run_dir, std::vector<std::string>* made) {
  if (lc.simulator) {
    const auto& a = lc.simulator_args;
    for (size_t i = 0; i + 1 < a.size(); ++i) {
      if (a[i] != "--token-file" || Exists(a[i + 1])) continue;
      if (Status st = WriteSimulatorToken(a[i + 1]); !st.ok()) return st;
      made->push_back("made a throwaway token for the simulator in " + a[i + 1]);
    }
  }
  config::File file;
  if (Status st = file.Load(config_path); !st.ok()) return st;
  for (const auto& e : launcher::ParseActors(lc.actors)) {
    if (e.kind != "capture" || ReadKey(file, e.name, "", "source", "alsa") != "wav") continue;
    const std::string wav = ReadKey(file, e.name, "wav", "path", "");
    if (wav.empty() || Exists(wav) || wav.rfind(run_dir + "/", 0) != 0) continue;
    const std::string question = "What time is it?";
    if (Status st = SpeakQuestion(question, wav); !st.ok()) return st;
    made->push_back("made " + wav + " as " + e.name + "'s microphone (espeak-ng: \"" + question + "\")");
  }
  return Status::Ok();
}

std::vector<std::string> Preflight(const std::string& config_path, const launcher::LauncherConfig& lc) {
  std::vector<std::string> missing;
  config::File file;
  if (Status st = file.Load(config_path); !st.ok()) return {st.message()};
  for (const auto& e : launcher::ParseActors(lc.actors)) {
    if (e.kind == "gateway") {
      const int port = ReadPort(file, e.name, 5500);
      const std::string host = ReadKey(file, e.name, "", "host", "127.0.0.1");
      if (!PortFree(host, port)) {
        const std::string why = strerror(errno);
        missing.push_back(
            "no free port for the dashboard: " +
            Located(file, e.name, "", "port", host + ":" + std::to_string(port) + " is taken (" + why + ")") +
            ".\n      Stop what uses it, or choose another: " + e.name +
            ".port (config/demo.yaml: VB_GATEWAY_PORT=N).");
      }
    } else if (e.kind == "session") {
      bool unset = false;
      const std::string bot = ReadKey(file, e.name, "", "bot_id", "", &unset);
      if (bot.empty())
        missing.push_back(
            "no Coze bot id: " + Located(file, e.name, "", "bot_id", unset ? "names an unset variable" : "is empty") +
            ".\n      export COZE_BOT_ID=<your bot's id: the number in its coze.cn page's address>, "
            "or set " +
            e.name + ".bot_id in " + config_path + ".");
      const std::string token_file = ReadKey(file, e.name, "", "token_file", "", &unset);
      if (unset) {
        missing.push_back("no Coze token: " + e.name + ".token_file names an unset variable.");
      } else if (!token_file.empty()) {
        std::ifstream in(token_file);
        std::string first;
        std::getline(in, first);
        if (!in && first.empty())
          missing.push_back("no Coze token: cannot read " + e.name + ".token_file " + token_file + " (" +
                            strerror(errno) + ").");
        else if (first.find_first_not_of(" \t\r") == std::string::npos)
          missing.push_back("no Coze token: " + token_file + " is empty.");
      } else {
        const char* env = getenv("COZE_API_TOKEN");
        if (!env || std::string(env).find_first_not_of(" \t\r\n") == std::string::npos)
          missing.push_back(
              "no Coze token.\n      export COZE_API_TOKEN=<a personal access token: coze.cn → API → "
              "Personal Access Tokens>, or name a file holding it in " +
              e.name + ".token_file.");
      }
    } else if (e.kind == "capture" && ReadKey(file, e.name, "", "source", "alsa") == "alsa") {
      std::string line = AlsaMissing(file, e.name, true);
      if (!line.empty()) missing.push_back(line);
    } else if (e.kind == "playback" && ReadKey(file, e.name, "", "sink", "alsa") == "alsa") {
      std::string line = AlsaMissing(file, e.name, false);
      if (!line.empty()) missing.push_back(line);
    } else if (e.kind == "capture" && ReadKey(file, e.name, "", "source", "alsa") == "wav") {
      const std::string wav = ReadKey(file, e.name, "wav", "path", "");
      if (!wav.empty() && !Exists(wav))
        missing.push_back("no WAV file for " + e.name +
                          "'s microphone: " + Located(file, e.name, "wav", "path", wav + " does not exist") + ".");
    }
  }
  return missing;
}

Dashboard FindDashboard(const std::string& config_path, const launcher::LauncherConfig& lc) {
  config::File file;
  if (!file.Load(config_path).ok()) return {};
  for (const auto& e : launcher::ParseActors(lc.actors)) {
    if (e.kind != "gateway") continue;
    std::string host = ReadKey(file, e.name, "", "host", "127.0.0.1");
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    Dashboard d;
    d.url = "http://" + host + ":" + std::to_string(ReadPort(file, e.name, 5500)) + "/";
    d.token_file = ReadKey(file, e.name, "", "token_file", "");
    if (d.token_file.empty()) {
      // The gateway's own default (actors/gateway/README.md, generate_token).
      const char* xdg = getenv("XDG_RUNTIME_DIR");
      d.token_file = std::string(xdg && *xdg ? xdg : "/tmp") + "/vb-gateway-" + std::to_string(getuid()) + ".token";
    }
    return d;
  }
  return {};
}

}  // namespace vb::cli
