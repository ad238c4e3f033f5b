// vb-e2e-bench: latency and cost of the whole pipeline, as `vb run` starts it
// against vb-cozesim. The microphone is a WAV file of espeak-ng questions
// (after a quiet stretch), the speaker ALSA `pulse` on a private PulseAudio
// null sink (or a WAV file with --wav-speaker). Measured from the bus:
//
//   mic_to_wire    capture → audio.clean publish (Header.origin_ns is the
//                  capture time of the frame's first sample, so one frame
//                  time is included) + vb-session's own audio.clean → socket
//                  write (heartbeat mic_to_wire_us_p50/p99);
//   wire_to_speaker  WebSocket receive (session.audio Header.origin_ns) →
//                  the sample leaving the speaker (audio.ref play_ns; the
//                  decoder and playback carry origin_ns through), for the
//                  first frame of each reply (the agent sends faster than
//                  real time, so later frames wait in the jitter buffer by
//                  design) and for every frame; stages on the way:
//                  wire→session.audio, wire→audio.out;
//   cpu/rss        heartbeats of every actor (cpu_percent of one core,
//                  rss_kb), by dialog state: listening vs speaking; and
//                  cpu_time_percent: each actor's CPU time (user + sys,
//                  /proc/PID/stat, sampled every 100 ms) per second of
//                  each state — the figure to compare on a loaded machine;
//                  wakeups_per_s: context switches of each actor's threads
//                  per second of each state (what the cost is made of);
//   playback_health  whether the speaker really played while the agent
//                  spoke: audible audio.ref seconds per speaking second,
//                  the playback's device xruns and its flush latencies
//                  (playback.event FLUSHED). A starved stream (underruns
//                  every ~2 s through PulseAudio on a loaded machine) plays
//                  little and so costs little: such a run's CPU is no
//                  measure (cpu_valid false);
//   response       what the person feels: their speech end (client VAD, else
//                  the server's) → the reply's first sample at the speaker,
//                  per turn and its stages (tools/sniffer TurnTracer fed every
//                  message of the topics it reads), median/p90 over turns and
//                  each stage's median share: speech end → final transcript
//                  → first text → first audio received → first sample.
//                  bus.stream_hwm is raised (bench node and pipeline) so the
//                  reply's burst of session.audio packets reaches the bench.
//
// Barge-in latency is measured by the e2e test (ctest -R BargeIn -V prints
// its JSON line). Prints one JSON object; run by hand, not in ctest:
//   build/bin/vb-e2e-bench [--wav-speaker] [--speak-s 15] [--out FILE]
//                          [--afe-backend speex|webrtc|bypass (default: speex, the product's)]
//                          [--sink alsa|pulse (the speaker on the null sink: ALSA
//                           `pulse` or libpulse with a rewritable queue; default alsa)]
//                          [--alsa 'KEY: V, …' (more playback.alsa keys)]
//                          [--pulse 'KEY: V, …' (more playback.pulse keys)]
//                          [--playback 'KEY: V, …' (more playback keys)]
//                          [--afe 'KEY: V, …' (more afe keys)]
//                          [--rt-priority N (capture's and playback's
//                           rt_priority, default 0 = the product default;
//                           20 as the audio tests, for a loaded machine)]
//                          [--local-stream on|off (bus.local_stream: audio frames
//                           straight between the actors, the default, or every
//                           one through the broker)]
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "actors/common/wav.h"
#include "actors/session/coze_protocol.h"
#include "bus/node.h"
#include "tests/support/process.h"
#include "tools/sniffer/trace.h"

namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using vb::testing::Child;
using vb::testing::RunCommand;

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())));
  return v[i];
}

int64_t ClockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Json Summary(const std::vector<double>& v) {
  if (v.empty()) return Json{{"count", 0}};
  return Json{{"count", v.size()}, {"p50", Pct(v, 50)}, {"p99", Pct(v, 99)}, {"max", Pct(v, 100)}};
}

