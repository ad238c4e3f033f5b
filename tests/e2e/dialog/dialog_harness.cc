// The pipeline harness for the end-to-end dialog tests (see dialog_harness.h).
#include "tests/e2e/dialog/dialog_harness.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <regex>

#include "tests/support/sim_config.h"

namespace vb::e2e {

using testing::Bin;
using testing::ReadFile;
using testing::RunCommand;

double Dbfs(const int16_t* s, size_t n) {
  if (n == 0) return -120;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += double(s[i]) * s[i];
  double rms = std::sqrt(sum / double(n)) / 32768.0;
  return rms > 1e-6 ? 20 * std::log10(rms) : -120;
}

double Dbfs(const std::string& pcm) { return Dbfs(reinterpret_cast<const int16_t*>(pcm.data()), pcm.size() / 2); }

void MicScript::Silence(double seconds) { pcm_.samples.insert(pcm_.samples.end(), size_t(seconds * 16000), 0); }

int MicScript::Say(const std::string& text) {
  std::string raw = dir_.File("say" + std::to_string(made_) + ".wav");
  std::string wav = dir_.File("say" + std::to_string(made_) + "-16k.wav");
  ++made_;
  std::string out;
  EXPECT_EQ(RunCommand({"/usr/bin/env", "espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, text}, &out), 0) << out;
  EXPECT_EQ(RunCommand({"/usr/bin/env", "sox", "-q", raw, "-r", "16000", "-c", "1", "-b", "16", wav}, &out), 0) << out;
  audio::PcmBuffer b;
  EXPECT_TRUE(audio::ReadWav(wav, &b).ok());
  double start = length_s();
  pcm_.samples.insert(pcm_.samples.end(), b.samples.begin(), b.samples.end());
  spans_.emplace_back(start, length_s());
  return int(spans_.size()) - 1;
}

void MicScript::Write(const std::string& path) const { ASSERT_TRUE(audio::WriteWav(path, pcm_).ok()); }

std::string MicScript::WriteUtterance(int i, const std::string& name) const {
  audio::PcmBuffer b;
  size_t a = size_t(spans_[size_t(i)].first * 16000), e = size_t(spans_[size_t(i)].second * 16000);
  b.samples.assign(pcm_.samples.begin() + long(a), pcm_.samples.begin() + long(e));
  std::string path = dir_.File(name);
  EXPECT_TRUE(audio::WriteWav(path, b).ok());
  return path;
}

void DialogHarness::SetUp() {
  source_ = testing::SourceDir();
  endpoint_ = "ipc://" + dir_.File("bus");
  bus::BusConfig bc;
  bc.endpoint = endpoint_;
  node_ = std::make_unique<bus::Node>(ctx_, loop_, "e2e", "local", bc);
  auto now = [] { return bus::MonoNs(); };
  node_->Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this, now](const auto& m) {
    if (m.msg.has_status()) {
      status_ = m.msg.status();
      return;
    }
    events_.push_back(
        {now(), std::string(m.header.turn_id()), m.msg, m.header.mono_ns(), std::string(m.header.source())});
  });
  node_->Subscribe<v1::DialogState>(bus::topics::kDialogState, [this, now](const auto& m) {
    // Republished with every heartbeat: keep changes only.
    if (!states_.empty() && states_.back().state.state() == m.msg.state() &&
        states_.back().state.turn_id() == m.msg.turn_id() && states_.back().state.reason() == m.msg.reason())
      return;
    states_.push_back({now(), m.msg, m.header.mono_ns()});
  });
  node_->Subscribe<v1::PlaybackEvent>(bus::topics::kPlaybackEvent, [this, now](const auto& m) {
    playback_.push_back({now(), m.msg, m.header.mono_ns()});
  });
  node_->Subscribe<v1::VadEvent>(bus::topics::kVoiceVad,
                                 [this, now](const auto& m) { vad_.emplace_back(now(), m.msg); });
  node_->Subscribe<v1::WakeEvent>(bus::topics::kVoiceWake,
                                  [this, now](const auto& m) { wakes_.emplace_back(now(), m.msg); });
  node_->Subscribe<v1::DialogCommand>(bus::topics::kDialogOrder, [this, now](const auto& m) {
    commands_seen_.emplace_back(now(), m.msg);
    commands_sent_ns_.push_back(m.header.mono_ns());
  });
  node_->Subscribe<v1::Heartbeat>(
      bus::topics::kHeartbeat,
      [this](const auto& m) {
        beats_[m.msg.actor()] = m.msg;
        beat_log_[m.msg.actor()].push_back(m.msg);
      },
      "*");
  auto frames = [this, now](std::vector<FrameSeen>* into, bool count_mic) {
    return [this, now, into, count_mic](const bus::Received<v1::AudioFrame>& m) {
      if (count_mic) mic_samples_ = m.msg.sample_index() + m.msg.pcm().size() / 2 / std::max(1u, m.msg.channels());
      if (!keep_frames_) return;
      // Channel 0 only (a frame may carry a reference channel).
      std::string pcm = m.msg.pcm();
      if (m.msg.channels() > 1) {
        std::string mono;
        for (size_t i = 0; i + 1 < pcm.size(); i += 2 * m.msg.channels()) mono.append(pcm, i, 2);
        pcm = mono;
      }
      into->push_back({now(), m.msg.play_ns(), m.header.origin_ns(), m.header.mono_ns(), m.msg.sample_index(),
                       Dbfs(pcm), std::string(m.header.turn_id()), std::string(m.header.source())});
    };
  };
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioMic, frames(&mic_, true));
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioClean, frames(&clean_, false));
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioRef, frames(&ref_, false));
  node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioOut, frames(&out_, false));
  commands_ = node_->Advertise(bus::topics::kDialogRequest);
  ASSERT_TRUE(node_->Connect().ok());
  node_->SetActive(true);
  mkdir(dir_.File("sim").c_str(), 0700);
  dir_.Write("sim-token", "test-token-e2e\n");
}

