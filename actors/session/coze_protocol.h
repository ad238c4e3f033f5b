// The Coze streaming-chat protocol (coze-protocol.md §2–§5), as pure data
// mapping: bus commands and settings in → upstream JSON text out
// (CozeUplink), downstream JSON text in → vendor-neutral bus messages out
// (CozeDownlink). Nothing here touches a socket or the bus, so every rule is
// unit-tested with recorded JSON. This is the only place that knows Coze's
// JSON; a session actor for another service replaces this file, not the bus.
//
// Not thread-safe: one instance per connection, used on the actor's loop.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vb/v1/audio.pb.h"
#include "vb/v1/dialog.pb.h"

namespace vb::session {

using StringMap = std::vector<std::pair<std::string, std::string>>;

// Everything chat.update says, from config and SessionConfig commands
// (coze-protocol.md §3; every field of seed 000's session). Empty = not sent.
struct SessionSettings {
  std::string user_id;
  StringMap meta_data;              // chat_config.meta_data
  StringMap custom_variables;       // chat_config.custom_variables (persona_prompt joins them)
  StringMap parameters;             // chat_config.parameters (chat-flow inputs)
  std::string latitude, longitude;  // chat_config.extra_params
  // asr_config
  std::vector<std::string> hot_words;
  std::string asr_context, user_language;
  // turn_detection: "server_vad" or "semantic_vad" outside push-to-talk.
  std::string vad_type = "server_vad";
  int semantic_silence_threshold_ms = 300;
  int semantic_unfinished_wait_ms = 500;
  std::string interrupt_mode;                   // "", keyword_contains, keyword_prefix
  std::vector<std::string> interrupt_keywords;  // ≤ 5
  std::string prologue_content;
  // Uplink audio: "pcm" (s16le) or "opus" (Ogg Opus pages, format "ogg").
  std::string input_codec = "pcm";
  int input_sample_rate = 16000;
  int input_opus_bitrate = 24000;
  // Downlink audio: "opus" or "pcm".
  std::string output_codec = "opus";
  int output_sample_rate = 16000;
  int frame_size_ms = 60;
  int opus_bitrate = 16000;
  int limit_period_s = 1;  // limit_config.period; 0 = no limit_config
  int limit_max_frames = 18;
  int speech_rate = 0;
  std::string voice_id;
  int prefix_padding_ms = 600;
  int silence_duration_ms = 500;
  std::vector<std::string> event_subscriptions;  // empty = all
  std::string persona_prompt;                    // sent as chat_config.custom_variables.persona_prompt
  bool need_play_prologue = false;
};

// What a person reads for a Coze error: "CODE: msg (meaning)" with the
// meaning of every code coze-protocol.md §7 lists ("CODE: meaning" without a
// message; the meaning is left out when the message already says it).
std::string CozeErrorText(int64_t code, const std::string& msg);
// True for the codes a person must fix (token, permission, balance, bot not
// published): the session cannot go on without that.
bool CozeErrorFatal(int64_t code);

// Standard base64 (RFC 4648, with padding).
std::string Base64Encode(std::string_view bytes);
// False on characters outside the alphabet or bad length.
bool Base64Decode(std::string_view text, std::string* out);

// Builds upstream events. Event ids are "vb-<n>" (the server must not rely on them).
class CozeUplink {
 public:
  std::string ChatUpdate(const SessionSettings& s, v1::DialogMode mode, const std::string& conversation_id);
  std::string Append(std::string_view audio_bytes);
  std::string Complete();
  std::string Clear();
  std::string Cancel();
  std::string MessageCreate(const std::string& text);
  std::string ConversationClear();
  // input_text.generate_audio {mode: text, text}.
  std::string GenerateAudio(const std::string& text);
  // Every output of a chat's tool calls in one event (Coze resumes the chat
  // once it has them all): {call_id, output} pairs.
  std::string SubmitToolOutputs(const std::string& chat_id, const StringMap& outputs);
  std::string SubmitToolOutputs(const std::string& chat_id, const std::string& call_id, const std::string& output);

