// ConnectionManager (see connection_manager.h).
#include "actors/session/connection_manager.h"

#include <nlohmann/json.hpp>

#include "bus/text.h"

namespace vb::session {
namespace {

// What POST /v1/conversation/create answered: {code, msg, data{id}}.
struct Created {
  std::string id;  // "" = failed
  int64_t code = -1;
  std::string msg;
};

Created ParseCreated(const std::string& body, const std::string& error) {
  Created c;
  c.msg = error;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return c;
  if (auto it = j.find("code"); it != j.end() && it->is_number_integer()) c.code = it->get<int64_t>();
  if (auto m = j.find("msg"); m != j.end() && m->is_string() && c.msg.empty()) c.msg = m->get<std::string>();
  auto d = j.find("data");
  if (c.code == 0 && d != j.end() && d->is_object()) {
    auto i = d->find("id");
    if (i != d->end() && i->is_string()) c.id = i->get<std::string>();
    else if (i != d->end() && i->is_number_unsigned()) c.id = std::to_string(i->get<uint64_t>());
  }
  return c;
}

bool IsTls(const std::string& what) { return what.rfind("TLS to ", 0) == 0; }

}  // namespace

ConnectionManager::ConnectionManager(ConnectionOptions options, SessionCore* core, ConnectionPort* port)
    : options_(std::move(options)),
      core_(core),
      port_(port),
      bot_id_(options_.bot_id),
      backoff_(options_.reconnect_initial, options_.reconnect_max, Backoff::kNeverReset, options_.reconnect_jitter,
               options_.seed) {
  core_->on_bot_change = [this](const std::string& bot) { ChangeBot(bot); };
}

ConnectionManager::~ConnectionManager() {
  if (core_) core_->on_bot_change = nullptr;
}

void ConnectionManager::Start() {
  FindConversation();
  stall_timer_ = port_->After(options_.stall_check, [this] { CheckStall(); });
}

void ConnectionManager::Stop() {
  stopping_ = true;
  if (retry_timer_) port_->CancelTimer(retry_timer_);
  if (stall_timer_) port_->CancelTimer(stall_timer_);
  retry_timer_ = stall_timer_ = 0;
  ++gen_;  // reports of the closing connection are stale now
  core_->OnDisconnected("stopping");
}

void ConnectionManager::FindConversation() {
  if (!options_.conversation_id.empty()) {
    core_->SetConversation(options_.conversation_id);
    return Connect();
  }
  if (std::string saved = port_->SavedConversation(bot_id_); !saved.empty()) {
    VB_LOG(kInfo) << "continuing conversation " << saved << " (from " << options_.state_file << ")";
    core_->SetConversation(saved);
    return Connect();
  }
  CreateConversation();
}

void ConnectionManager::CreateConversation() {
  if (creating_ || stopping_) return;
  creating_ = true;
  VB_LOG(kInfo) << "creating a conversation at " << options_.api_service << " for bot " << bot_id_;
  const uint64_t attempt = ++create_attempt_;
  port_->PostJson(
      "/v1/conversation/create", nlohmann::json{{"bot_id", bot_id_}}.dump(),
      [this, attempt](int status, std::string body, std::string error) { OnCreated(attempt, status, body, error); });
}

void ConnectionManager::OnCreated(uint64_t attempt, int status, const std::string& body, const std::string& error) {
  if (attempt != create_attempt_) return;  // for the bot before a change
  creating_ = false;
  if (stopping_) return;
  const Created c = ParseCreated(body, error);
  if (c.id.empty()) {
    const bool tls = IsTls(error);  // a certificate refused: a person must fix it
    std::string what = tls ? "conversation/create failed: " + error
                           : "conversation/create failed (HTTP " + std::to_string(status) + ", code " +
                                 std::to_string(c.code) + (c.msg.empty() ? "" : ": " + Utf8Prefix(c.msg, 200)) + ")";
    VB_LOG(kWarn) << what;
    port_->CountError();
    port_->Degraded(what);
    const bool auth = status == 401 || status == 403 || c.code == 4100 || c.code == 4101;
    if (!tls || SayTls(what))
      port_->PublishError(tls ? kTlsErrorCode : int(c.code > 0 ? c.code : status), what, auth || tls);
    return ScheduleRetry(&ConnectionManager::CreateConversation);
  }
  VB_LOG(kInfo) << "new conversation " << c.id;
  port_->Healthy();
  core_->SetConversation(c.id);
  if (core_->connected()) core_->Reconfigure();  // the old conversation was gone
  else Connect();
}

void ConnectionManager::Connect() {
  if (stopping_) return;
  std::string q = "/v1/chat?bot_id=" + UrlEncode(bot_id_);
  if (!options_.device_id.empty()) q += "&device_id=" + UrlEncode(options_.device_id);
  VB_LOG(kInfo) << "connecting to " << options_.ws_service << "/v1/chat (bot " << bot_id_ << ")";
  gen_ = port_->OpenSocket(q);
}

void ConnectionManager::ScheduleRetry(void (ConnectionManager::*step)()) {
  if (stopping_) return;
  if (retry_timer_) port_->CancelTimer(retry_timer_);
  auto delay = backoff_.Next();
  port_->Count("retries");
  retry_timer_ = port_->After(delay, [this, step] {
    retry_timer_ = 0;
    (this->*step)();
  });
}

void ConnectionManager::OnOpened(uint64_t gen) {
  if (gen != gen_ || stopping_) return;
  VB_LOG(kInfo) << "connected to " << options_.ws_service;
  last_tls_error_.clear();
  backoff_.Reset();
  port_->Healthy();
  core_->OnConnected();
}

void ConnectionManager::OnText(uint64_t gen, std::string_view text, int64_t recv_ns) {
  if (gen == gen_) core_->OnServerText(text, recv_ns);
}

void ConnectionManager::OnClosed(uint64_t gen, const std::string& reason, int http_status) {
  if (gen != gen_ || stopping_) return;
  uint64_t suppressed = 0;
  if (close_log_.Allow(port_->Now(), &suppressed))
    VB_LOG(kWarn) << "connection to " << options_.ws_service << " lost: " << reason
                  << (http_status ? " (HTTP " + std::to_string(http_status) + ")" : "")
                  << (suppressed ? " (+" + std::to_string(suppressed) + " more)" : "");
  port_->Count("disconnects");
  port_->Degraded("disconnected: " + reason);
  core_->OnDisconnected(reason);
  // A refused certificate needs a person (session.ca_file, the host name):
  // said once, not at every retry, and again every 10 s while it lasts (the
  // first failure comes milliseconds after start, before this process's
  // publisher has reached the broker, and late joiners — the dashboard —
  // need it too).
  if (IsTls(reason) && SayTls(reason)) port_->PublishError(kTlsErrorCode, reason, true);
  if (http_status == 401 || http_status == 403)
    port_->PublishError(http_status, "the Coze server refused the token (HTTP " + std::to_string(http_status) + ")",
                        true);
  ScheduleRetry(&ConnectionManager::Connect);
}

bool ConnectionManager::SayTls(const std::string& what) {
  const int64_t now = port_->Now();
  if (what == last_tls_error_ && now - last_tls_error_ns_ < kTlsRepeatNs) return false;
  last_tls_error_ = what;
  last_tls_error_ns_ = now;
  return true;
}

void ConnectionManager::CheckStall() {
  stall_timer_ = 0;
  if (stopping_) return;
  stall_timer_ = port_->After(options_.stall_check, [this] { CheckStall(); });
  if (!core_->Stalled(port_->Now(), options_.stall_timeout.count())) return;
  VB_LOG(kWarn) << "no reply from " << options_.ws_service << " for "
                << std::chrono::duration_cast<std::chrono::seconds>(options_.stall_timeout).count()
                << " s; reconnecting";
  port_->Count("stalls");
  ++gen_;  // the stuck connection's late reports are stale
  port_->CloseSocket();
  core_->OnDisconnected("stalled");
  ScheduleRetry(&ConnectionManager::Connect);
}

void ConnectionManager::ChangeBot(const std::string& bot_id) {
  if (bot_id == bot_id_ || stopping_) return;
  VB_LOG(kInfo) << "switching to bot " << bot_id;
  bot_id_ = bot_id;
  port_->BotChanged(bot_id);
  ++gen_;
  port_->CloseSocket();
  core_->OnDisconnected("bot change");
  core_->SetConversation("");
  // The new bot's connection starts now: a retry for the old one is void,
  // and so is a conversation being created for it.
  if (retry_timer_) port_->CancelTimer(retry_timer_);
  retry_timer_ = 0;
  creating_ = false;
  ++create_attempt_;
  FindConversation();
}

void ConnectionManager::OnPublished(const v1::SessionEvent& event) {
  // 4002: the conversation no longer exists (expired, or another server):
  // start a new one rather than failing every turn. At most one such
  // restart per 10 s, so a server that rejects every new conversation does
  // not turn this into a loop.
  if (!event.has_error() || event.error().code() != 4002 || !options_.conversation_id.empty() || creating_ || stopping_)
    return;
  const int64_t now = port_->Now();
  if (now - last_recreate_ns_ <= kRecreateMinNs) return;
  last_recreate_ns_ = now;
  VB_LOG(kWarn) << "conversation " << core_->conversation_id() << " is unknown to the server; creating a new one";
  CreateConversation();
}

}  // namespace vb::session