void DialogHarness::TearDown() {
  Stop();
  node_.reset();
  ctx_.shutdown();
}

void DialogHarness::Start(const PipelineOptions& o) {
  const std::string d = dir_.path();
  const bool with_session = std::count(o.actors.begin(), o.actors.end(), "session") > 0;
  std::string list;
  for (const auto& a : o.actors) list += (list.empty() ? "" : ", ") + a;
  std::string cfg = "bus:\n  endpoint: " + endpoint_ +
                    "\ndevices:\n  names: [local]\n"
                    "launcher:\n"
                    "  actors: [" +
                    list +
                    "]\n"
                    "  simulator: " +
                    (with_session ? "true" : "false") +
                    "\n"
                    "  simulator_args: [--token-file, \"" +
                    d +
                    "/sim-token\", --bot-id, \"7000000000000000001\", "
                    "--log-dir, \"" +
                    d + "/sim\", --wait-models";
  for (const auto& a : o.sim_args) cfg += ", \"" + a + "\"";
  cfg += "]\n  log_dir: " + d + "/logs\n  heartbeat_timeout_ms: " + std::to_string(o.heartbeat_timeout_ms) + "\n";
  // A section for each actor started (vb run refuses sections of others).
  auto has = [&](const char* a) { return std::count(o.actors.begin(), o.actors.end(), a) > 0; };
  if (has("capture")) {
    if (o.mic == "wav")
      cfg += "capture:\n  source: wav\n  wav: {path: " + d + "/mic.wav, realtime: true, at_end: silence}\n";
    else cfg += "capture:\n  source: alsa\n  alsa: {device: pulse, rate: 16000, channels: 1}\n";
  }
  if (has("afe")) cfg += "afe:\n  backend: " + o.afe_backend + "\n" + (o.echo_gate ? "" : "  echo_gate: false\n");
  if (has("wakevad"))
    cfg += std::string("wakevad:\n  wake: {enabled: ") + (o.wake_word ? "true" : "false") + ", phrase: \"" +
           o.wake_phrase + "\"}\n";
  if (has("session"))
    cfg += vb::testing::SimSessionSection(d, o.mode) + "  reconnect_initial_ms: 200\n  reconnect_max_ms: 1000\n";
  if (has("decoder")) cfg += "decoder:\n  output_rate: 16000\n";
  if (has("playback")) {
    if (o.speaker == "wav")
      cfg += "playback:\n  sink: wav\n  rate: 16000\n  wav: {path: " + d + "/reply.wav, realtime: true}\n";
    else cfg += "playback:\n  sink: alsa\n  rate: 16000\n  alsa: {device: pulse}\n";
  }
  if (has("control"))
    cfg += "control:\n  mode: " + o.mode + "\n  barge_in: {client_vad: " + (o.client_vad_barge_in ? "true" : "false") +
           (o.wake_guard_ms >= 0 ? ", wake_guard_ms: " + std::to_string(o.wake_guard_ms) : std::string()) + "}\n";
  cfg += o.extra_yaml;
  dir_.Write("vb.yaml", cfg);
  config_ = dir_.File("vb.yaml");
  ASSERT_TRUE(vb_.Start({Bin("vb"), "run", config_}, dir_.File("vb.log"), o.env));
  vb_running_ = true;
  const std::vector<std::string>& actors = o.actors;
  bool vb_exited = false;  // a config error or a missing binary: said at once, not after 40 s
  bool up = Until(
      [&] {
        if (!vb_.running()) return vb_exited = true;
        for (const auto& a : actors)
          if (!beats_.count(a)) return false;
        if (!with_session) return !states_.empty();
        return status_.connected() && !states_.empty() && states_.back().state.state() != v1::STATE_OFFLINE;
      },
      40000ms);
  ASSERT_FALSE(vb_exited) << "vb run exited before the pipeline was up; vb said:\n"
                          << ReadFile(dir_.File("vb.log")) << Logs(actors);
  ASSERT_TRUE(up) << "pipeline not up; vb said:\n" << ReadFile(dir_.File("vb.log")) << Logs(actors);
  std::smatch m;
  std::string text = ReadFile(dir_.File("vb.log"));
  if (std::regex_search(text, m, std::regex("listening on 127\\.0\\.0\\.1:(\\d+)"))) sim_port_ = std::stoi(m[1]);
}

