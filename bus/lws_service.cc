// LwsService (see lws_service.h).
#include "bus/lws_service.h"

#include <string>

#include "bus/log.h"

namespace vb {

namespace {

void LwsLog(int level, const char* line) {
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (level & LLL_ERR) VB_LOG(kError) << "lws: " << s;
  else if (level & LLL_WARN) VB_LOG(kWarn) << "lws: " << s;
  else VB_LOG(kInfo) << "lws: " << s;
}

}  // namespace

void LwsService::RouteLogs(bool verbose) {
  lws_set_log_level(verbose ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : (LLL_ERR | LLL_WARN), LwsLog);
}

int LwsService::Callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  lws_context* ctx = lws_get_context(wsi);
  auto* self = ctx ? static_cast<LwsService*>(lws_context_user(ctx)) : nullptr;
  if (!self || !self->handler_) return lws_callback_http_dummy(wsi, reason, user, in, len);
  return self->handler_(wsi, int(reason), user, in, len);
}

bool LwsService::Create(lws_context_creation_info& info) {
  info.user = this;
  stop_ = false;
  if (info.port == CONTEXT_PORT_NO_LISTEN) {
    context_ = lws_create_context(&info);
    return context_ != nullptr;
  }
  // A server: the context first, then its listening vhost. Debian's lws
  // 4.1 leaks the context's message-distribution peer (72 bytes, LSan)
  // when lws_create_context itself fails to bind; a context that was made
  // is destroyed whole.
  info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  lws_context* c = lws_create_context(&info);
  if (!c) return false;
  if (!lws_create_vhost(c, &info)) {
    lws_context_destroy(c);
    return false;
  }
  context_ = c;
  return true;
}

void LwsService::StartThread() {
  if (!context_ || thread_.joinable()) return;
  thread_ = std::thread([this] { Serve(); });
}

void LwsService::Serve(const std::function<void()>& after_each) {
  while (!stop_) {
    if (lws_service(context_, 0) < 0) break;
    if (after_each) after_each();
  }
}

void LwsService::Wake() {
  if (lws_context* c = context_.load()) lws_cancel_service(c);
}

void LwsService::RequestStop() {
  stop_ = true;
  Wake();
}

void LwsService::Stop() {
  lws_context* c = context_.load();
  if (!c) return;
  RequestStop();
  if (thread_.joinable()) thread_.join();
  context_ = nullptr;      // a Wake from now on is a no-op
  lws_context_destroy(c);  // closes what is open (CLOSED callbacks, here)
}

}  // namespace vb
