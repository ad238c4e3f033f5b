// vb-chaos: the promise under everything voicebus does — any stage can crash,
// restart or misbehave and the dialog goes on, and no turn ends in silence —
// measured on the real product. `vb run` starts the broker, the simulator
// and every actor (gateway included); the microphone is ALSA `pulse` on a
// private PulseAudio null sink into which the "user" speaks (paplay of
// espeak-ng questions), the speaker a WAV file. While voice and text turns
// alternate (a text turn is `vb say`, exactly as a user types it), a killer
// sends SIGKILL to a random actor or the broker every 2–5 s.
//
// Every turn is classified, by what the person would notice:
//   completed        TurnEnded COMPLETED with the agent's answer
//   reported         the person was told: TurnEnded FAILED/CANCELLED, or
//                    `vb say` exited non-zero with a reason, or — a voice
//                    question that never became a turn — vb-control showed
//                    the device deaf (dialog.state deaf) during the question,
//                    or vb-session, killed, came back without the question
//                    and said so (SessionError 410: the error prompt plays)
//   lost             anything else: no outcome in time, a turn no kill
//                    touched that did not complete, or a voice question
//                    unheard while nothing said the device was deaf
// Restart time per actor is the kill (CLOCK_MONOTONIC) to the first
// heartbeat of the new process by its own publish stamp; the broker's is
// the kill to the first message through the new broker (arrival time). The
// deaf stretch is the longest gap in audio.clean by the front end's stamps;
// deaf reports are vb-control's dialog.state deaf stretches, by its stamps,
// and gaps in audio.clean of 1 s or more that no report overlapped are
// listed (deaf_unreported: control itself being restarted, say).
//
// With --kills 0 it is a soak: RSS (heartbeats) and open descriptors
// (/proc/PID/fd) of every process, first minutes against last minutes.
//
//   vb-chaos [--duration S] [--kills N] [--min-gap S] [--max-gap S]
//            [--seed N] [--no-broker] [--check] [--out FILE]
//
// Prints one JSON object. --check exits 1 when a promise is broken (the
// ctest entry e2e_chaos runs it for 200 s).
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "bus/node.h"
#include "tests/support/process.h"
#include "tests/support/sim_config.h"

namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using vb::testing::Bin;
using vb::testing::Child;
using vb::testing::ReadFile;
using vb::testing::RunCommand;
using vb::testing::TempDir;
namespace v1 = vb::v1;
namespace bus = vb::bus;

const std::vector<std::string> kActors = {"control", "session", "decoder", "playback",
                                          "afe",     "wakevad", "capture", "gateway"};
// Stages without which a spoken question cannot become a turn.
const std::set<std::string> kMicPath = {"capture", "afe", "wakevad", "session", "broker"};
// Stages whose death stops audio.clean: what vb-control reports as deaf.
const std::set<std::string> kHearingPath = {"capture", "afe", "broker"};

struct Options {
  double duration_s = 200;
  int kills = -1;  // -1: as many as fit in the duration; 0: soak
  double min_gap_s = 2, max_gap_s = 5;
  uint32_t seed = 0;
  bool kill_broker = true;
  std::vector<std::string> only;  // --only: kill just these targets
  bool check = false;
  bool wake = false;      // the wake spotter on: vb-control's wake guard holds the uplink while the agent speaks
  std::string keep_logs;  // copy every process's log here at the end when a turn went bad
  std::string out;
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())))];
}

Json Summary(const std::vector<double>& v) {
  if (v.empty()) return Json{{"count", 0}};
  return Json{{"count", v.size()}, {"p50", Pct(v, 50)}, {"p99", Pct(v, 99)}, {"max", Pct(v, 100)}};
}

int CountFds(int pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n - 2;
}

