// One WebSocket connection of `/v1/chat`, as a plain state machine: upstream
// JSON text in (OnText), downstream events out (Pump), with the slow work
// (synthesis, recognition) requested through Services and its results fed
// back (OnSynthesized, OnRecognized). No sockets here, so every protocol rule
// of coze-protocol.md §3–§6 is unit-testable. Runs on the event loop thread.
//
// Downstream events sit in two bounded queues: `immediate_` (acks, errors,
// VAD events: sent at once) and `stream_` (the reply: text, captions, audio,
// completion, in the order of §5; audio paced by limit_config).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tools/coze-sim/agent.h"
#include "tools/coze-sim/audio_codec.h"
#include "tools/coze-sim/faults.h"
#include "tools/coze-sim/recognizer.h"
#include "tools/coze-sim/services.h"
#include "tools/coze-sim/store.h"
#include "tools/coze-sim/vad.h"

namespace vb::cozesim {

struct SessionContext {
  Store* store;
  const Agent* agent;
  Services* services;
  const Faults* faults;    // the connection's faults (error_code, slow_audio); may be null
  Faults* live = nullptr;  // the server's current faults: turn faults are taken from here
};

class Session {
 public:
  static constexpr size_t kMaxImmediate = 1024;          // overflow closes the connection
  static constexpr size_t kMaxPttSamples = 16000 * 120;  // push-to-talk buffer: 2 minutes
  static constexpr size_t kMaxSentenceChars = 240;

  Session(uint64_t id, SessionContext ctx, std::string bot_id, std::string logid);

  // Queues `chat.created`; call once after the handshake.
  void Start();
  // One upstream text frame. Never throws; bad input becomes an `error` event.
  void OnText(std::string_view text);
  void OnSynthesized(uint64_t job, std::vector<int16_t> pcm, int rate);
  void OnRecognized(uint64_t job, const RecognitionResult& result);

  // Moves up to `max` due events (serialized JSON) into *out. Returns the
  // milliseconds until more audio may be sent (pacing), 0 if more is ready
  // now, or -1 if nothing is pending.
  int64_t Pump(int64_t now_ms, size_t max, std::vector<std::string>* out);
  bool HasPending() const { return !immediate_.empty() || !stream_.empty(); }
  bool overflow() const { return overflow_; }
  uint64_t id() const { return id_; }
  const std::string& logid() const { return logid_; }
  const std::string& conversation_id() const { return conversation_id_; }
  uint64_t events_sent() const { return events_sent_; }

 private:
  struct Out {
    std::string type;
    Json data;           // null: no data field
    std::string origin;  // error events: offending input
  };
  enum class ItemKind { kEvent, kAudio, kChatCompleted, kAnswerCompleted, kChatFailed };
  struct Item {
    ItemKind kind;
    Out out;                   // kEvent
    std::vector<int16_t> pcm;  // kAudio
    int rate = 0;
    bool loaded = false;
    uint64_t gen = 0;
    bool final = false;  // kAudio: last sentence, flush the short last frame
  };
  // The reply being produced (at most one per session).
  struct Run {
    Run() {}  // user-provided: clang checks std::optional<Run> before Session is complete
    uint64_t gen = 0;
    bool tts_only = false;  // input_text.generate_audio
    std::string chat_id, conversation_id, section_id, answer_id;
    std::vector<std::string> sentences;
    size_t next_synth = 0;
    uint64_t synth_job = 0;
    std::string full_text;
    std::optional<ToolCall> tool;
    std::string tool_call_id;
    bool with_audio = true;
    bool awaiting_tool = false;
    bool text_only_flushed = false;
    std::optional<TurnFault> failure;  // the chat fails after failure->after_sentences
  };

  // Upstream handlers.
  void HandleChatUpdate(const Json& data, std::string_view raw);
  void HandleAppend(const Json& data, std::string_view raw);
  void HandleComplete();
  void HandleClear();
  void HandleMessageCreate(const Json& data, std::string_view raw);
  void HandleConversationClear();
  void HandleSubmitToolOutputs(const Json& data, std::string_view raw);
  void HandleCancel();
  void HandleGenerateAudio(const Json& data, std::string_view raw);

  // Reply machinery.
  Conversation& EnsureConversation();
  void StartTurn(const std::string& user_text, bool interrupt_code3);
  void BeginAnswer(const std::string& text, bool tts_only);
  void SubmitNextSentence();
  void CancelRun(int code, const char* msg);
  // Ends the running chat `conversation.chat.failed` with last_error.
  void FailRun(const TurnFault& f);
  bool RunActive() const { return run_.has_value(); }
  void OnAudioFeed(const std::vector<int16_t>& pcm16k);
  void Recognize(std::vector<int16_t> utterance, bool barge_in_check);

  // Output helpers.
  void Emit(const std::string& type, Json data = nullptr);
  void EmitError(int code, const std::string& msg, std::string_view origin);
  void PushStream(const std::string& type, Json data);
  bool Subscribed(const std::string& type) const;
  std::string Serialize(const Out& o) const;
  Json MessageJson(const std::string& id, const std::string& type, const std::string& content,
                   const std::string& content_type, const std::string& role = "assistant") const;
  Json EffectiveConfig() const;
  Chat* CurrentChat();
  static std::vector<std::string> SplitSentences(const std::string& text);
  static std::vector<std::string> SplitFragments(const std::string& sentence);

  uint64_t id_;
  SessionContext ctx_;
  std::string bot_id_, logid_;
  std::string conversation_id_;
  Json chat_config_ = Json::object();
  std::string user_id_;

  InputAudioConfig in_cfg_;
  OutputAudioConfig out_cfg_;
  std::string out_codec_requested_ = "pcm";
  int speech_rate_ = 0;
  double limit_period_ms_ = 0;
  int limit_max_frames_ = 0;
  std::string turn_type_ = "client_interrupt";
  int prefix_padding_ms_ = 600, silence_duration_ms_ = 500;
  std::string interrupt_mode_;
  std::vector<std::string> interrupt_keywords_;
  std::set<std::string> subscriptions_;
  Json last_update_ = Json::object();

  std::unique_ptr<InputDecoder> decoder_;
  std::unique_ptr<Vad> vad_;
  std::vector<int16_t> ptt_;
  std::unique_ptr<OutputEncoder> encoder_;

  std::optional<Run> run_;
  uint64_t gen_ = 0;
  uint64_t next_job_ = 1;
  uint64_t recog_job_ = 0;
  bool recog_barge_in_check_ = false;
  std::deque<Out> immediate_;
  std::deque<Item> stream_;
  bool overflow_ = false;
  uint64_t events_sent_ = 0;

  // Pacing (limit_config / slow_audio).
  int64_t window_start_ms_ = 0;
  int window_frames_ = 0;
  int64_t next_audio_ms_ = 0;
};

}  // namespace vb::cozesim
