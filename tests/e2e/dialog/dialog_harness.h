// The whole voicebus pipeline as a user meets it, for the end-to-end dialog
// tests: `vb run` starts vb-broker, vb-cozesim and every actor from a config
// written into a temp dir; the microphone is a WAV file (or a PulseAudio
// null-sink monitor), the speaker a WAV file (or the null sink). The harness
// watches the bus with its own Node — session.event, dialog.state,
// playback.event, voice.*, heartbeats and the energy of every audio frame —
// so tests assert on what happened, in order, without sleeping.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/common/wav.h"
#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::e2e {

using namespace std::chrono_literals;
using testing::Child;
using testing::TempDir;

// RMS of s16 PCM in dBFS (−120 for digital silence).
double Dbfs(const std::string& pcm);
double Dbfs(const int16_t* s, size_t n);

// A microphone recording assembled from espeak-ng utterances and silence,
// 16 kHz mono; remembers where each utterance starts and ends.
class MicScript {
 public:
  explicit MicScript(const TempDir& dir) : dir_(dir) {}
  void Silence(double seconds);
  // Appends espeak-ng speech (en-us, 150 wpm); returns its index.
  int Say(const std::string& text);
  double start_s(int i) const { return spans_[size_t(i)].first; }
  double end_s(int i) const { return spans_[size_t(i)].second; }
  double length_s() const { return double(pcm_.samples.size()) / 16000.0; }
  void Write(const std::string& path) const;
  // The last utterance alone, as its own WAV (for paplay).
  std::string WriteUtterance(int i, const std::string& name) const;

 private:
  const TempDir& dir_;
  audio::PcmBuffer pcm_;
  std::vector<std::pair<double, double>> spans_;
  int made_ = 0;
};

struct SessionSeen {
  int64_t t_ns;
  std::string turn_id;
  v1::SessionEvent event;
  int64_t mono_ns = 0;  // Header.mono_ns (publish time)
  std::string source;   // Header.source (vb-control speaks for a dead session)
};
struct StateSeen {
  int64_t t_ns;
  v1::DialogState state;
  int64_t mono_ns = 0;  // Header.mono_ns (publish time)
};
struct PlaybackSeen {
  int64_t t_ns;  // when this Node received it
  v1::PlaybackEvent event;
  int64_t mono_ns;  // Header.mono_ns (publish time)
};
// One audio frame's summary (the PCM itself is not kept).
struct FrameSeen {
  int64_t t_ns;       // when this Node received it
  int64_t play_ns;    // AudioFrame.play_ns (capture / speaker time)
  int64_t origin_ns;  // Header.origin_ns
  int64_t mono_ns;    // Header.mono_ns (publish time)
  uint64_t sample_index;
  double dbfs;
  std::string turn_id;
  std::string source;
};

struct PipelineOptions {
  std::string mode = "continuous";    // control + session mode
  std::string mic = "wav";            // wav | alsa
  std::string speaker = "wav";        // wav | alsa
  std::string afe_backend = "speex";  // the product default (config/default.yaml)
  bool echo_gate = true;              // afe.echo_gate (the product default)
  int wake_guard_ms = -1;             // control.barge_in.wake_guard_ms (-1: the product default)
  bool client_vad_barge_in = false;
  bool wake_word = true;                     // wakevad spots the wake phrase
  std::string wake_phrase = "ok voice bus";  // wakevad's default, set explicitly
  std::vector<std::string> sim_args;         // extra vb-cozesim flags
  std::string extra_yaml;                    // appended sections / keys
  int heartbeat_timeout_ms = 3000;           // launcher: silent this long = hung, killed
  std::vector<std::string> env;              // extra environment for vb (PULSE_*)
  // The actors `vb run` starts; without "session", Start() waits for no
  // connection and no simulator runs.
  std::vector<std::string> actors = {"control", "session", "decoder", "playback", "afe", "wakevad", "capture"};
};

class DialogHarness : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Writes the config and starts `vb run`; returns once the session is
  // connected, every actor has a heartbeat and control publishes a state.
  void Start(const PipelineOptions& o);
  // Orderly stop of `vb run` (SIGTERM); the speaker WAV is complete after.
  void Stop();

  bool Until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    return testing::RunUntil(loop_, pred, timeout);
  }
  // Index of the first session event at/after `from` matching pred (waits).
  int AwaitEvent(size_t from, const std::function<bool(const SessionSeen&)>& pred,
                 std::chrono::milliseconds timeout = 30000ms);
  int AwaitEnded(size_t from, v1::TurnEnded::Outcome outcome, const std::string& turn = "",
                 std::chrono::milliseconds timeout = 30000ms);
  int AwaitPlayback(size_t from, v1::PlaybackEvent::Kind kind, const std::string& turn,
                    std::chrono::milliseconds timeout = 30000ms);
  int AwaitState(size_t from, v1::DialogStateKind kind, std::chrono::milliseconds timeout = 30000ms);

  // The final agent text and final user transcript of a turn ("" if none).
  std::string AgentText(const std::string& turn) const;
  std::string UserText(const std::string& turn) const;
  const SessionSeen* Started(const std::string& turn) const;
  std::vector<std::string> StartedTurns(size_t from = 0) const;
  // audio.out frames of a turn louder than `dbfs`.
  int LoudOut(const std::string& turn, double dbfs = -50) const;

  // A request on dialog.request, as the gateway or `vb` would send it.
  void Send(const std::function<void(v1::DialogRequest&)>& fill);
  // `vb VERB ARGS… --config CFG` to completion; returns its exit code.
  int Vb(const std::vector<std::string>& args, std::string* out = nullptr);
  // Current mic position (samples published by capture so far), seconds.
  double MicSeconds() const { return double(mic_samples_) / 16000.0; }

  std::string Dump(size_t from_event = 0) const;
  std::string Logs(const std::vector<std::string>& actors) const;

  TempDir dir_;
  std::string source_;
  std::string endpoint_, config_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_;
  bus::Publisher<v1::DialogRequest> commands_;
  Child vb_;
  bool vb_running_ = false;
  int sim_port_ = 0;

  v1::SessionStatus status_;
  std::vector<SessionSeen> events_;
  std::vector<StateSeen> states_;
  std::vector<PlaybackSeen> playback_;
  std::vector<std::pair<int64_t, v1::VadEvent>> vad_;
  std::vector<std::pair<int64_t, v1::WakeEvent>> wakes_;
  std::vector<std::pair<int64_t, v1::DialogCommand>> commands_seen_;  // vb-control's orders (dialog.order)
  std::vector<int64_t> commands_sent_ns_;                             // Header.mono_ns of each in commands_seen_
  std::map<std::string, v1::Heartbeat> beats_;
  std::map<std::string, std::vector<v1::Heartbeat>> beat_log_;
  std::vector<FrameSeen> mic_, clean_, ref_, out_;
  uint64_t mic_samples_ = 0;
  bool keep_frames_ = true;
};

}  // namespace vb::e2e