long RssKbOf(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/statm");
  long pages = 0, resident = 0;
  if (!(f >> pages >> resident)) return -1;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct Kill {
  std::string target;
  int pid = -1;
  int64_t t_ns = 0;
  double restart_ms = NAN;  // NAN until seen
};

struct Turn {
  int index = 0;
  std::string kind;  // voice | text
  int64_t t0_ns = 0, t_input_end_ns = 0, t_outcome_ns = 0;
  std::string turn_id, outcome, detail;
  int say_exit = INT_MIN;
  std::string say_output;
  std::vector<std::string> touched_by;  // kills between t0 - 1 s and the outcome
  double report_after_kill_ms = NAN;
};

// A stretch vb-control reported the device deaf (its publish stamps).
struct Deaf {
  int64_t from_ns = 0, to_ns = 0;  // to_ns 0: still deaf
  std::string reason;
};

class Chaos {
 public:
  explicit Chaos(Options o) : o_(std::move(o)), rng_(o_.seed ? o_.seed : std::random_device{}()) {}
  int Run();

 private:
  bool Until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    return vb::testing::RunUntil(loop_, pred, timeout);
  }
  bool StartPulse();
  void StopPulse();
  bool WriteConfig();
  bool Subscribe();
  bool StartVb();
  void ScheduleKill();
  void DoKill();
  int BrokerPid() const;
  void Sample();  // soak figures, every 10 s
  void RunTurn(int index);
  std::string Utterance(const std::string& text, const std::string& name);
  Json Report();
  bool Ready() const { return connected_ && state_ == v1::STATE_LISTENING; }
  double ElapsedS() const { return double(bus::MonoNs() - start_ns_) / 1e9; }
  bool Done() const {
    if (o_.kills > 0) return int(kills_.size()) >= o_.kills;
    return ElapsedS() >= o_.duration_s;
  }

  Options o_;
  std::mt19937 rng_;
  TempDir dir_;
  std::string source_dir_;
  std::vector<std::string> pulse_env_;
  bool pulse_ = false;
  std::string endpoint_, config_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_;
  Child vb_;
  int64_t start_ns_ = 0;

  // What the bus says.
  std::map<std::string, int> pid_;                                    // actor → pid of its latest heartbeat
  std::map<std::string, int64_t> last_beat_ns_;                       // actor → arrival of its latest heartbeat
  std::map<std::string, std::vector<std::pair<int64_t, long>>> rss_;  // soak: (t, rss_kb)
  std::map<std::string, std::vector<std::pair<int64_t, int>>> fds_;
  bool connected_ = false;
  v1::DialogStateKind state_ = v1::STATE_UNSPECIFIED;
  std::set<std::string> conversations_;
  struct Event {
    int64_t t_ns;
    std::string turn_id;
    v1::SessionEvent ev;
  };
  std::vector<Event> events_;
  int64_t last_clean_ns_ = 0;
  std::vector<std::pair<int64_t, int64_t>> clean_gaps_;  // audio.clean gaps >= 1 s (stamps)
  std::vector<Deaf> deaf_;
  // vb-session's "I missed what was said while restarting" (SessionError 410:
  // audio lost across its restart that vb-wakevad's ring no longer held),
  // by its publish stamps.
  std::vector<std::pair<int64_t, std::string>> missed_;
  // vb-session's missed-audio report for an unheard question: after a kill of
  // vb-session from 1 s before the question on, and before the turn was judged.
  const std::pair<int64_t, std::string>* MissedAfterSessionKill(const Turn& t) const {
    for (const auto& r : missed_) {
      if (r.first < t.t0_ns || r.first > t.t_outcome_ns) continue;
      for (const auto& k : kills_)
        if (k.target == "session" && k.t_ns >= t.t0_ns - 1'000'000'000LL && k.t_ns <= r.first) return &r;
    }
    return nullptr;
  }
  // The deaf report overlapping [from_ns, to_ns], if any.
  const Deaf* DeafDuring(int64_t from_ns, int64_t to_ns) const {
    for (const auto& d : deaf_)
      if (d.from_ns <= to_ns && (d.to_ns == 0 || d.to_ns >= from_ns)) return &d;
    return nullptr;
  }
  double deaf_max_ms_ = 0;
  int64_t deaf_at_ns_ = 0;
  std::vector<double> wedged_;  // heartbeat silences > 6 s not explained by a kill
  int64_t last_any_msg_ns_ = 0;

  std::vector<Kill> kills_;
  std::vector<Turn> turns_;
  std::map<std::string, std::string> utterances_;
  bool stop_killing_ = false;
  int stop_ms_ = -1;
};

bool Chaos::StartPulse() {
  std::string out;
  int rc = RunCommand({"/bin/bash", source_dir_ + "/tests/tools/pulse_env.sh", "start", dir_.path()}, &out, 20000ms);
  if (rc != 0) {
    std::cerr << "vb-chaos: PulseAudio did not start: " << out << "\n";
    return false;
  }
  pulse_ = true;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("export ", 0) == 0) pulse_env_.push_back(line.substr(7));
  return true;
}

