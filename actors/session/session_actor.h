// SessionActor: vb-session's bus adapter. It reads its config and the token,
// and wires ConnectionManager (the conversation, one WebSocket to Coze kept
// open with back-off and jitter, stalls, bot changes; no bus) and
// SessionCore between the bus (audio.clean, dialog.order, dialog.request in; session.event,
// session.audio out) and CozeClient. SessionStatus goes out on connect,
// disconnect and every heartbeat. It answers commands that carry a
// command_id on dialog.ack, persists the core's ResumePoint, and after a
// restart ends the turn that died with the previous process and streams the
// device the previous process streamed, asking that device's vb-wakevad
// (session.backfill/<device> → audio.backfill) for the audio it missed.
#pragma once

#include <map>
#include <memory>
#include <optional>

#include <string>
#include "bus/config.h"

#include "actors/session/connection_manager.h"
#include "actors/session/coze_client.h"
#include "actors/session/session_core.h"
#include "actors/session/state_store.h"
#include "actors/session/text_chats.h"
#include "bus/actor.h"
#include "bus/log.h"

namespace vb::session {

class SessionActor : public bus::Actor, private SessionPort, private TextChatPort, private ConnectionPort {
 public:
  SessionActor();
  ~SessionActor() override;
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  Status Activate(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  // SessionPort
  bool SendText(std::string text, int64_t origin_ns) override;
  void PublishEvent(const v1::SessionEvent& event, const std::string& turn_id) override;
  void PublishAudio(const v1::EncodedAudio& audio, const std::string& turn_id, int64_t origin_ns) override;
  void ConversationChanged(const std::string& conversation_id) override;
  void Ack(const std::string& command_id, v1::CommandAck::Result result, const std::string& reason) override;
  void ResumeChanged(bool urgent) override;
  void Problem(const std::string& what) override;  // SessionPort and TextChatPort
  void Note(const std::string& what) override;
  void RequestBackfill(const std::string& device, const v1::BackfillRequest& req) override;
  // TextChatPort
  uint64_t PostStream(const std::string& path, std::string body, TextChatPort::Chunk chunk,
                      TextChatPort::Done done) override;
  void Post(const std::string& path, std::string body, TextChatPort::Done done) override;
  void Abort(uint64_t stream) override;
  void PublishChatEvent(const v1::TextChatEvent& event) override;
  void PublishToolCall(const v1::ToolCall& call, const std::string& chat_id) override;
  void PublishTurnEndedWithTools(const v1::TurnEnded& ended, const std::string& chat_id) override;

  // ConnectionPort
  uint64_t OpenSocket(const std::string& path_and_query) override;
  void CloseSocket() override;
  void PostJson(const std::string& path, std::string body, ConnectionPort::HttpDone done) override;
  int64_t Now() override;
  ConnectionPort::TimerId After(std::chrono::nanoseconds delay, std::function<void()> fn) override;
  void CancelTimer(ConnectionPort::TimerId id) override;
  void PublishError(int code, const std::string& message, bool fatal) override;
  void Count(const char* counter) override;
  void CountError() override;
  void Healthy() override;
  void Degraded(const std::string& why) override;
  std::string SavedConversation(const std::string& bot_id) override;
  void BotChanged(const std::string& bot_id) override;

  // Restart continuity (see the file comment).
  void Resume(const SessionState& st);
  void StartupStep();
  // `periodic`: the half-second timer's save, where an advance of the
  // resend point alone may wait (kResumeAdvanceMs); every other save is of
  // a change that must survive a kill at once.
  void SaveResume(bool durable, bool periodic = false);
  // audio.clean of `device` from now on (dialog.state.device, or the
  // device a restarted session streamed before).
  void Follow(const std::string& device);
  void OnClean(const bus::Received<v1::AudioFrame>& m);
  // While an UplinkGuard holds the uplink seconds behind, audio.clean from a
  // same-host vb-afe does not wake the loop for each frame: it is read every
  // kGuardReadMs and before every order, request and dialog.state (so a
  // wake's cut and a StartListening see every frame before them).
  void UpdateCleanLazy();
  void SetCleanLazy(bool lazy);  // on clean_device_; off reads what waits first
  void ReadHeldBack() {
    if (clean_lazy_) ctx_->bus().DrainLazy();
  }
  // Publishes the backfill request waiting for its subscriber (a message
  // published before the broker has passed on a subscription is lost).
  void SendBackfill();

  // Config.
  std::string bot_id_, api_base_, ws_base_, token_file_, ca_file_, coze_device_id_;
  std::string fixed_conversation_, state_dir_, mode_name_;
  int outage_buffer_ms_ = 10000;
  int text_queue_ = 8, text_queue_max_age_s_ = 60;
  int resume_max_age_s_ = 30;
  int backfill_wait_ms_ = 2500;
  std::optional<config::Section> section_;  // where keys are written, for errors found at Configure
  int reconnect_initial_ms_ = 1000, reconnect_max_ms_ = 32000;
  double reconnect_jitter_ = 0.25;
  int ping_s_ = 10, hangup_s_ = 30;
  int stall_timeout_s_ = 20;
  int max_send_queue_ = 1024;
  int text_max_running_ = 32, text_tool_timeout_ms_ = 10000;
  SessionSettings settings_;
  Url ws_url_, api_url_;

  bus::Context* ctx_ = nullptr;
  std::string clean_device_;  // whose audio.clean is streamed (dialog.state.device; issue 16)
  std::unique_ptr<SessionCore> core_;
  std::unique_ptr<CozeClient> client_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ConnectionManager> conn_;
  std::unique_ptr<TextChats> text_chats_;
  bus::Publisher<v1::TextChatEvent> chat_events_;
  bus::Publisher<v1::SessionEvent> events_;
  bus::Publisher<v1::EncodedAudio> audio_;
  bus::Publisher<v1::CommandAck> acks_;
  std::map<std::string, bus::Publisher<v1::BackfillRequest>> device_backfill_req_;  // session.backfill/<device>
  std::optional<std::pair<std::string, v1::BackfillRequest>> backfill_pending_;     // (device, request)
  bus::Loop::TimerId backfill_timer_ = 0;
  bus::Loop::TimerId persist_timer_ = 0;
  bus::Loop::TimerId startup_timer_ = 0;
  bool clean_lazy_ = false;  // audio.clean read in batches (UpdateCleanLazy)
  bus::Loop::TimerId clean_read_timer_ = 0;
  int64_t started_ns_ = 0;
  SessionState state_;       // as last written
  std::string orphan_turn_;  // the previous process's turn, until TurnEnded is out
  bool stopping_ = false;
  bus::Histogram downlink_us_;
  RateLimit problem_log_;
};

}  // namespace vb::session
