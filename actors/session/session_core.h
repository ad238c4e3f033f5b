// SessionCore: the session's logic without sockets or bus. It decides what
// goes up the WebSocket (chat.update from config and mode, mic audio by the
// streaming rule of actors/README.md, commands turned into Coze events),
// maps what comes down into vendor-neutral bus messages, and holds mic audio
// captured during a short outage to deliver it after reconnecting. The actor
// wires it to the bus and to CozeClient; tests drive it directly.
//
// Nothing said is lost around the session: audio and text inputs that arrive
// while the WebSocket is down are held (bounded) and go out only once the
// server has applied our chat.update (chat.updated), so a conversation that
// had to be replaced is replaced first. The core also keeps a ResumePoint —
// the turn under way and the first audio sample the server has not yet
// turned into a turn — which the actor persists, so a restarted session ends
// the dead turn and asks vb-wakevad's ring for the audio it missed.
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

// Mic PCM (16 kHz mono s16) → what goes into `input_audio_buffer.append`:
// PCM as it is, or Opus (libopus, 20 ms packets) in Ogg pages — the
// documented framing (input_audio format "ogg", codec "opus"): the first
// payload of a stream carries the OpusHead and OpusTags pages, then one page
// per packet.
class UplinkEncoder {
 public:
  ~UplinkEncoder();
  // codec "pcm" or "opus"; false with *error if the encoder cannot start.
  bool Init(const std::string& codec, int sample_rate, int opus_bitrate, std::string* error);
  // Appends zero or more payloads for `pcm` (any length) to *out.
  void Encode(std::string_view pcm, std::vector<std::string>* out);
  // A new utterance: the encoder forgets its past (the Ogg stream goes on).
  void Reset();
  // A new Ogg stream (after every chat.update, which restarts the server's
  // decoder): the next payload starts with the headers again.
  void NewStream();

 private:
  std::string OggPage(std::string_view packet, uint8_t flags, uint64_t granule);
  std::string codec_ = "pcm";
  int sample_rate_ = 16000;
  int frame_bytes_ = 640;
  OpusEncoder* opus_ = nullptr;
  std::string pending_;  // PCM not yet a whole Opus frame
  // Ogg stream state.
  bool headers_sent_ = false;
  uint32_t serial_ = 0x766230;  // "vb0"; +1 per stream
  uint32_t page_seq_ = 0;
  uint64_t granule_ = 0;  // 48 kHz samples so far
  int pre_skip_ = 0;      // 48 kHz samples
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
  // Answer to a command that carried a command_id (dialog.ack).
  virtual void Ack(const std::string& command_id, v1::CommandAck::Result result, const std::string& reason) {}
  // The ResumePoint changed; `urgent` (a turn began or ended, listening
  // started or stopped, the server closed an utterance): persist it now,
  // else at the actor's bounded rate.
  virtual void ResumeChanged(bool urgent) {}
  // Problems worth a (rate-limited) log line.
  virtual void Problem(const std::string& what) {}
  // What is worth an info log line (e.g. what a backfill brought).
  virtual void Note(const std::string& what) {}
  // Asks `device`'s ring of audio.clean (vb-wakevad: session.backfill/<device>)
  // for the audio from req.from_sample; the answer comes back through
  // OnBackfillAnswer. Used when a StartListening names audio the session's own
  // ring does not hold (another device, or too long ago), and after a restart
  // for the audio the previous process missed (ResumeStream).
  virtual void RequestBackfill(const std::string& device, const v1::BackfillRequest& req) {}
};