void Chaos::StopPulse() {
  if (pulse_)
    RunCommand({"/bin/bash", source_dir_ + "/tests/tools/pulse_env.sh", "stop", dir_.path()}, nullptr, 10000ms);
  pulse_ = false;
}

bool Chaos::WriteConfig() {
  const std::string d = dir_.path();
  endpoint_ = "ipc://" + dir_.File("bus");
  mkdir(dir_.File("sim").c_str(), 0700);
  dir_.Write("sim-token", "chaos-token\n");
  std::string cfg = "bus:\n  endpoint: " + endpoint_ +
                    "\ndevices:\n  names: [local]\n"
                    "launcher:\n  actors: [control, session, decoder, playback, afe, wakevad, capture, gateway]\n"
                    "  simulator: true\n"
                    "  simulator_args: [--token-file, \"" +
                    d +
                    "/sim-token\", --bot-id, \"7000000000000000001\", "
                    "--log-dir, \"" +
                    d +
                    "/sim\", --wait-models]\n"
                    "  log_dir: " +
                    d +
                    "/logs\n"
                    "capture:\n  source: alsa\n  alsa: {device: pulse, rate: 16000, channels: 1}\n"
                    "afe:\n  backend: speex\n"
                    "wakevad:\n  wake: {enabled: " +
                    std::string(o_.wake ? "true" : "false") + "}\n" + vb::testing::SimSessionSection(d, "continuous") +
                    "decoder:\n  output_rate: 16000\n"
                    "playback:\n  sink: wav\n  rate: 16000\n  wav: {path: " +
                    d +
                    "/reply.wav, realtime: true}\n"
                    "control:\n  mode: continuous\n  barge_in: {client_vad: false" +
                    std::string(o_.wake ? ", wake_guard_ms: 2500" : "") +
                    "}\n"
                    "gateway:\n  port: " +
                    std::to_string(vb::testing::FreeTcpPort()) + "\n  token_file: " + d + "/gateway-token\n";
  dir_.Write("vb.yaml", cfg);
  config_ = dir_.File("vb.yaml");
  return true;
}

bool Chaos::Subscribe() {
  bus::BusConfig bc;
  bc.endpoint = endpoint_;
  node_ = std::make_unique<bus::Node>(ctx_, loop_, "chaos", "local", bc);
  node_->Subscribe<v1::Heartbeat>(
      bus::topics::kHeartbeat,
      [this](const auto& m) {
        const int64_t now = bus::MonoNs();
        last_any_msg_ns_ = now;
        const std::string& a = m.msg.actor();
        auto last = last_beat_ns_.find(a);
        if (last != last_beat_ns_.end() && now - last->second > 6'000'000'000LL) {
          // Silent for > 6 s: explained only by a kill of this actor or the broker in that window.
          bool explained = false;
          for (const auto& k : kills_)
            if ((k.target == a || k.target == "broker") && k.t_ns >= last->second - 1'000'000'000LL) explained = true;
          if (!explained) wedged_.push_back(double(now - last->second) / 1e6);
        }
        last_beat_ns_[a] = now;
        pid_[a] = int(m.msg.pid());
        for (auto& k : kills_)
          if (k.target == a && std::isnan(k.restart_ms) && int(m.msg.pid()) != k.pid && m.header.mono_ns() > k.t_ns)
            k.restart_ms = double(m.header.mono_ns() - k.t_ns) / 1e6;
        // The broker is back when anything comes through it again.
        for (auto& k : kills_)
          if (k.target == "broker" && std::isnan(k.restart_ms) && now > k.t_ns && BrokerPid() != k.pid &&
              m.header.mono_ns() > k.t_ns)
            k.restart_ms = double(now - k.t_ns) / 1e6;
      },
      "*");
  node_->Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
    if (m.msg.has_status()) {
      connected_ = m.msg.status().connected();
      if (!m.msg.status().conversation_id().empty()) conversations_.insert(m.msg.status().conversation_id());
      return;
    }
    if (m.msg.has_error() && m.msg.error().code() == 410)
      missed_.emplace_back(m.header.mono_ns(), m.msg.error().message());
    if (m.msg.has_turn_started() && !m.msg.turn_started().conversation_id().empty())
      conversations_.insert(m.msg.turn_started().conversation_id());
    events_.push_back({bus::MonoNs(), std::string(m.header.turn_id()), m.msg});
  });
  node_->Subscribe<v1::DialogState>(bus::topics::kDialogState, [this](const auto& m) {
    state_ = m.msg.state();
    const bool open = !deaf_.empty() && deaf_.back().to_ns == 0;
    if (m.msg.deaf() && !open) deaf_.push_back({m.header.mono_ns(), 0, m.msg.deaf_reason()});
    else if (!m.msg.deaf() && open) deaf_.back().to_ns = m.header.mono_ns();
    if (!m.msg.conversation_id().empty()) conversations_.insert(m.msg.conversation_id());
  });
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioClean, [this](const auto& m) {
    const int64_t t = m.header.mono_ns();
    if (last_clean_ns_ && t - last_clean_ns_ >= 1'000'000'000LL) clean_gaps_.emplace_back(last_clean_ns_, t);
    if (last_clean_ns_ && t > last_clean_ns_ && double(t - last_clean_ns_) / 1e6 > deaf_max_ms_) {
      deaf_max_ms_ = double(t - last_clean_ns_) / 1e6;
      deaf_at_ns_ = t;
    }
    last_clean_ns_ = t;
  });
  if (!node_->Connect().ok()) return false;
  node_->SetActive(true);
  return true;
}

