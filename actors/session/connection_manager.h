// ConnectionManager: vb-session's connection policy, without the bus or a
// socket. It finds the conversation (configured, persisted for this bot, or
// created over REST: POST /v1/conversation/create), keeps one WebSocket to
// /v1/chat open — a refused or dropped connection and a failed REST call are
// retried after vb::Backoff's delay (doubling, jittered, back to the first
// delay once a connection opens) —, drops and reopens a stalled connection
// (a reply owed, the server silent for stall_timeout), reconnects to another
// bot when a SessionConfig asks for one (with that bot's conversation; what
// SessionCore holds — queued texts, the outage buffer — stays), and replaces
// a conversation the server no longer knows (error 4002).
//
// It drives SessionCore (conversation, connected, disconnected; it sets the
// core's on_bot_change) and reaches everything else through ConnectionPort:
// the transport (CozeClient in vb-session), the monotonic clock and one-shot
// timers (the actor's loop; a fake clock in the tests), and the reports
// (SessionError on session.event, counters, health). So every rule here is
// unit-tested with a fake clock (tests/unit/session/connection_manager_test.cc).
//
// Not thread-safe: one instance, on the actor's loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "actors/session/session_core.h"
#include "bus/backoff.h"
#include "bus/log.h"

namespace vb::session {

class ConnectionPort {
 public:
  using HttpDone = std::function<void(int http_status, std::string body, std::string error)>;
  using TimerId = uint64_t;
  virtual ~ConnectionPort() = default;

  // ---- transport
  // Opens the WebSocket (`path_and_query`, e.g. "/v1/chat?bot_id=1"), closing
  // any previous one; returns the connection's generation, which the
  // transport's reports (ConnectionManager::OnOpened, OnText, OnClosed) carry.
  virtual uint64_t OpenSocket(const std::string& path_and_query) = 0;
  virtual void CloseSocket() = 0;
  // POSTs JSON to the REST base; `done` runs later, on the same thread.
  virtual void PostJson(const std::string& path, std::string body, HttpDone done) = 0;

  // ---- time: the monotonic clock (ns) and one-shot timers (ids are never 0)
  virtual int64_t Now() = 0;
  virtual TimerId After(std::chrono::nanoseconds delay, std::function<void()> fn) = 0;
  virtual void CancelTimer(TimerId id) = 0;

  // ---- reports
  // A SessionError on session.event (no turn).
  virtual void PublishError(int code, const std::string& message, bool fatal) = 0;
  // Heartbeat counters: "retries", "disconnects", "stalls".
  virtual void Count(const char* counter) {}
  virtual void CountError() {}
  virtual void Healthy() {}
  virtual void Degraded(const std::string& why) {}
  // The conversation persisted for `bot_id` on this service ("" = none).
  virtual std::string SavedConversation(const std::string& bot_id) { return ""; }
  // The bot changed (a SessionConfig): called before reconnecting.
  virtual void BotChanged(const std::string& bot_id) {}
};

struct ConnectionOptions {
  std::string bot_id;
  std::string device_id;        // the device_id query parameter ("" = not sent)
  std::string conversation_id;  // configured: always this one, none is created
  std::string ws_service;       // host[:port] of the WebSocket, for logs
  std::string api_service;      // host[:port] of REST, for logs
  std::string state_file;       // where the conversation is persisted, for logs
  std::chrono::milliseconds reconnect_initial{1000}, reconnect_max{32000};
  double reconnect_jitter = 0.25;
  uint64_t seed = 0;  // the jitter's (0 = random)
  std::chrono::nanoseconds stall_timeout = std::chrono::seconds(20);
  std::chrono::nanoseconds stall_check = std::chrono::seconds(1);
};

class ConnectionManager {
 public:
  // SessionError.code for a refused server certificate (nginx's
  // "SSL certificate error"; Coze has no code for it).
  static constexpr int kTlsErrorCode = 495;
  // A refused certificate is said once, and again this often while it lasts.
  static constexpr int64_t kTlsRepeatNs = 10'000'000'000;
  // At most one new conversation per this long for error 4002.
  static constexpr int64_t kRecreateMinNs = 10'000'000'000;

  ConnectionManager(ConnectionOptions options, SessionCore* core, ConnectionPort* port);
  ~ConnectionManager();
  ConnectionManager(const ConnectionManager&) = delete;
  ConnectionManager& operator=(const ConnectionManager&) = delete;

  // Finds the conversation and connects; the stall check starts.
  void Start();
  // Shutdown: timers cancelled, the core told, later reports ignored (the
  // caller stops the transport).
  void Stop();

  // The transport's reports.
  void OnOpened(uint64_t gen);
  void OnText(uint64_t gen, std::string_view text, int64_t recv_ns);
  void OnClosed(uint64_t gen, const std::string& reason, int http_status);
  // A SessionConfig asked for `bot_id` (SessionCore::on_bot_change).
  void ChangeBot(const std::string& bot_id);
  // A SessionEvent was published: error 4002 (the conversation is unknown
  // to the server) makes a new one, unless it is configured.
  void OnPublished(const v1::SessionEvent& event);

  const std::string& bot_id() const { return bot_id_; }
  bool stopping() const { return stopping_; }
  bool creating() const { return creating_; }
  // A retry (connect or REST) is waiting for its delay.
  bool retry_pending() const { return retry_timer_ != 0; }

 private:
  void FindConversation();
  void CreateConversation();
  void OnCreated(uint64_t attempt, int status, const std::string& body, const std::string& error);
  void Connect();
  void ScheduleRetry(void (ConnectionManager::*step)());
  void CheckStall();
  // A refused certificate: true if it is to be said now (once, then every kTlsRepeatNs).
  bool SayTls(const std::string& what);

  ConnectionOptions options_;
  SessionCore* core_;
  ConnectionPort* port_;
  std::string bot_id_;
  Backoff backoff_;
  uint64_t gen_ = 0;             // the connection whose reports count
  uint64_t create_attempt_ = 0;  // the conversation/create whose answer counts
  ConnectionPort::TimerId retry_timer_ = 0, stall_timer_ = 0;
  bool creating_ = false;
  bool stopping_ = false;
  int64_t last_recreate_ns_ = INT64_MIN / 2;
  std::string last_tls_error_;  // said once until a connection opens
  int64_t last_tls_error_ns_ = 0;
  RateLimit close_log_;
};

}  // namespace vb::session