struct CoreOptions {
  SessionSettings settings;
  v1::DialogMode mode = v1::MODE_CONTINUOUS;
  int outage_buffer_ms = 10000;       // mic audio kept while disconnected
  int text_queue = 8;                 // text inputs kept while disconnected (0 = refuse them)
  int text_queue_max_age_ms = 60000;  // older queued texts are dropped, reported
  // Held audio and texts wait for chat.updated after connecting at most this
  // long (a server that never confirms must not keep them forever).
  int config_wait_ms = 5000;
  std::string service;  // SessionStatus.service, e.g. "coze ws.coze.cn"
  std::string device;   // the device whose audio.clean the session hears at start
  // audio.clean kept, whatever the state, to find a question's start by its
  // sample position (StartListening.from_sample) without asking anyone.
  int ring_ms = 4000;
  // A StartListening's audio fetched from a device's vb-wakevad ring: live
  // audio waits behind the answer at most this long.
  int fetch_wait_ms = 1500;
};

struct CoreCounters {
  uint64_t frames_in = 0;        // audio.clean frames seen
  uint64_t frames_sent = 0;      // appended to the wire
  uint64_t frames_buffered = 0;  // held during an outage
  uint64_t frames_replayed = 0;  // delivered after reconnecting
  uint64_t frames_bridged = 0;   // frames of the session's own ring sent on a StartListening (from_sample on)
  uint64_t frames_dropped = 0;   // outage buffer full, or send queue refused
  uint64_t send_refused = 0;
  uint64_t commands = 0;
  uint64_t reconnects = 0;
  uint64_t texts_queued = 0;       // held during an outage, acked QUEUED
  uint64_t texts_refused = 0;      // queue full or session offline without a queue
  uint64_t texts_expired = 0;      // queued longer than text_queue_max_age_ms
  uint64_t texts_resent = 0;       // sent, no chat started before a disconnect or restart: sent again
  uint64_t frames_backfilled = 0;  // chunks of missed audio received after a restart
  uint64_t frames_requeued = 0;    // sent before a disconnect, sent again after it
  uint64_t frames_guarded = 0;     // held behind by an UplinkGuard (then sent or cut)
  uint64_t frames_guard_cut = 0;   // cut out by an UplinkGuard's end (a wake phrase)
  // StartListening{device, from_sample}: found in the session's own ring, or
  // fetched from the device's vb-wakevad ring (another device, or older than
  // the own ring reaches).
  uint64_t start_from_ring = 0;
  uint64_t start_fetched = 0;
  uint64_t fetch_timeouts = 0;          // no answer within fetch_wait_ms: live audio only
  uint64_t backfill_beyond_newest = 0;  // the ring asked had nothing from that sample on yet
  uint64_t backfill_too_old = 0;        // the ring asked no longer held the start
  uint64_t samples_missed = 0;          // audio known lost (too old, or a hole before the live frames)
  uint64_t frames_other_device = 0;     // audio.clean of a device not streamed (a switch under way)
  uint64_t device_switches = 0;
  // After a restart (ResumeStream): no answer from the device's ring in
  // time, and the person told that audio was missed (SessionError 410).
  uint64_t backfill_timeouts = 0;
  uint64_t audio_missed = 0;
};

// The heartbeat figures of StartListening's audio lookup (README.md).
std::vector<std::pair<std::string, int64_t>> StartFigures(const CoreCounters& c);

// A text input not yet answered by a chat: queued, or sent and waiting for
// its chat to start. `queued_ns` is on the core's (monotonic) clock.
struct PendingText {
  std::string text, request_id, command_id;
  int64_t queued_ns = 0;
  bool operator==(const PendingText&) const = default;
};