 private:
  std::string NextId();
  uint64_t next_id_ = 1;
};

// One output of the downlink mapping, published by the caller.
struct DownlinkOutput {
  enum class Kind {
    kEvent,          // publish `event` on session.event, Header.turn_id = turn_id
    kAudio,          // publish `audio` on session.audio, Header.turn_id = turn_id
    kSessionReady,   // chat.created: the connection is accepted
    kConfigApplied,  // chat.updated
  };
  Kind kind = Kind::kEvent;
  std::string turn_id;
  v1::SessionEvent event;
  v1::EncodedAudio audio;
};

struct DownlinkCounters {
  uint64_t events = 0;
  uint64_t malformed = 0;           // not JSON, not an object, no event_type
  uint64_t wrong_type = 0;          // a known event with a field of the wrong type
  uint64_t unknown = 0;             // event_type we do not know
  uint64_t late_audio_dropped = 0;  // audio/text of a cancelled chat
  uint64_t audio_packets = 0;
  uint64_t ignored = 0;  // known, nothing to publish (acks, verbose messages)
};

class CozeDownlink {
 public:
  // Nominal downlink format (updated by chat.updated if the server says otherwise).
  void SetOutputFormat(const std::string& codec, int sample_rate, int frame_size_ms);
  // The next chat the server creates answers this TextInput.
  void ExpectTextTurn(const std::string& request_id);
  // `chat_id` (or the running chat if empty) is being cancelled: its late
  // audio and text are dropped from now on. Returns the chat id marked, "" if none.
  std::string MarkCancelled(const std::string& chat_id);
  // The client cancelled the chat (Interrupt): marks it and reports
  // TurnEnded{CANCELLED, CLIENT_CANCEL} at once if it is the running chat, so
  // the dialog does not wait for the server's confirmation (which is then
  // not reported twice). Returns the chat id, "" if nothing was running.
  std::string CancelByClient(const std::string& chat_id, std::vector<DownlinkOutput>* out);
  // The connection was lost: the running chat will never finish. Reports
  // TurnEnded{FAILED} for it; returns its id ("" if none).
  std::string AbandonRunning(std::vector<DownlinkOutput>* out);
  // input_text.generate_audio was sent: its audio (chat id "0" or none)
  // belongs to the turn `turn_id`, which runs until audio.completed.
  void BeginSpeech(const std::string& turn_id);
  bool speaking() const { return !speech_.empty() && speech_ == running_; }
  // A request that was to start a chat (a text) failed before any chat was
  // created: the next chat is not its answer.
  void ForgetExpectedText() {
    if (!pending_requests_.empty()) pending_requests_.pop_front();
  }
  // The connection is gone: no chat on the next one answers a text sent on this one.
  void ForgetExpectedTexts() { pending_requests_.clear(); }

  // Maps one downstream text frame. Never throws; a problem is counted and
  // described in *problem (for rate-limited logging), and nothing is output.
  void Feed(std::string_view text, std::vector<DownlinkOutput>* out, std::string* problem);

  const std::string& running_chat() const { return running_; }
  const std::string& conversation_id() const { return conversation_id_; }
  const std::string& tool_chat() const { return tool_chat_; }
  // The call ids tool_chat() waits for (its last requires_action).
  const std::vector<std::string>& tool_calls() const { return tool_calls_; }
  bool IsCancelled(const std::string& chat_id) const;
  const DownlinkCounters& counters() const { return counters_; }

  static constexpr size_t kCancelledKept = 64;

  // Feed's table (coze-protocol.md §4): every downstream event type it
  // knows, and whether it is deliberately ignored (an acknowledgement with
  // nothing to publish, counted `ignored`). Any other type is counted `unknown`.
  struct EventType {
    std::string_view type;
    bool ignored = false;
  };
  static std::vector<EventType> KnownEventTypes();

 private:
  // The table: one handler per event type (coze_protocol.cc).
  struct Event;
  struct Handlers;
  using Handler = void (*)(CozeDownlink&, Event&);
  struct Entry {
    std::string_view type;
    Handler handler;
  };
  static std::span<const Entry> Table();
  v1::Codec OutCodec() const;
  void EndTurn(const std::string& chat_id);

  std::string out_codec_ = "opus";
  int out_rate_ = 16000;
  int frame_ms_ = 60;
  std::string running_;                       // chat id of the running chat, "" if none
  std::string conversation_id_;               // as the server reported it
  std::string tool_chat_;                     // chat waiting for tool outputs
  std::vector<std::string> tool_calls_;       // the calls it waits for
  std::deque<std::string> pending_requests_;  // TextInput request ids, oldest first
  std::deque<std::string> cancelled_;
  std::string speech_;      // the generate_audio turn under way ("" = none)
  std::string audio_chat_;  // chat whose packets are being counted
  uint64_t packet_index_ = 0;
  DownlinkCounters counters_;
};

}  // namespace vb::session