void DialogHarness::Stop() {
  if (!vb_running_) return;
  vb_running_ = false;
  int rc = vb_.Stop(SIGTERM, 15000ms);
  if (rc == INT_MIN) {
    // vb did not stop its children: end them (we started them) by PID.
    for (auto& [name, hb] : beats_)
      if (hb.pid() > 0) kill(hb.pid(), SIGKILL);
    ADD_FAILURE() << "vb run did not stop within 15 s\n" << ReadFile(dir_.File("vb.log"));
  }
}

int DialogHarness::AwaitEvent(size_t from, const std::function<bool(const SessionSeen&)>& pred,
                              std::chrono::milliseconds timeout) {
  int found = -1;
  Until(
      [&] {
        for (size_t i = from; i < events_.size(); ++i)
          if (pred(events_[i])) return (found = int(i)), true;
        return false;
      },
      timeout);
  return found;
}

int DialogHarness::AwaitEnded(size_t from, v1::TurnEnded::Outcome outcome, const std::string& turn,
                              std::chrono::milliseconds timeout) {
  return AwaitEvent(
      from,
      [&](const SessionSeen& s) {
        return s.event.has_turn_ended() && s.event.turn_ended().outcome() == outcome &&
               (turn.empty() || s.turn_id == turn);
      },
      timeout);
}

int DialogHarness::AwaitPlayback(size_t from, v1::PlaybackEvent::Kind kind, const std::string& turn,
                                 std::chrono::milliseconds timeout) {
  int found = -1;
  Until(
      [&] {
        for (size_t i = from; i < playback_.size(); ++i)
          if (playback_[i].event.kind() == kind && (turn.empty() || playback_[i].event.turn_id() == turn))
            return (found = int(i)), true;
        return false;
      },
      timeout);
  return found;
}

int DialogHarness::AwaitState(size_t from, v1::DialogStateKind kind, std::chrono::milliseconds timeout) {
  int found = -1;
  Until(
      [&] {
        for (size_t i = from; i < states_.size(); ++i)
          if (states_[i].state.state() == kind) return (found = int(i)), true;
        return false;
      },
      timeout);
  return found;
}