// What a restarted session needs to carry on: persisted by the actor.
struct ResumePoint {
  std::string turn_id;  // the chat under way ("" = none)
  v1::DialogMode mode = v1::MODE_UNSPECIFIED;
  // The device whose audio.clean is streamed: resend_from is in its sample
  // numbering, and a restart asks that device's vb-wakevad ring.
  std::string device;
  bool listening = false;    // between StartListening and StopListening
  bool streaming = false;    // mic audio was going to the server
  bool has_samples = false;  // resend_from is meaningful
  // First audio.clean sample the server has not yet made into a turn (or
  // judged silence): what a new connection must be sent again.
  uint64_t resend_from = 0;
  // Texts accepted but not yet answered by a chat, oldest first: a
  // restarted session sends them again (or reports them expired).
  std::vector<PendingText> texts;
  bool operator==(const ResumePoint&) const = default;
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
  // One audio.clean frame; `origin_ns` = its publish/capture time; `device`
  // = whose it is ("" = the device the session hears now).
  void OnAudio(const v1::AudioFrame& frame, int64_t origin_ns, std::string_view device = "");
  // An answer on audio.backfill (any device): taken if it answers the
  // request of a StartListening (RequestBackfill), else false.
  bool OnBackfillAnswer(const v1::AudioBackfill& answer, int64_t origin_ns);
  // The last message of a backfill answer said the start asked for lies
  // beyond the newest sample the ring held: counted and told.
  void NoteBeyondNewest(const std::string& what, uint64_t from, uint64_t newest_end);
  // One order from vb-control (dialog.order), or a request vb-session takes itself (dialog.request).
  void OnCommand(const v1::DialogCommand& cmd);

  // True when a reply is owed (a chat runs, or a request was sent) but the
  // server has said nothing for `timeout_ns`: the connection is alive at
  // the WebSocket level (pongs) yet stuck. The caller reconnects.
  bool Stalled(int64_t now_ns, int64_t timeout_ns) const;

  // ---- restart and outage continuity (see the file comment)
  // Advances the resend point over silence the server has surely consumed and
  // returns what to persist. Called at the actor's bounded rate. "Surely"
  // is judged by when audio went out, not by how many samples did: a
  // backfill or an outage's held audio goes out in one burst, and the
  // server's speech_started for it comes later.
  ResumePoint Resume();
  ResumePoint Resume(int64_t now_ns);
  // After a restart: carry on in the mode and listening state of before.
  void Restore(const ResumePoint& p);
  // The turn `turn_id` was under way when the previous process died:
  // TurnEnded{FAILED, "session restarted"} for it.
  void EndTurnAfterRestart(const std::string& turn_id);
  // Texts the previous process had accepted and no chat had answered: they
  // go first once the server is ready (or expire, reported, after
  // text_queue_max_age_ms from when they were first accepted).
  void RestoreTexts(const std::vector<PendingText>& texts);
  // After a restart: stream `device` again (the ResumePoint's; "" = the
  // session's own) and, if `has_from`, fetch what the previous process
  // missed from sample `from` on (that device's numbering) from that
  // device's vb-wakevad ring, as a StartListening's fetch is (RequestBackfill,
  // OnBackfillAnswer); live audio waits behind the answer at most `wait_ms`.
  // Audio that cannot be fetched is told (SessionError 410) when it may have
  // held words.
  void ResumeStream(const std::string& device, bool has_from, uint64_t from, int wait_ms, int64_t now_ns);
  // Missed audio is being fetched: live audio.clean waits behind it.
  bool backfilling() const { return backfilling_; }
  // The device vb-control serves now (dialog.state.device; "" = unknown).
  // An UplinkGuard's cut is a wake's end in that device's numbering.
  void DialogDevice(const std::string& device) { dialog_device_ = device; }
  // How far behind an UplinkGuard holds the uplink now (ms; 0 = not held).
  uint32_t guard_delay_ms() const {
    return guard_on_ && SamplesPerMs() ? uint32_t(guard_delay_samples_ / SamplesPerMs()) : 0;
  }
  // Expires queued texts; releases held audio if chat.updated never came.
  void Tick(int64_t now_ns);
  size_t queued_texts() const { return texts_.size(); }
  bool ready() const { return connected_ && ready_; }

  // SessionStatus for connect/disconnect and every heartbeat.
  v1::SessionEvent Status() const;
  void PublishStatus();