bool Chaos::StartVb() {
  std::vector<std::string> env = pulse_env_;
  if (!vb_.Start({Bin("vb"), "run", config_}, dir_.File("vb.log"), env)) return false;
  bool up = Until(
      [&] {
        for (const auto& a : kActors)
          if (!pid_.count(a)) return false;
        return Ready();
      },
      60000ms);
  if (!up) {
    std::cerr << "vb-chaos: pipeline not up in 60 s; vb said:\n" << ReadFile(dir_.File("vb.log")) << "\n";
    return false;
  }
  return true;
}

int Chaos::BrokerPid() const {
  static const std::regex re("broker\\s+started \\(pid (\\d+)\\)");
  std::string log = ReadFile(dir_.File("vb.log"));
  int pid = -1;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    pid = std::stoi((*it)[1]);
  return pid;
}

void Chaos::ScheduleKill() {
  if (o_.kills == 0) return;
  std::uniform_real_distribution<double> gap(o_.min_gap_s, o_.max_gap_s);
  loop_.AddOneShot(std::chrono::nanoseconds(int64_t(gap(rng_) * 1e9)), [this] {
    if (stop_killing_ || (o_.kills > 0 && int(kills_.size()) >= o_.kills)) return;
    DoKill();
    ScheduleKill();
  });
}

void Chaos::DoKill() {
  std::vector<std::string> targets = kActors;
  if (o_.kill_broker) targets.push_back("broker");
  if (!o_.only.empty()) targets = o_.only;
  std::uniform_int_distribution<size_t> pick(0, targets.size() - 1);
  Kill k;
  k.target = targets[pick(rng_)];
  k.pid = k.target == "broker" ? BrokerPid() : (pid_.count(k.target) ? pid_[k.target] : -1);
  if (k.pid <= 0) return;
  k.t_ns = bus::MonoNs();
  if (::kill(k.pid, SIGKILL) != 0) return;  // already gone (restarting): not a kill
  kills_.push_back(k);
  std::cerr << "vb-chaos: " << std::fixed;
  std::cerr.precision(1);
  std::cerr << ElapsedS() << " s kill -9 " << k.target << " (pid " << k.pid << ")\n";
}

void Chaos::Sample() {
  const int64_t now = bus::MonoNs();
  std::map<std::string, int> procs = pid_;
  procs["broker"] = BrokerPid();
  procs["vb"] = vb_.pid();
  for (const auto& [name, pid] : procs) {
    if (pid <= 0) continue;
    long rss = RssKbOf(pid);
    int fds = CountFds(pid);
    if (rss >= 0) rss_[name].emplace_back(now, rss);
    if (fds >= 0) fds_[name].emplace_back(now, fds);
  }
}