std::string DialogHarness::AgentText(const std::string& turn) const {
  std::string t;
  for (const auto& e : events_)
    if (e.turn_id == turn && e.event.has_agent_text() && e.event.agent_text().final()) t = e.event.agent_text().text();
  return t;
}

std::string DialogHarness::UserText(const std::string& turn) const {
  // A transcript may carry the chat id or arrive before the chat exists:
  // the last final one tagged with `turn`, else the last before it ended.
  std::string tagged, before;
  for (const auto& e : events_) {
    if (e.event.has_user_transcript() && e.event.user_transcript().final()) {
      if (e.turn_id == turn) tagged = e.event.user_transcript().text();
      else if (e.turn_id.empty()) before = e.event.user_transcript().text();
    }
    if (e.event.has_turn_ended() && e.turn_id == turn) break;
  }
  return tagged.empty() ? before : tagged;
}

const SessionSeen* DialogHarness::Started(const std::string& turn) const {
  for (const auto& e : events_)
    if (e.event.has_turn_started() && (e.turn_id == turn || e.event.turn_started().turn_id() == turn)) return &e;
  return nullptr;
}

std::vector<std::string> DialogHarness::StartedTurns(size_t from) const {
  std::vector<std::string> r;
  for (size_t i = from; i < events_.size(); ++i)
    if (events_[i].event.has_turn_started()) r.push_back(events_[i].event.turn_started().turn_id());
  return r;
}

int DialogHarness::LoudOut(const std::string& turn, double dbfs) const {
  int n = 0;
  for (const auto& f : out_) n += f.turn_id == turn && f.dbfs > dbfs;
  return n;
}

void DialogHarness::Send(const std::function<void(v1::DialogRequest&)>& fill) {
  v1::DialogRequest c;
  fill(c);
  ASSERT_TRUE(testing::AwaitSubscribers(loop_, *node_, {commands_.topic()}))
      << "no subscriber to " << commands_.topic();
  ASSERT_TRUE(commands_.Publish(c));
}

int DialogHarness::Vb(const std::vector<std::string>& args, std::string* out) {
  std::vector<std::string> argv = {Bin("vb")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--config");
  argv.push_back(config_);
  std::string local;
  return RunCommand(argv, out ? out : &local, 15000ms);
}

std::string DialogHarness::Dump(size_t from) const {
  std::string s = "--- session.event:\n";
  for (size_t i = from; i < events_.size(); ++i)
    s += std::to_string(events_[i].t_ns / 1000000) + " [" + events_[i].turn_id + "] " +
         events_[i].event.ShortDebugString() + "\n";
  s += "--- dialog.state:\n";
  for (const auto& st : states_) s += std::to_string(st.t_ns / 1000000) + " " + st.state.ShortDebugString() + "\n";
  s += "--- playback.event:\n";
  for (const auto& p : playback_) s += std::to_string(p.t_ns / 1000000) + " " + p.event.ShortDebugString() + "\n";
  s += "--- dialog.order:\n";
  for (const auto& [t, c] : commands_seen_) {
    s += std::to_string(t / 1000000) + " " + c.ShortDebugString() + "\n";
  }
  s += "--- voice: " + std::to_string(vad_.size()) + " vad, " + std::to_string(wakes_.size()) + " wake events\n";
  s += "--- last heartbeat extras:\n";
  for (const auto& [actor, hb] : beats_) {
    s += actor + ":";
    for (const auto& [k, v] : hb.extra()) s += " " + k + "=" + std::to_string(v);
    s += "\n";
  }
  s += "--- vb:\n" + ReadFile(dir_.File("vb.log"));
  return s;
}

std::string DialogHarness::Logs(const std::vector<std::string>& actors) const {
  std::string s;
  for (const auto& a : actors) {
    std::string log = ReadFile(dir_.File("logs/" + a + ".log"));
    if (log.size() > 3000) log = "…" + log.substr(log.size() - 3000);
    s += "--- " + a + ".log:\n" + log;
  }
  return s;
}

}  // namespace vb::e2e