  bool connected() const { return connected_; }
  // The device whose audio is streamed (named by the last StartListening).
  const std::string& device() const { return device_; }
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
    uint64_t end_sample = 0;  // after its last sample (0 = not from audio.clean, e.g. a preroll)
    int64_t sent_ns = 0;      // when it was written to the wire (sent_tail_ only)
  };
  using QueuedText = PendingText;
  void SendAudio(std::string_view pcm, int64_t origin_ns);
  void Hold(std::string pcm, int64_t origin_ns, uint64_t end_sample = 0);
  // Sends now or holds, by whether the server is ready; tracks the samples.
  // `live`: a frame sent as it came (the mic-to-wire figure measures only
  // those; held, guarded, fetched or replayed audio is late by design).
  void Stream(std::string_view pcm, int64_t origin_ns, uint64_t first_sample, bool indexed, bool live = false);
  void NoteSent(uint64_t end_sample);
  // UplinkGuard: frames wait in guard_ until delay_samples behind the newest.
  void Guard(const v1::AudioFrame& frame, int64_t origin_ns);
  void ReleaseGuard(uint64_t cut_before_sample);
  void MarkReady();
  void SendQueuedText(int64_t now_ns);
  void SendText(const QueuedText& t, int64_t now_ns);
  void Ack(const v1::DialogCommand& cmd, v1::CommandAck::Result r, const std::string& reason);
  bool ServerVad() const { return mode_ != v1::MODE_PUSH_TO_TALK; }
  uint64_t SamplesPerMs() const { return uint64_t(options_.settings.input_sample_rate / 1000); }
  void Deliver(const std::vector<DownlinkOutput>& outs, int64_t recv_ns);
  void SendChatUpdate();
  void Cancel(const std::string& turn_id);
  void Owe(int64_t now_ns) {
    if (!owed_since_ns_) owed_since_ns_ = now_ns;
  }
  // Fetched audio (RequestBackfill's answer): live audio.clean waits behind
  // it; chunks oldest first; at the end (or after the wait) the waiting live
  // audio follows, without what the answer already covered.
  void BeginBackfill();
  void OnBackfill(const v1::AudioFrame& frame, int64_t origin_ns);
  void EndBackfill();
  // Audio missed across a restart that nobody can send any more: told when
  // it may have held words (`ms` < 0: unknown length).
  void TellMissed(int64_t ms);

  CoreOptions options_;
  SessionPort* port_;
  CozeUplink uplink_;
  CozeDownlink downlink_;
  UplinkEncoder encoder_;
  v1::DialogMode mode_;
  std::string conversation_id_;
  bool connected_ = false;
  bool ready_ = false;  // chat.updated came on this connection (or config_wait_ms passed)
  int64_t connected_ns_ = 0;
  bool listening_ = false;         // between StartListening and StopListening
  bool pending_complete_ = false;  // a push-to-talk release during an outage, sent after the held audio
  bool in_speech_ = false;         // the server's VAD heard speech start and not yet stop
  // The server closed an utterance (speech_stopped) and no chat has started
  // for it yet: the resend point stays before it until one does.
  bool utterance_owed_ = false;
  int64_t utterance_owed_ns_ = 0;
  uint64_t utterance_end_ = 0;
  static constexpr int64_t kUtteranceTurnWaitNs = 10'000'000'000;
  void SettleUtterance();
  bool text_turn_pending_ = false;  // a queued text was sent; the next waits for its turn to end
  StringMap tool_outputs_;          // outputs gathered for a chat that called several tools
  std::string tool_outputs_chat_;
  bool clear_pending_ = false;  // a NewConversation during an outage: conversation.clear once ready
  uint64_t speeches_ = 0;       // Speak commands sent (part of their turn ids)
  std::deque<QueuedText> texts_;
  // Sent, and no chat has started for them yet (oldest first): a dropped
  // connection puts them back at the front of texts_; a restart finds them
  // in the ResumePoint.
  std::deque<QueuedText> inflight_;
  static constexpr size_t kInflightTexts = 16;
  // Text commands already taken, by command id, with their answer: a sender
  // that repeats one (vb say, when no ack came) gets the same ack again.
  std::deque<std::pair<std::string, v1::CommandAck::Result>> taken_texts_;
  static constexpr size_t kTakenTexts = 64;
  bool RepeatedText(const v1::DialogCommand& cmd);
  // Sample accounting for the resend point (audio.clean sample indices).
  bool has_samples_ = false;
  uint64_t resend_from_ = 0;
  uint64_t stream_end_ = 0;  // after the last sample streamed (sent or held)
  uint64_t sent_end_ = 0;    // after the last sample written to the wire
  // Audio written since resend_from_: sent again after a disconnect (the
  // server forgets an unfinished utterance with its connection).
  std::deque<Held> sent_tail_;
  size_t sent_tail_bytes_ = 0;
  bool backfilling_ = false;
  bool backfill_got_ = false;  // the answer under way brought audio
  struct Live {
    uint64_t sample_index;
    std::string pcm;
    int64_t origin_ns;
  };
  std::deque<Live> live_wait_;                    // live audio.clean while the backfill is under way
  static constexpr size_t kLiveWaitFrames = 250;  // 5 s of 20 ms frames
  // How long after audio goes out the server's speech_started for it may come.
  static constexpr int64_t kSpeechStartedDelayNs = 1'000'000'000;
  int64_t last_rx_ns_ = 0;     // last downstream frame
  int64_t owed_since_ns_ = 0;  // a request awaiting its reply was sent (0 = none)
  std::deque<Held> held_;      // mic audio during an outage, bounded by outage_buffer_ms
  struct Recent {
    uint64_t sample_index;
    std::string pcm;
    int64_t origin_ns;
  };
  // The last ring_ms of audio.clean of recent_device_, streamed or not: a
  // StartListening's from_sample is looked up here first.
  std::deque<Recent> recent_;
  std::string recent_device_;
  size_t recent_samples_ = 0;
  void Remember(const v1::AudioFrame& frame, int64_t origin_ns, std::string_view device);
  // StartListening{device, from_sample}.
  void StartFrom(const std::string& device, bool has_from, uint64_t from, int64_t now_ns);
  void SwitchDevice(const std::string& device);
  // Frames of the streamed device below this are not sent (a question's
  // start not yet received: the live frames bring it).
  uint64_t live_from_ = 0;
  static constexpr uint64_t kLiveFromSlack = 32000;  // 2 s: further behind is a restarted stream
  // A StartListening's start fetched from a vb-wakevad ring.
  struct Fetch {
    bool on = false;
    std::string device, request_id;
    uint64_t from = 0;
    int64_t started_ns = 0, sent_ns = 0;  // sent_ns 0: not asked yet (waiting for the device's first frame)
    uint64_t attempts = 0;
    bool answered = false;  // some of the answer came: not asked again
    bool restart = false;   // a restart's (ResumeStream), not a StartListening's
    int64_t wait_ns = 0;    // live audio waits behind it at most this long
  } fetch_;
  static constexpr int64_t kFetchRetryNs = 400'000'000;
  uint64_t fetches_ = 0;
  void SendFetch(int64_t now_ns);
  void EndFetch();
  std::string device_;
  std::string dialog_device_;   // DialogDevice
  int64_t other_since_ns_ = 0;  // streaming, frames of another device only since then (0 = none)
  static constexpr int64_t kAdoptAfterNs = 1'000'000'000;
  size_t held_bytes_ = 0;
  size_t HoldLimitBytes() const { return size_t(options_.outage_buffer_ms) * SamplesPerMs() * 2; }
  struct Guarded {
    uint64_t sample_index;
    std::string pcm;
    int64_t origin_ns;
  };
  bool guard_on_ = false;
  int64_t guard_renewed_ns_ = 0;  // a hold not renewed for kGuardExpiryNs lapses
  static constexpr int64_t kGuardExpiryNs = 5'000'000'000;
  uint64_t guard_delay_samples_ = 0;
  std::deque<Guarded> guard_;
  CoreCounters counters_;
  std::vector<DownlinkOutput> outs_;  // reused
  std::vector<std::string> packets_;  // reused
};

}  // namespace vb::session