bool AppendSpeech(const vb::testing::TempDir& dir, const std::string& text, vb::audio::PcmBuffer* mic) {
  std::string raw = dir.File("raw.wav"), wav = dir.File("s16k.wav"), out;
  if (RunCommand({"/usr/bin/env", "espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, text}, &out) != 0) return false;
  if (RunCommand({"/usr/bin/env", "sox", "-q", raw, "-r", "16000", "-c", "1", "-b", "16", wav}, &out) != 0)
    return false;
  vb::audio::PcmBuffer b;
  if (!vb::audio::ReadWav(wav, &b).ok()) return false;
  mic->samples.insert(mic->samples.end(), b.samples.begin(), b.samples.end());
  return true;
}

// The person's view of each turn: response time (speech end → first reply
// sample at the speaker) and the stages on the way, from the turn traces.
Json ResponseReport(const std::vector<vb::sniff::TurnTrace>& traces) {
  using vb::sniff::Stage;
  // The path to the speaker; each segment runs from the previous stage seen.
  const Stage path[] = {Stage::kTranscript, Stage::kFirstText, Stage::kFirstAudio, Stage::kFirstSample};
  const char* segment[] = {"speech_end_to_transcript", "transcript_to_first_text", "first_text_to_first_audio",
                           "first_audio_to_first_sample"};
  Json turns = Json::array();
  std::vector<double> response_ms;
  std::map<std::string, std::vector<double>> seg_ms, seg_share;
  int64_t prev_reply_end = 0;  // the previous turn's last sample (or interruption)
  for (const auto& t : traces) {
    Json j{{"turn_id", t.turn_id}, {"outcome", t.outcome}, {"audio_lost", t.audio_lost}};
    // Spoken while the previous reply still played (a barge-in): the AFE
    // and both VADs hear the reply's echo too.
    const int64_t spoke = t.has(Stage::kSpeechStart) ? t.at[int(Stage::kSpeechStart)] : t.first();
    j["spoken_over_previous_reply"] = prev_reply_end && spoke < prev_reply_end;
    for (Stage s : {Stage::kLastSample, Stage::kInterrupted})
      if (t.has(s)) prev_reply_end = std::max(prev_reply_end, t.at[int(s)]);
    const int64_t end = t.has(Stage::kSpeechEnd) ? t.at[int(Stage::kSpeechEnd)] : t.at[int(Stage::kServerSpeechEnd)];
    j["speech_end_from"] = t.has(Stage::kSpeechEnd) ? "client_vad" : end ? "server_vad" : "none";
    Json stages = Json::object();
    for (int i = 0; i < int(Stage::kCount); ++i)
      if (t.at[i] && end) stages[vb::sniff::StageName(Stage(i))] = double(t.at[i] - end) / 1e6;
    j["stages_ms_from_speech_end"] = stages;
    const int64_t r = t.ResponseNs();
    j["response_ms"] = r >= 0 ? Json(double(r) / 1e6) : Json(nullptr);
    if (r > 0 && !t.audio_lost) {
      response_ms.push_back(double(r) / 1e6);
      int64_t prev = end;
      Json segs = Json::object();
      for (size_t k = 0; k < std::size(path); ++k) {
        if (!t.has(path[k]) || t.at[int(path[k])] < prev) continue;
        const double ms = double(t.at[int(path[k])] - prev) / 1e6;
        segs[segment[k]] = ms;
        seg_ms[segment[k]].push_back(ms);
        seg_share[segment[k]].push_back(ms / (double(r) / 1e6));
        prev = t.at[int(path[k])];
      }
      j["segments_ms"] = segs;
    }
    turns.push_back(j);
  }
  Json shares = Json::object(), seg_median = Json::object();
  for (const char* s : segment) {
    if (!seg_ms.count(s)) continue;
    shares[s] = Pct(seg_share[s], 50);
    seg_median[s] = Pct(seg_ms[s], 50);
  }
  return Json{{"turns", turns},
              {"measured_turns", response_ms.size()},
              {"response_ms_p50", response_ms.empty() ? Json(nullptr) : Json(Pct(response_ms, 50))},
              {"response_ms_p90", response_ms.empty() ? Json(nullptr) : Json(Pct(response_ms, 90))},
              {"segment_ms_median", seg_median},
              {"segment_share_median", shares},
              {"note",
               "response: speech end (client VAD, else server VAD) → the reply's first non-zero sample at "
               "the speaker (audio.ref play_ns); stages: ms from speech end, each stamped by its publisher; "
               "segments run from the previous stage seen; turns whose first audio packet was not heard "
               "(audio_lost) are listed, not measured; spoken_over_previous_reply: the question began before the "
               "previous reply had finished playing (a barge-in)"}};
}

// "a: 1, b: 2" as indented YAML lines ("  a: 1\n  b: 2\n").
std::string YamlKeys(const std::string& list, const std::string& indent) {
  std::string yaml, key;
  for (std::stringstream keys(list); std::getline(keys, key, ',');)
    if (key.find_first_not_of(' ') != std::string::npos) yaml += indent + key.substr(key.find_first_not_of(' ')) + "\n";
  return yaml;
}

// What one wake-up from idle costs this machine: the CPU time of a thread
// that only waits for a 50 Hz timer (epoll_wait, read), per wake-up, over
// 2 s. Bare metal: a few µs; a VM whose every kernel entry and idle exit
// is trapped: tens. With wakeups_per_s it says how much of the pipeline's
// CPU is the machine's price of waking, not the actors' work.
double IdleWakeCpuUs() {
  const int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  double us = -1;
  if (tfd >= 0 && ep >= 0) {
    itimerspec its{};
    its.it_interval.tv_nsec = its.it_value.tv_nsec = 20'000'000;
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (timerfd_settime(tfd, 0, &its, nullptr) == 0 && epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) == 0) {
      timespec a{}, b{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
      constexpr int kWakes = 100;
      int woke = 0;
      for (int i = 0; i < kWakes * 2 && woke < kWakes; ++i) {
        uint64_t expirations = 0;
        if (epoll_wait(ep, &ev, 1, 1000) == 1 && read(tfd, &expirations, sizeof expirations) > 0) ++woke;
      }
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
      if (woke > 0) us = (double(b.tv_sec - a.tv_sec) * 1e6 + double(b.tv_nsec - a.tv_nsec) / 1e3) / woke;
    }
  }
  if (tfd >= 0) close(tfd);
  if (ep >= 0) close(ep);
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  bool wav_speaker = false;
  double speak_s = 15;
  std::string out_path, afe_backend = "speex", alsa_extra, pulse_extra, playback_extra, afe_extra, sink = "alsa";
  int rt_priority = 0;
  bool local_stream = true;  // bus.local_stream (the config's default: audio frames straight between the actors)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--wav-speaker") wav_speaker = true;
    else if (a == "--speak-s" && i + 1 < argc) speak_s = std::atof(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--afe-backend" && i + 1 < argc) afe_backend = argv[++i];
    else if (a == "--alsa" && i + 1 < argc) alsa_extra = std::string(", ") + argv[++i];
    else if (a == "--pulse" && i + 1 < argc) pulse_extra = argv[++i];
    else if (a == "--sink" && i + 1 < argc &&
             (std::string(argv[i + 1]) == "alsa" || std::string(argv[i + 1]) == "pulse"))
      sink = argv[++i];
    else if (a == "--playback" && i + 1 < argc) playback_extra = argv[++i];
    else if (a == "--afe" && i + 1 < argc) afe_extra = argv[++i];
    else if (a == "--rt-priority" && i + 1 < argc) rt_priority = std::atoi(argv[++i]);
    else if (a == "--local-stream" && i + 1 < argc &&
             (std::string(argv[i + 1]) == "on" || std::string(argv[i + 1]) == "off"))
      local_stream = std::string(argv[++i]) == "on";
    else {
      std::fprintf(stderr,
                   "usage: vb-e2e-bench [--wav-speaker] [--speak-s S] [--out FILE] [--afe-backend B]\n"
                   "                    [--sink alsa|pulse] [--alsa 'KEY: V, …' (more playback.alsa keys)]\n"
                   "                    [--pulse 'KEY: V, …' (more playback.pulse keys)]\n"
                   "                    [--playback 'KEY: V, …' (more playback keys)] [--rt-priority N]\n"
                   "                    [--afe 'KEY: V, …' (more afe keys)] [--local-stream on|off]\n");
      return 2;
    }
  }
  const std::string bin = vb::testing::Bin("vb");
  const std::string source = vb::testing::SourceDir();
  vb::testing::TempDir dir;
  const std::string d = dir.path();
  dir.Write("sim-token", "bench-token\n");
  mkdir(dir.File("sim").c_str(), 0700);

  const double idle_wake_cpu_us = IdleWakeCpuUs();  // before anything else runs

  // The microphone: 10 s quiet (listening), then three questions.
  vb::audio::PcmBuffer mic;
  auto silence = [&](double s) { mic.samples.insert(mic.samples.end(), size_t(s * 16000), 0); };
  silence(10);
  const double listen_end_s = 10;
  bool ok = AppendSpeech(dir, "What time is it?", &mic);
  silence(7);
  ok = ok && AppendSpeech(dir, "What is the date?", &mic);
  silence(7);
  ok = ok && AppendSpeech(dir, "Tell me a story.", &mic);
  silence(1);
  if (!ok || !vb::audio::WriteWav(dir.File("mic.wav"), mic).ok()) {
    std::fprintf(stderr, "vb-e2e-bench: cannot make the microphone file (espeak-ng, sox)\n");
    return 1;
  }

  std::vector<std::string> env;
  bool pulse = false;
  if (!wav_speaker) {
    std::string out;
    if (RunCommand({"/bin/bash", source + "/tests/tools/pulse_env.sh", "start", d}, &out, 20000ms) != 0) {
      std::fprintf(stderr, "vb-e2e-bench: PulseAudio did not start (use --wav-speaker):\n%s\n", out.c_str());
      return 1;
    }
    pulse = true;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("export ", 0) == 0) env.push_back(line.substr(7));
  }

  const std::string endpoint = "ipc://" + dir.File("bus");
  // The reply arrives as a burst (~130 session.audio packets): the default
  // stream_hwm (100) lets the broker drop some on their way to the bench.
  constexpr int kStreamHwm = 10000;
  std::string cfg = "bus:\n  endpoint: " + endpoint + "\n  stream_hwm: " + std::to_string(kStreamHwm) +
                    "\n  local_stream: " + (local_stream ? "true" : "false") +
                    "\ndevices:\n  names: [local]\n"
                    "launcher:\n  actors: [control, session, decoder, playback, afe, wakevad, capture]\n"
                    "  simulator: true\n  simulator_args: [--token-file, \"" +
                    d + "/sim-token\", --log-dir, \"" + d + "/sim\", --wait-models]\n  log_dir: " + d +
                    "/logs\n"
                    "capture:\n  source: wav\n  rt_priority: " +
                    std::to_string(rt_priority) + "\n  wav: {path: " + d +
                    "/mic.wav, realtime: true, at_end: silence}\n"
                    "afe:\n  backend: " +
                    afe_backend + "\n" + YamlKeys(afe_extra, "  ") +
                    "session:\n  bot_id: \"7000000000000000001\"\n"
                    "  api_base: http://127.0.0.1:${VB_SIM_PORT}\n  ws_base: ws://127.0.0.1:${VB_SIM_PORT}\n"
                    "  token_file: " +
                    d + "/sim-token\n  state_dir: " + d +
                    "/state\n"
                    "decoder:\n  output_rate: 16000\n"
                    "control:\n  mode: continuous\n  barge_in: {client_vad: false}\n";
  cfg += "playback:\n  rt_priority: " + std::to_string(rt_priority) + "\n";
  cfg += YamlKeys(playback_extra, "  ");
  cfg += wav_speaker       ? "  sink: wav\n  wav: {path: " + d + "/reply.wav, realtime: true}\n"
         : sink == "pulse" ? "  sink: pulse\n  pulse: {" + pulse_extra + "}\n"
                           : "  sink: alsa\n  alsa: {device: pulse" + alsa_extra + "}\n";
  dir.Write("vb.yaml", cfg);

  zmq::context_t ctx(1);
  vb::bus::Loop loop;
  vb::bus::BusConfig bc;
  bc.endpoint = endpoint;
  bc.stream_hwm = kStreamHwm;
  bc.local_stream = local_stream;
  vb::bus::Node node(ctx, loop, "e2e-bench", "local", bc);
  vb::v1::DialogStateKind state = vb::v1::STATE_UNSPECIFIED;
  std::string speaking_turn;
  int64_t story_speaking_since = 0;
  int turns_spoken = 0;
  std::map<std::string, std::map<std::string, std::vector<double>>> cpu;  // phase → actor → cpu%
  std::map<std::string, int64_t> rss_max;
  std::map<std::string, int> pids;
  // capture→clean split by whether the speaker was audible (an audible
  // audio.ref frame seen in the last 100 ms): the AFE waits for reference
  // only then.
  std::vector<double> clean_speaking_ms, clean_quiet_ms, clean_dialog_ms;
  // Capture → WebSocket send, per frame: each audio.clean frame's PCM (by
  // content; frames whose PCM repeats, like digital silence, are skipped) is
  // found in the simulator's log of what it received (t_ms: wall clock, ms).
  std::unordered_map<std::string, std::pair<int64_t, int>> clean_by_pcm;  // pcm → (origin, count)
  const int64_t wall_minus_mono_ns = ClockNs(CLOCK_REALTIME) - ClockNs(CLOCK_MONOTONIC);
  nlohmann::json clean_slow = nlohmann::json::array();  // frames over 30 ms: when, in which state
  int64_t first_clean_ns = 0;
  int64_t last_audible_ref_ns = 0;
  std::vector<double> capture_to_clean_ms, session_up_p50_ms, session_up_p99_ms, wire_to_bus_ms, wire_to_out_ms,
      wire_to_speaker_ms, first_wire_to_speaker_ms;
  std::map<std::string, int64_t> first_origin;  // turn → origin of its first packet
  std::set<int64_t> first_origins;
  uint64_t mic_samples = 0;
  double played_speaking_s = 0;  // audio.ref that reached the speaker while the agent spoke
  int64_t playback_xruns = 0;
  std::vector<double> flush_ms;

  node.Subscribe<vb::v1::DialogState>(vb::bus::topics::kDialogState, [&](const auto& m) {
    if (m.msg.state() == vb::v1::STATE_SPEAKING && m.msg.turn_id() != speaking_turn) {
      speaking_turn = m.msg.turn_id();
      ++turns_spoken;
      if (turns_spoken == 3) story_speaking_since = vb::bus::MonoNs();
    }
    state = m.msg.state();
  });
  // The phase a moment belongs to: the agent speaking, or listening in the
  // quiet first stretch (after the first 3 s of startup).
  auto Phase = [&]() -> std::string {
    const double listening_s = double(mic_samples) / 16000.0;
    return state == vb::v1::STATE_SPEAKING                                                     ? "speaking"
           : state == vb::v1::STATE_LISTENING && listening_s > 3 && listening_s < listen_end_s ? "listening"
                                                                                               : "";
  };
  // CPU time of every actor process (all its threads: user + sys from
  // /proc/PID/stat), sampled every 100 ms and charged to the phase of the
  // interval: CPU seconds per phase second. Unlike a share of wall time per
  // heartbeat, this is what the actors consumed, however long they waited
  // for a core on a loaded machine.
  std::map<std::string, std::map<std::string, double>> cpu_s;  // phase → actor → CPU s
  std::map<std::string, double> phase_s;                       // phase → wall s
  std::map<std::string, double> last_cpu_s;                    // actor → CPU s at the last sample
  // Wake-ups: context switches (voluntary + involuntary, every thread, from
  // /proc/PID/task/*/status) per phase second. On a machine where each
  // wake-up is dear (a VM: ~50 µs of CPU for an empty timer loop's), they
  // are most of the pipeline's cost, and unlike CPU time they do not depend
  // on the machine.
  std::map<std::string, std::map<std::string, double>> switches;  // phase → actor → count
  std::map<std::string, double> last_switches;                    // actor → count at the last sample
  auto context_switches = [](int pid) {
    double n = 0;
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      std::ifstream in(t.path() / "status");
      std::string line;
      while (std::getline(in, line))
        if (line.find("ctxt_switches:") != std::string::npos) n += std::atof(line.c_str() + line.find(':') + 1);
    }
    return n;
  };
  int64_t last_sample_ns = 0;
  std::string last_phase;
  const double tick_s = 1.0 / double(sysconf(_SC_CLK_TCK));
  // vb-broker beats on no topic: found as the launcher's child by name, and
  // counted with the actors (every message of theirs passes through it).
  int launcher_pid = 0;
  auto find_broker = [&] {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const int pid = std::atoi(e.path().filename().c_str());
      if (pid <= 0) continue;
      std::ifstream in(e.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const size_t open = stat.find('('), close = stat.rfind(')');
      if (open == std::string::npos || close == std::string::npos || close + 4 >= stat.size()) continue;
      int ppid = 0;
      std::istringstream(stat.substr(close + 4)) >> ppid;  // ") S PPID"
      if (ppid == launcher_pid && stat.substr(open + 1, close - open - 1) == "vb-broker") {
        pids["broker"] = pid;
        return;
      }
    }
  };
  loop.AddTimer(100ms, [&] {
    const int64_t now = vb::bus::MonoNs();
    if (launcher_pid > 0 && (!pids.count("broker") || kill(pids["broker"], 0) != 0)) find_broker();
    for (const auto& [actor, pid] : pids) {
      std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const size_t paren = stat.rfind(')');
      if (paren == std::string::npos) continue;
      std::istringstream fields(stat.substr(paren + 2));
      std::string f;
      double utime = 0, stime = 0;
      for (int i = 3; i <= 15 && fields >> f; ++i) {  // fields 14, 15: utime, stime (ticks)
        if (i == 14) utime = std::atof(f.c_str());
        if (i == 15) stime = std::atof(f.c_str());
      }
      const double s = (utime + stime) * tick_s;
      auto it = last_cpu_s.find(actor);
      if (it != last_cpu_s.end() && !last_phase.empty() && s >= it->second) cpu_s[last_phase][actor] += s - it->second;
      last_cpu_s[actor] = s;
      const double sw = context_switches(pid);
      auto sit = last_switches.find(actor);
      // A thread that ended takes its count along: only growth is counted.
      if (sit != last_switches.end() && !last_phase.empty() && sw >= sit->second)
        switches[last_phase][actor] += sw - sit->second;
      last_switches[actor] = sw;
    }
    if (last_sample_ns && !last_phase.empty()) phase_s[last_phase] += double(now - last_sample_ns) / 1e9;
    last_sample_ns = now;
    last_phase = Phase();
  });
  node.Subscribe<vb::v1::Heartbeat>(
      vb::bus::topics::kHeartbeat,
      [&](const auto& m) {
        const auto& hb = m.msg;
        pids[hb.actor()] = hb.pid();
        rss_max[hb.actor()] = std::max(rss_max[hb.actor()], hb.rss_kb());
        const std::string phase = Phase();
        if (!phase.empty() && hb.uptime_ms() > 3000) cpu[phase][hb.actor()].push_back(hb.cpu_percent());
        if (hb.actor() == "playback" && hb.extra().count("xruns_total"))
          playback_xruns = std::max<int64_t>(playback_xruns, hb.extra().at("xruns_total"));
        if (hb.actor() == "session" && hb.extra().count("mic_to_wire_count") &&
            hb.extra().at("mic_to_wire_count") > 0) {
          session_up_p50_ms.push_back(double(hb.extra().at("mic_to_wire_us_p50")) / 1000.0);
          session_up_p99_ms.push_back(double(hb.extra().at("mic_to_wire_us_p99")) / 1000.0);
        }
      },
      "*");
  node.Subscribe<vb::v1::AudioFrame>(
      vb::bus::topics::kAudioMic, [&](const auto& m) { mic_samples = m.msg.sample_index() + m.msg.pcm().size() / 2; });
  node.Subscribe<vb::v1::AudioFrame>(vb::bus::topics::kAudioClean, [&](const auto& m) {
    if (m.header.origin_ns() <= 0) return;
    const double ms = double(m.header.mono_ns() - m.header.origin_ns()) / 1e6;
    capture_to_clean_ms.push_back(ms);
    (m.header.mono_ns() - last_audible_ref_ns < 100'000'000 ? clean_speaking_ms : clean_quiet_ms).push_back(ms);
    if (!first_clean_ns) first_clean_ns = m.header.mono_ns();
    auto& seen = clean_by_pcm[m.msg.pcm()];
    seen.first = m.header.origin_ns();
    ++seen.second;
    // The dialog: after the quiet first stretch, in which the other actors
    // and the simulator are still loading their models (measured: the
    // frames over 30 ms cluster in the first 6 s).
    if (m.header.mono_ns() - first_clean_ns >= int64_t(listen_end_s * 1e9)) clean_dialog_ms.push_back(ms);
    if (ms > 30 && clean_slow.size() < 100)
      clean_slow.push_back({{"at_s", double(m.header.mono_ns() - first_clean_ns) / 1e9},
                            {"ms", ms},
                            {"state", vb::v1::DialogStateKind_Name(state)}});
  });
  node.Subscribe<vb::v1::EncodedAudio>(vb::bus::topics::kSessionAudio, [&](const auto& m) {
    if (m.header.origin_ns() <= 0) return;
    wire_to_bus_ms.push_back(double(m.header.mono_ns() - m.header.origin_ns()) / 1e6);
    std::string turn(m.header.turn_id());
    if (!first_origin.count(turn)) {
      first_origin[turn] = m.header.origin_ns();
      first_origins.insert(m.header.origin_ns());
    }
  });
  node.Subscribe<vb::v1::AudioFrame>(vb::bus::topics::kAudioOut, [&](const auto& m) {
    if (m.header.origin_ns() > 0) wire_to_out_ms.push_back(double(m.header.mono_ns() - m.header.origin_ns()) / 1e6);
  });
  node.Subscribe<vb::v1::AudioFrame>(vb::bus::topics::kAudioRef, [&](const auto& m) {
    if (m.header.origin_ns() <= 0 || m.msg.synthetic_silence() || m.msg.play_ns() <= 0) return;
    last_audible_ref_ns = m.header.mono_ns();
    if (Phase() == "speaking" && m.msg.sample_rate() > 0 && m.msg.channels() > 0)
      played_speaking_s += double(m.msg.pcm().size() / 2 / m.msg.channels()) / double(m.msg.sample_rate());
    double ms = double(m.msg.play_ns() - m.header.origin_ns()) / 1e6;
    wire_to_speaker_ms.push_back(ms);
    if (first_origins.erase(m.header.origin_ns())) first_wire_to_speaker_ms.push_back(ms);
  });
  node.Subscribe<vb::v1::PlaybackEvent>(vb::bus::topics::kPlaybackEvent, [&](const auto& m) {
    if (m.msg.kind() == vb::v1::PlaybackEvent::FLUSHED) flush_ms.push_back(double(m.msg.latency_ns()) / 1e6);
  });
  // Per-turn traces: every message of the topics the tracer reads, in the
  // order received (its first stages keep the earliest publisher stamp).
  std::vector<vb::sniff::TurnTrace> traces;
  vb::sniff::TurnTracer tracer([&](const vb::sniff::TurnTrace& t) { traces.push_back(t); });
  for (const char* topic : {"voice.wake/", "voice.vad/", "dialog.request/", "dialog.order/", "session.event/",
                            "session.audio/", "audio.out/", "playback.event/", "audio.ref/"})
    for (auto plane : {vb::bus::Plane::kStream, vb::bus::Plane::kControl})
      // The stream plane's for this device only: straight from the actors,
      // as the actors' own frames go (a prefix would draw every frame of the
      // topic through the broker, a cost the product does not have).
      node.SubscribeRaw(plane, plane == vb::bus::Plane::kStream ? std::string(topic) + "local" : std::string(topic),
                        [&](const vb::bus::RawMessage& m) {
                          if (m.header && m.frames == 3) tracer.Add(m.topic, *m.header, m.payload);
                        });
  if (!node.Connect().ok()) return 1;
  node.SetActive(true);

  Child vb;
  if (!vb.Start({bin, "run", dir.File("vb.yaml")}, dir.File("vb.log"), env)) return 1;
  launcher_pid = vb.pid();
  bool launcher_gone = false;
  bool done = vb::testing::RunUntil(
      loop,
      [&] {
        launcher_gone = !vb.running();
        return launcher_gone ||
               (story_speaking_since && vb::bus::MonoNs() - story_speaking_since > int64_t(speak_s * 1e9));
      },
      150000ms);
  if (launcher_gone) {
    done = false;
    std::fprintf(stderr, "vb-e2e-bench: `%s run` stopped early; its log:\n%s\n", bin.c_str(),
                 vb::testing::ReadFile(dir.File("vb.log")).c_str());
  }
  vb.Stop(SIGTERM, 15000ms);
  tracer.Finish();
  if (pulse) RunCommand({"/bin/bash", source + "/tests/tools/pulse_env.sh", "stop", d}, nullptr, 10000ms);

  // What the simulator received, matched to the capture time of its audio.
  std::vector<double> capture_to_wire_ms;
  size_t appends = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir.File("sim"), ec)) {
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {
      if (line.find("input_audio_buffer.append") == std::string::npos) continue;
      Json j = Json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("t_ms") || !j["event"].contains("data")) continue;
      ++appends;
      std::string pcm;
      if (!vb::session::Base64Decode(j["event"]["data"].value("delta", ""), &pcm)) continue;
      auto it = clean_by_pcm.find(pcm);
      if (it == clean_by_pcm.end() || it->second.second != 1 || it->second.first <= 0) continue;
      const double recv_mono_ms = double(j["t_ms"].get<int64_t>()) - double(wall_minus_mono_ns) / 1e6;
      capture_to_wire_ms.push_back(recv_mono_ms - double(it->second.first) / 1e6);
    }
  }

  Json r;
  r["completed"] = done;
  r["speaker"] = wav_speaker ? "wav" : sink == "pulse" ? "libpulse (null sink)" : "alsa pulse (null sink)";
  r["turns_spoken"] = turns_spoken;
  r["mic_to_wire_ms"] = {
      {"capture_to_clean", Summary(capture_to_clean_ms)},
      {"capture_to_clean_speaker_audible", Summary(clean_speaking_ms)},
      {"capture_to_clean_speaker_quiet", Summary(clean_quiet_ms)},
      {"capture_to_clean_dialog", Summary(clean_dialog_ms)},
      {"capture_to_simulator_receive", Summary(capture_to_wire_ms)},
      {"simulator_appends", appends},
      {"capture_to_clean_over_30ms", clean_slow},
      {"session_clean_to_socket_p50_per_s", Summary(session_up_p50_ms)},
      {"session_clean_to_socket_p99_per_s", Summary(session_up_p99_ms)},
      {"frame_ms", 20},
      {"note",
       "capture_to_clean includes the 20 ms frame (origin = first sample); _dialog: from the end of the first quiet "
       "stretch (startup excluded); over_30ms: when such frames came; capture_to_simulator_receive: "
       "capture → the simulator's receive time of the same PCM (ms resolution, one loopback "
       "hop more than the socket write), frames with unique PCM (speech, not digital silence)"}};
  r["wire_to_speaker_ms"] = {{"wire_to_session_audio", Summary(wire_to_bus_ms)},
                             {"wire_to_audio_out", Summary(wire_to_out_ms)},
                             {"first_frame_of_reply", Summary(first_wire_to_speaker_ms)},
                             {"all_frames", Summary(wire_to_speaker_ms)},
                             {"jitter_target_ms", 60},
                             {"note",
                              "play_ns - origin: includes jitter buffer, device queue; all_frames also the "
                              "agent's faster-than-real-time lead"}};
  r["response"] = ResponseReport(traces);
  r["response"]["trace_malformed"] = tracer.malformed();
  for (const auto& [phase, actors] : cpu) {
    double total = 0;
    Json per;
    for (const auto& [actor, v] : actors) {
      double med = Pct(v, 50);
      per[actor] = med;
      total += med;
    }
    r["cpu_percent_median"][phase] = {{"per_actor", per}, {"all_actors", total}};
  }
  // Per phase: each actor's amount per second of the phase (scaled), and all of them.
  auto per_second = [&](const std::map<std::string, std::map<std::string, double>>& amounts, const char* key,
                        const std::function<double(double)>& scale) {
    for (const auto& [phase, actors] : amounts) {
      const double wall = phase_s[phase];
      if (wall <= 0) continue;
      double total = 0;
      Json per;
      for (const auto& [actor, amount] : actors) {
        per[actor] = scale(amount / wall);
        total += amount;
      }
      r[key][phase] = {{"per_actor", per}, {"all_actors", scale(total / wall)}};
    }
  };
  per_second(cpu_s, "cpu_time_percent", [](double s) { return 100.0 * s; });
  for (auto& [phase, wall] : phase_s)
    if (r["cpu_time_percent"].contains(phase)) r["cpu_time_percent"][phase]["phase_s"] = wall;
  per_second(switches, "wakeups_per_s", [](double n) { return std::round(n); });
  r["wakeups_per_s"]["idle_wake_cpu_us"] = std::round(idle_wake_cpu_us * 10) / 10;
  r["wakeups_per_s"]["note"] =
      "context switches (voluntary + involuntary, every thread, /proc/PID/task/*/status) per second of the phase: "
      "what the bus and the devices cost in wake-ups, whatever one costs on this machine; idle_wake_cpu_us: "
      "what one costs here (CPU of a thread waking to an empty 50 Hz timer, per wake-up, measured before the "
      "pipeline starts)";
  r["cpu_time_percent"]["note"] =
      "CPU seconds (user + sys, all threads, /proc/PID/stat) per second of the phase, in % of one core; "
      "all_actors: every actor, the launcher (vb) and vb-broker";
  // A stream the loaded machine starved plays a fraction of the reply and
  // costs a fraction of the CPU: its figure is no measure of the pipeline.
  const double speaking_s = phase_s.count("speaking") ? phase_s["speaking"] : 0;
  const double played_share = speaking_s > 0 ? played_speaking_s / speaking_s : 0;
  r["playback_health"] = {{"played_s_per_speaking_s", played_share},
                          {"device_xruns", playback_xruns},
                          {"flush_ms", flush_ms},
                          {"rt_priority", rt_priority},
                          {"note",
                           "played: audible audio.ref seconds per second of the speaking phase (about 1 when the "
                           "reply plays); flush_ms: playback.event FLUSHED latency (interrupt → silence)"}};
  r["cpu_time_percent"]["cpu_valid"] = played_share >= 0.8;
  int64_t rss_total = 0;
  for (const auto& [a, kb] : rss_max) {
    r["rss_kb_max"][a] = kb;
    rss_total += kb;
  }
  r["rss_kb_max"]["all"] = rss_total;
  std::string text = r.dump(2);
  std::printf("%s\n", text.c_str());
  if (!out_path.empty()) {
    FILE* f = std::fopen(out_path.c_str(), "w");
    if (f) {
      std::fputs(text.c_str(), f);
      std::fclose(f);
    }
  }
  return done ? 0 : 1;
}
