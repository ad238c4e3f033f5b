// SessionCore: the session's logic without sockets or bus. It decides what
// goes up the WebSocket (chat.update from config and mode, mic audio by the
// streaming rule of actors/README.md, commands turned into Coze events),
// maps what comes down into vendor-neutral bus messages, and holds mic audio
// captured during a short outage to deliver it after reconnecting. The actor
// wires it to the bus and to CozeClient; tests drive it directly.
//
// Not thread-safe: everything runs on the actor's loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "actors/session/coze_protocol.h"
#include "vb/v1/audio.pb.h"
#include "vb/v1/dialog.pb.h"

struct OpusEncoder;

namespace vb::session {

// Reconnect delays: 1 s doubling to 32 s (configurable), each with ±jitter
// so a fleet of devices does not reconnect in lockstep.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter, uint64_t seed);
  // The delay before the next attempt; grows until Reset().
  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  std::chrono::milliseconds initial_, max_;
  double jitter_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

// Mic PCM (16 kHz mono s16) → what goes into `input_audio_buffer.append`:
// PCM as it is, or one raw Opus packet per 20 ms (libopus).
class UplinkEncoder {
 public:
  ~UplinkEncoder();
  // codec "pcm" or "opus"; false with *error if the encoder cannot start.
  bool Init(const std::string& codec, int sample_rate, int opus_bitrate, std::string* error);
  // Appends zero or more payloads for `pcm` (any length) to *out.
  void Encode(std::string_view pcm, std::vector<std::string>* out);
  void Reset();

 private:
  std::string codec_ = "pcm";
  int frame_bytes_ = 640;
  OpusEncoder* opus_ = nullptr;
  std::string pending_;  // PCM not yet a whole Opus frame
};

// What the core tells the outside world. Implemented by the actor (bus +
// WebSocket) and by tests (recording).
class SessionPort {
 public:
  virtual ~SessionPort() = default;
  // Sends one text frame on the WebSocket; `origin_ns` is the capture/publish
  // time of the audio it carries (0 if none). False if it could not be queued.
  virtual bool SendText(std::string text, int64_t origin_ns) = 0;
  virtual void PublishEvent(const v1::SessionEvent& event, const std::string& turn_id) = 0;
  // `origin_ns`: when the packet arrived from the wire.
  virtual void PublishAudio(const v1::EncodedAudio& audio, const std::string& turn_id, int64_t origin_ns) = 0;
  // The conversation id changed (new or confirmed): persist it.
  virtual void ConversationChanged(const std::string& conversation_id) {}
  // Problems worth a (rate-limited) log line.
  virtual void Problem(const std::string& what) {}
};

struct CoreOptions {
  SessionSettings settings;
  v1::DialogMode mode = v1::MODE_CONTINUOUS;
  int outage_buffer_ms = 5000;   // mic audio kept while disconnected
  std::string service;           // SessionStatus.service, e.g. "coze ws.coze.cn"
};

struct CoreCounters {
  uint64_t frames_in = 0;        // audio.clean frames seen
  uint64_t frames_sent = 0;      // appended to the wire
  uint64_t frames_buffered = 0;  // held during an outage
  uint64_t frames_replayed = 0;  // delivered after reconnecting
  uint64_t frames_bridged = 0;   // recent frames sent after a preroll (see StartListening)
  uint64_t frames_dropped = 0;   // outage buffer full, or send queue refused
  uint64_t send_refused = 0;
  uint64_t commands = 0;
  uint64_t reconnects = 0;
};

class SessionCore {
 public:
  SessionCore(CoreOptions options, SessionPort* port);

  // Starts the encoder; false with *error on a bad codec.
  bool Init(std::string* error);

  // The conversation to use (persisted or just created over REST).
  void SetConversation(const std::string& conversation_id);
  const std::string& conversation_id() const { return conversation_id_; }

  // Sends chat.update again (e.g. after the conversation changed), if connected.
  void Reconfigure() {
    if (connected_) SendChatUpdate();
  }
  // The WebSocket is open: configure the session and deliver held audio.
  void OnConnected();
  // The WebSocket is gone; a running turn is reported FAILED.
  void OnDisconnected(const std::string& reason);
  // One downstream text frame; `recv_ns` = when it came off the wire.
  void OnServerText(std::string_view text, int64_t recv_ns);
  // A command arriving at `now_ns` (the stall clock); OnCommand uses the monotonic clock.
  void OnCommandAt(const v1::DialogCommand& cmd, int64_t now_ns);
  // One audio.clean frame; `origin_ns` = its publish/capture time.
  void OnAudio(const v1::AudioFrame& frame, int64_t origin_ns);
  // One dialog.command.
  void OnCommand(const v1::DialogCommand& cmd);

  // True when a reply is owed (a chat runs, or a request was sent) but the
  // server has said nothing for `timeout_ns`: the connection is alive at
  // the WebSocket level (pongs) yet stuck. The caller reconnects.
  bool Stalled(int64_t now_ns, int64_t timeout_ns) const;

  // SessionStatus for connect/disconnect and every heartbeat.
  v1::SessionEvent Status() const;
  void PublishStatus();

  bool connected() const { return connected_; }
  bool streaming() const;
  v1::DialogMode mode() const { return mode_; }
  const SessionSettings& settings() const { return options_.settings; }
  uint32_t buffered_ms() const;
  const CoreCounters& counters() const { return counters_; }
  const CozeDownlink& downlink() const { return downlink_; }
  // A SessionConfig asked for another bot: the actor must reconnect with it.
  std::function<void(const std::string& bot_id)> on_bot_change;

 private:
  struct Held {
    std::string pcm;
    int64_t origin_ns;
  };
  void SendAudio(std::string_view pcm, int64_t origin_ns);
  void Hold(std::string pcm, int64_t origin_ns);
  void Deliver(const std::vector<DownlinkOutput>& outs, int64_t recv_ns);
  void SendChatUpdate();
  void Cancel(const std::string& turn_id);
  void Owe(int64_t now_ns) {
    if (!owed_since_ns_) owed_since_ns_ = now_ns;
  }

  CoreOptions options_;
  SessionPort* port_;
  CozeUplink uplink_;
  CozeDownlink downlink_;
  UplinkEncoder encoder_;
  v1::DialogMode mode_;
  std::string conversation_id_;
  bool connected_ = false;
  bool listening_ = false;   // between StartListening and StopListening
  int64_t last_rx_ns_ = 0;   // last downstream frame
  int64_t owed_since_ns_ = 0;  // a request awaiting its reply was sent (0 = none)
  std::deque<Held> held_;    // mic audio during an outage, bounded by outage_buffer_ms
  struct Recent {
    uint64_t sample_index;
    std::string pcm;
  };
  // audio.clean while not streaming, the last second: bridges a preroll to
  // the live frames (StartListening.preroll_end_sample).
  std::deque<Recent> recent_;
  static constexpr size_t kRecentFrames = 50;
  size_t held_bytes_ = 0;
  CoreCounters counters_;
  std::vector<DownlinkOutput> outs_;  // reused
  std::vector<std::string> packets_;  // reused
};

}  // namespace vb::session