std::string Chaos::Utterance(const std::string& text, const std::string& name) {
  auto it = utterances_.find(name);
  if (it != utterances_.end()) return it->second;
  std::string raw = dir_.File(name + "-raw.wav"), wav = dir_.File(name + ".wav"), out;
  // Half a second of lead silence: paplay's first samples may be cut while its stream forms.
  if (RunCommand({"/usr/bin/env", "espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, text}, &out) != 0 ||
      RunCommand({"/usr/bin/env", "sox", "-q", raw, "-r", "16000", "-c", "1", "-b", "16", wav, "pad", "0.5", "0.3"},
                 &out) != 0) {
    std::cerr << "vb-chaos: cannot make speech: " << out << "\n";
    return "";
  }
  return utterances_[name] = wav;
}

void Chaos::RunTurn(int index) {
  Turn t;
  t.index = index;
  t.kind = index % 2 == 0 ? "voice" : "text";
  // A person speaks or types when the assistant shows it listens.
  if (!Until([&] { return Ready(); }, 20000ms)) {
    t.outcome = "lost";
    t.detail = "not ready to listen for 20 s (dialog state " + std::string(v1::DialogStateKind_Name(state_)) + ")";
    t.t0_ns = bus::MonoNs();
    turns_.push_back(t);
    return;
  }
  t.t0_ns = bus::MonoNs();
  const size_t from = events_.size();
  Child input;
  const char* question = index % 4 < 2 ? "what time is it" : "what is the date today";
  if (t.kind == "voice") {
    std::string wav = Utterance(question, index % 4 < 2 ? "time" : "date");
    input.Start({"/usr/bin/env", "paplay", "--device=vb_null", wav}, dir_.File("paplay.log"), pulse_env_);
  } else {
    input.Start({Bin("vb"), "say", question, "--config", config_}, dir_.File("say.log"), {});
  }
  const int input_pid = input.pid();
  // The input ends (paplay done, or `vb say` answered).
  Until([&] { return !input.running(); }, 20000ms);
  int rc = input.Wait(0ms);
  t.t_input_end_ns = bus::MonoNs();
  if (t.kind == "text") {
    t.say_exit = rc;
    t.say_output = ReadFile(dir_.File("say.log"));
    std::remove(dir_.File("say.log").c_str());
  }
  auto started = [&]() -> const Event* {
    for (size_t i = from; i < events_.size(); ++i) {
      const auto& e = events_[i];
      if (!e.ev.has_turn_started()) continue;
      const auto& ts = e.ev.turn_started();
      if (t.kind == "text" && ts.input() == v1::TurnStarted::TEXT &&
          (ts.request_id().empty() || ts.request_id() == "vb-" + std::to_string(input_pid)))
        return &e;
      if (t.kind == "voice" && ts.input() != v1::TurnStarted::TEXT) return &e;
    }
    return nullptr;
  };
  auto ended = [&](const std::string& id) -> const Event* {
    for (size_t i = from; i < events_.size(); ++i)
      if (events_[i].ev.has_turn_ended() && (events_[i].turn_id == id)) return &events_[i];
    return nullptr;
  };
  if (t.kind == "text" && rc != 0) {
    t.outcome = "reported";
    t.detail = "vb say exited " + std::to_string(rc);
    t.t_outcome_ns = t.t_input_end_ns;
  } else {
    // The turn starts within 10 s of the input's end (server VAD, network), then ends.
    const Event* s = nullptr;
    Until([&] { return (s = started()) != nullptr; }, 10000ms);
    if (!s) {
      t.outcome = t.kind == "voice" ? "unheard" : "lost";
      t.detail = "no TurnStarted within 10 s of the input's end";
      t.t_outcome_ns = bus::MonoNs();
    } else {
      t.turn_id = s->ev.turn_started().turn_id().empty() ? s->turn_id : s->ev.turn_started().turn_id();
      const Event* e = nullptr;
      Until([&] { return (e = ended(t.turn_id)) != nullptr; }, 45000ms);
      if (!e) {
        t.outcome = "lost";
        t.detail = "no TurnEnded within 45 s";
        t.t_outcome_ns = bus::MonoNs();
      } else {
        t.t_outcome_ns = e->t_ns;
        const auto& te = e->ev.turn_ended();
        if (te.outcome() == v1::TurnEnded::COMPLETED) {
          t.outcome = "completed";
        } else {
          t.outcome = "reported";
          t.detail = std::string(v1::TurnEnded::Outcome_Name(te.outcome())) + ": " + te.error();
        }
      }
    }
  }
  // Which kills touched it: from 1 s before it began (a stage still coming
  // back) to its outcome.
  int64_t last_kill = 0;
  bool mic_path_hit = false;
  for (const auto& k : kills_)
    if (k.t_ns >= t.t0_ns - 1'000'000'000LL && k.t_ns <= t.t_outcome_ns) {
      t.touched_by.push_back(k.target);
      last_kill = std::max(last_kill, k.t_ns);
      if (kMicPath.count(k.target) && k.t_ns <= t.t_input_end_ns + 3'000'000'000LL) mic_path_hit = true;
    }
  if (t.outcome == "unheard") {
    // The person was told only if the device showed itself deaf while they
    // spoke, and a kill on the microphone path explains it (the kill may
    // precede the question: a restarted stage takes a while to hear again).
    const Deaf* d = DeafDuring(t.t0_ns, t.t_input_end_ns);
    const Kill* cause = nullptr;
    for (const auto& k : kills_)
      if (d && kHearingPath.count(k.target) && k.t_ns <= d->from_ns) cause = &k;
    if (d && cause) {
      t.outcome = "reported";
      t.detail = "unheard; dialog.state said '" + d->reason + "'";
      t.t_outcome_ns = d->from_ns;
      // Told when the deaf report came, counted from the kill or from the
      // start of the question, whichever was later: a device already shown
      // deaf when the person began told them at once, and a microphone that
      // stalls long after a restart is reported from the stall (~400 ms),
      // not blamed on a kill seconds before.
      last_kill = std::min(std::max(cause->t_ns, t.t0_ns), d->from_ns);
      if (std::find(t.touched_by.begin(), t.touched_by.end(), cause->target) == t.touched_by.end())
        t.touched_by.push_back(cause->target);
    } else if (const auto* told = MissedAfterSessionKill(t)) {
      // vb-session came back without the question and said so (the error
      // prompt plays): told, counted from the session's kill.
      t.outcome = "reported";
      t.detail = "unheard; vb-session said '" + told->second + "'";
      t.t_outcome_ns = told->first;
      last_kill = 0;
      for (const auto& k : kills_)
        if (k.target == "session" && k.t_ns <= told->first) last_kill = k.t_ns;
    } else {
      t.outcome = "lost";
      t.detail = d ? "unheard; deaf reported with no microphone-path kill before it"
                   : std::string("unheard, and nothing said the device was deaf") +
                         (mic_path_hit ? "" : " (no microphone-path kill)");
    }
  }
  if (t.outcome == "reported" && last_kill) t.report_after_kill_ms = double(t.t_outcome_ns - last_kill) / 1e6;
  if (t.touched_by.empty() && t.outcome != "completed") {
    t.detail += " (no kill touched this turn)";
    t.outcome = "lost";
  }
  turns_.push_back(t);
  std::cerr << "vb-chaos: turn " << index << " " << t.kind << " " << t.outcome << " " << t.detail << "\n";
}

Json Chaos::Report() {
  Json j;
  j["duration_s"] = ElapsedS();
  j["seed"] = o_.seed;
  j["kills"] = kills_.size();
  std::map<std::string, std::vector<double>> restart;
  std::vector<double> all_restart;
  int not_back = 0;
  Json not_back_list = Json::array();
  for (const auto& k : kills_) {
    if (std::isnan(k.restart_ms)) {
      ++not_back;
      not_back_list.push_back(Json{{"target", k.target}, {"pid", k.pid}, {"at_s", double(k.t_ns - start_ns_) / 1e9}});
      continue;
    }
    restart[k.target].push_back(k.restart_ms);
    all_restart.push_back(k.restart_ms);
  }
  for (const auto& [a, v] : restart) j["restart_ms"][a] = Summary(v);
  j["restart_ms_all"] = Summary(all_restart);
  j["kills_not_back"] = not_back_list;
  std::map<std::string, int> by;
  std::vector<double> report_ms;
  Json bad = Json::array();
  for (const auto& t : turns_) {
    ++by[t.outcome];
    if (!std::isnan(t.report_after_kill_ms)) report_ms.push_back(t.report_after_kill_ms);
    if (t.outcome == "lost" || (t.outcome == "reported" && t.report_after_kill_ms > 3000))
      bad.push_back(Json{{"index", t.index},
                         {"kind", t.kind},
                         {"outcome", t.outcome},
                         {"detail", t.detail},
                         {"turn_id", t.turn_id},
                         {"touched_by", t.touched_by},
                         {"at_s", double(t.t0_ns - start_ns_) / 1e9},
                         {"say_output", t.say_output.substr(0, 300)}});
  }
  j["turns"] = turns_.size();
  j["turn_outcomes"] = by;
  j["turns_lost"] = by["lost"];
  j["report_after_kill_ms"] = Summary(report_ms);
  j["bad_turns"] = bad;
  j["conversation_ids"] = conversations_;
  j["longest_deaf_ms"] = deaf_max_ms_;
  std::vector<double> reported_ms;
  for (const auto& d : deaf_)
    if (d.to_ns) reported_ms.push_back(double(d.to_ns - d.from_ns) / 1e6);
  j["deaf_reports"] = deaf_.size();
  j["deaf_reported_ms"] = Summary(reported_ms);
  Json unreported = Json::array();
  for (const auto& [a, b] : clean_gaps_)
    if (!DeafDuring(a, b))
      unreported.push_back(Json{{"at_s", double(a - start_ns_) / 1e9}, {"ms", double(b - a) / 1e6}});
  j["deaf_unreported"] = unreported;
  j["longest_deaf_at_s"] = deaf_at_ns_ ? double(deaf_at_ns_ - start_ns_) / 1e9 : 0.0;
  j["unexplained_heartbeat_silences_ms"] = wedged_;
  j["vb_stop_ms"] = stop_ms_;
  // Soak: growth of RSS and descriptors, median of the first 10 % of
  // samples (after start-up) against the last 10 %.
  auto growth = [&](const auto& series) {
    Json g;
    for (const auto& [name, v] : series) {
      if (v.size() < 10) continue;
      std::vector<double> a, b;
      size_t n = std::max<size_t>(1, v.size() / 10);
      for (size_t i = 0; i < n; ++i) a.push_back(double(v[i].second)), b.push_back(double(v[v.size() - 1 - i].second));
      g[name] = Json{{"first", Pct(a, 50)}, {"last", Pct(b, 50)}, {"growth", Pct(b, 50) - Pct(a, 50)}};
    }
    return g;
  };
  if (o_.kills == 0) {
    j["rss_kb"] = growth(rss_);
    j["fds"] = growth(fds_);
  }
  return j;
}

int Chaos::Run() {
  source_dir_ = vb::testing::SourceDir();
  if (!StartPulse() || !WriteConfig() || !Subscribe() || !StartVb()) {
    StopPulse();
    return 2;
  }
  start_ns_ = bus::MonoNs();
  ScheduleKill();
  if (o_.kills == 0) loop_.AddTimer(10s, [this] { Sample(); });
  for (int i = 0; !Done(); ++i) RunTurn(i);
  stop_killing_ = true;
  // After the last kill the dialog must still work: one more turn of each kind.
  Until(
      [&] {
        for (const auto& a : kActors)
          if (!last_beat_ns_.count(a) || bus::MonoNs() - last_beat_ns_[a] > 3'000'000'000LL) return false;
        return Ready();
      },
      20000ms);
  const size_t before = turns_.size();
  RunTurn(int(before) + (before % 2));      // voice
  RunTurn(int(before) + (before % 2) + 1);  // text
  bool final_ok = turns_[before].outcome == "completed" && turns_[before + 1].outcome == "completed";
  // vb run stops everything promptly on SIGTERM.
  int64_t t = bus::MonoNs();
  int rc = vb_.Stop(SIGTERM, 15000ms);
  stop_ms_ = int((bus::MonoNs() - t) / 1'000'000);
  Json j = Report();
  j["final_turns_completed"] = final_ok;
  j["vb_exit"] = rc;
  if (rc == INT_MIN) {
    for (const auto& [name, pid] : pid_)
      if (pid > 0) ::kill(pid, SIGKILL);
  }
  StopPulse();
  std::string text = j.dump(2);
  std::cout << text << std::endl;
  if (!o_.out.empty()) std::ofstream(o_.out) << text << "\n";
  if (!o_.keep_logs.empty() && !j["bad_turns"].empty()) {
    // Every actor's log and the simulator's, to see why (times in them are
    // CLOCK_REALTIME; the JSON's at_s counts from the start).
    RunCommand({"/bin/sh", "-c", "mkdir -p \"$1\" && cp -r \"$2\"/logs \"$2\"/sim \"$2\"/vb.log \"$1\"/", "sh",
                o_.keep_logs, dir_.path()},
               nullptr, 60000ms);
    std::cerr << "vb-chaos: logs kept in " << o_.keep_logs << "\n";
  }
  if (!o_.check) return 0;
  std::vector<std::string> broken;
  if (j["turns_lost"].get<int>() > 0) broken.push_back("turns lost");
  for (const auto& t2 : turns_)
    if (t2.outcome == "reported" && t2.report_after_kill_ms > 3000) {
      broken.push_back("a failed turn was reported more than 3 s after the kill");
      break;
    }
  if (!j["kills_not_back"].empty()) broken.push_back("a killed stage never came back");
  if (conversations_.size() != 1) broken.push_back("the conversation id changed");
  if (!wedged_.empty()) broken.push_back("a process went silent without being killed");
  if (!final_ok) broken.push_back("the turns after the last kill did not complete");
  if (rc == INT_MIN || stop_ms_ > 5000) broken.push_back("vb run did not stop within 5 s of SIGTERM");
  for (const auto& b : broken) std::cerr << "vb-chaos: BROKEN: " << b << "\n";
  if (!broken.empty()) std::cerr << "vb-chaos: vb said:\n" << ReadFile(dir_.File("vb.log")) << "\n";
  return broken.empty() ? 0 : 1;
}

void Usage(std::ostream& os) {
  os << "usage: vb-chaos [--duration S] [--kills N] [--min-gap S] [--max-gap S] [--seed N]\n"
        "                [--no-broker] [--only T,..] [--wake] [--check] [--out FILE]\n"
        "                [--keep-logs DIR]\n"
        "  Runs the whole pipeline under `vb run` against vb-cozesim, alternating voice and\n"
        "  text turns while killing a random actor or the broker every 2-5 s; prints JSON.\n"
        "  --duration S   run this long (default 200)        --kills N  stop after N kills instead\n"
        "  --kills 0      a soak: no kills; RSS and descriptor growth per process\n"
        "  --check        exit 1 if a turn is lost, a stage never comes back, the conversation\n"
        "                 changes, a process wedges, or vb run does not stop on SIGTERM\n"
        "  --wake         turn the wake spotter on (continuous mode still needs no phrase): vb-control\n"
        "                 then holds the uplink while the agent thinks or speaks (the wake guard)\n"
        "  --only T,..    kill only these (broker, or actor names: control, session, ...)\n"
        "  --keep-logs D  when a turn went bad (lost, or told >3 s late), copy every process's log into folder D\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "vb-chaos: " << a << " needs a value\n";
        std::exit(64);
      }
      return argv[++i];
    };
    try {
      if (a == "--duration") o.duration_s = std::stod(next());
      else if (a == "--kills") o.kills = std::stoi(next());
      else if (a == "--min-gap") o.min_gap_s = std::stod(next());
      else if (a == "--max-gap") o.max_gap_s = std::stod(next());
      else if (a == "--seed") o.seed = uint32_t(std::stoul(next()));
      else if (a == "--no-broker") o.kill_broker = false;
      else if (a == "--only") {
        std::stringstream list(next());
        for (std::string t; std::getline(list, t, ',');) {
          if (t != "broker" && std::find(kActors.begin(), kActors.end(), t) == kActors.end()) {
            std::cerr << "vb-chaos: --only: " << t << " is not the broker or an actor\n";
            return 64;
          }
          o.only.push_back(t);
        }
      } else if (a == "--check") o.check = true;
      else if (a == "--wake") o.wake = true;
      else if (a == "--keep-logs") o.keep_logs = next();
      else if (a == "--out") o.out = next();
      else if (a == "--help" || a == "-h") {
        Usage(std::cout);
        return 0;
      } else {
        std::cerr << "vb-chaos: unknown option " << a << "\n";
        Usage(std::cerr);
        return 64;
      }
    } catch (const std::exception&) {
      std::cerr << "vb-chaos: " << a << ": not a number\n";
      return 64;
    }
  }
  if (o.kills < 0 && o.duration_s <= 0) o.duration_s = 200;
  if (o.kills > 0) o.duration_s = 1e9;
  signal(SIGPIPE, SIG_IGN);
  // The other binaries are beside this one unless VB_BIN_DIR says otherwise,
  // so it runs from any folder.
  if (!std::getenv("VB_BIN_DIR")) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      std::string dir(self, size_t(n));
      setenv("VB_BIN_DIR", dir.substr(0, dir.rfind('/')).c_str(), 1);
    }
  }
  return Chaos(o).Run();
}
