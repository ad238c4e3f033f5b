// WsServer: libwebsockets on a service thread, bridged by bounded queues
// (see ws_server.h).
#include "actors/gateway/ws_server.h"

#include <libwebsockets.h>

#include <cstring>

#include "bus/log.h"

namespace vb::gateway {

struct WsServer::Session {
  ConnId id = 0;
  lws* wsi = nullptr;
  std::deque<Frame> out;
  size_t out_bytes = 0;
  bool closing = false;
  std::string close_reason;
  std::string rx;
  bool rx_discard = false, rx_binary = false;
};

namespace {

// Per-connection user data of the one protocol (HTTP and WebSocket alike).
struct Pss {
  WsServer::Session* session;
  const WebAsset* asset;
  size_t sent;
};

const lws_protocols kProtocols[] = {
    {"vb-gateway", LwsService::Callback, sizeof(Pss), 4096, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

WsServer::WsServer(Options options)
    : options_(std::move(options)), service_([this](lws* wsi, int reason, void* user, void* in, size_t len) {
        return Callback(wsi, reason, user, in, len);
      }) {}

WsServer::~WsServer() { Stop(); }

Status WsServer::Listen() {
  LwsService::RouteLogs();
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = options_.port;
  info.iface = options_.host.c_str();
  info.protocols = kProtocols;
  info.gid = -1;
  info.uid = -1;
  info.vhost_name = "vb-gateway";
  if (options_.host.find(':') == std::string::npos) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  if (!service_.Create(info)) {
    return Status::Unavailable("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                               " (address in use or not local?)");
  }
  return Status::Ok();
}

void WsServer::Start(std::function<void()> notify) {
  notify_ = std::move(notify);
  service_.StartThread();
}

void WsServer::Stop() { service_.Stop(); }  // closes every connection (CLOSED callbacks)

void WsServer::Send(ConnId conn, Frame frame) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outgoing_.size() >= kMaxOutgoing) {
      ++stats_.events_dropped;
      return;
    }
    was_empty = outgoing_.empty();
    outgoing_.push_back({conn, std::move(frame), {}});
  }
  // One wake-up per batch: the service thread takes the whole queue.
  if (was_empty) service_.Wake();
}

void WsServer::Close(ConnId conn, std::string_view reason) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_empty = outgoing_.empty();
    outgoing_.push_back({conn, nullptr, std::string(reason)});
  }
  if (was_empty) service_.Wake();
}

std::vector<WsServer::Event> WsServer::TakeEvents() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Event> out;
  out.swap(events_);
  return out;
}

WsServer::Stats WsServer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void WsServer::Push(Event e) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Opens and closes are never dropped (the core's view of connections
    // must stay right); text beyond the bound is.
    if (events_.size() >= kMaxEvents && e.kind == Event::kText) {
      ++stats_.events_dropped;
      return;
    }
    was_empty = events_.empty();
    events_.push_back(std::move(e));
  }
  if (was_empty && notify_) notify_();
}

void WsServer::DistributeOutgoing() {
  std::vector<Outgoing> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(outgoing_);
  }
  for (auto& o : batch) {
    auto it = sessions_.find(o.conn);
    if (it == sessions_.end()) continue;
    Session& s = *it->second;
    if (s.closing) continue;
    if (!o.frame) {
      s.closing = true;
      s.close_reason = o.reason;
    } else {
      s.out_bytes += o.frame->size();
      s.out.push_back(std::move(o.frame));
      if (s.out_bytes > options_.max_queued_bytes) {
        s.closing = true;
        s.close_reason = "too slow: send queue full";
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.slow_closed;
      }
    }
    lws_callback_on_writable(s.wsi);
  }
}

int WsServer::Writable(Session& s) {
  if (s.closing) {
    s.out.clear();
    std::string reason = s.close_reason.substr(0, 120);
    lws_close_reason(s.wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, reinterpret_cast<unsigned char*>(reason.data()),
                     reason.size());
    return -1;
  }
  for (int n = 0; n < 32 && !s.out.empty(); ++n) {
    const std::string& f = *s.out.front();
    write_buf_.resize(LWS_PRE + f.size());
    std::memcpy(write_buf_.data() + LWS_PRE, f.data(), f.size());
    if (lws_write(s.wsi, write_buf_.data() + LWS_PRE, f.size(), LWS_WRITE_TEXT) < int(f.size())) return -1;
    s.out_bytes -= f.size();
    s.out.pop_front();
    if (lws_send_pipe_choked(s.wsi)) break;
  }
  if (!s.out.empty()) lws_callback_on_writable(s.wsi);
  return 0;
}

int WsServer::Callback(lws* wsi, int reason_int, void* user, void* in, size_t len) {
  auto reason = static_cast<lws_callback_reasons>(reason_int);
  auto* pss = static_cast<Pss*>(user);
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: DistributeOutgoing(); return 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
      char uri[256] = {0};
      if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 || options_.ws_path != uri ||
          int(sessions_.size()) >= options_.max_clients) {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.refused;
        return 1;
      }
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
      auto* s = new Session;
      s->id = next_id_++;
      s->wsi = wsi;
      pss->session = s;
      sessions_[s->id] = s;
      Push({Event::kOpen, s->id, {}});
      return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
      Session* s = pss->session;
      if (!s) return -1;
      if (lws_is_first_fragment(wsi)) {
        s->rx.clear();
        s->rx_discard = false;
        s->rx_binary = lws_frame_is_binary(wsi);
      }
      if (!s->rx_discard && !s->rx_binary) {
        if (s->rx.size() + len > options_.max_frame_bytes) {
          s->rx_discard = true;
          s->rx.clear();
          s->rx.shrink_to_fit();
        } else {
          s->rx.append(static_cast<const char*>(in), len);
        }
      }
      if (lws_is_final_fragment(wsi)) {
        if (s->rx_binary) {
          Push({Event::kBadFrame, s->id, "binary frames are not supported"});
        } else if (s->rx_discard) {
          Push({Event::kBadFrame, s->id,
                "message too large (limit " + std::to_string(options_.max_frame_bytes) + " bytes)"});
        } else {
          Push({Event::kText, s->id, std::move(s->rx)});
        }
        s->rx.clear();
        s->rx_discard = s->rx_binary = false;
      }
      return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: return pss->session ? Writable(*pss->session) : 0;

    case LWS_CALLBACK_CLOSED: {
      Session* s = pss->session;
      if (!s) return 0;
      sessions_.erase(s->id);
      Push({Event::kClose, s->id, {}});
      delete s;
      pss->session = nullptr;
      return 0;
    }

    case LWS_CALLBACK_HTTP: {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.http_requests;
      }
      std::string_view path(static_cast<const char*>(in));
      if (path == "/" || path.empty()) path = "/index.html";
      const WebAsset* asset = nullptr;
      for (const auto& a : options_.assets)
        if (a.path == path) asset = &a;
      if (path == "/health") {
        // Health needs no token: actor names, pids, states and the conversation
        // id, nothing secret (and the port is loopback by default).
        auto d = std::make_unique<DynamicBody>();
        {
          std::lock_guard<std::mutex> lock(mu_);
          d->body = health_;
        }
        d->asset = WebAsset{"/health", "application/json", d->body};
        asset = &d->asset;
        dynamic_[wsi] = std::move(d);
      }
      if (!asset) {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, nullptr);
        return -1;
      }
      unsigned char buf[LWS_PRE + 1024];
      unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
      std::string type(asset->content_type);
      if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, type.c_str(), asset->body.size(), &p, end)) return 1;
      static const char kNoStore[] = "no-store";
      if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>("cache-control:"),
                                      reinterpret_cast<const unsigned char*>(kNoStore), sizeof kNoStore - 1, &p, end))
        return 1;
      if (lws_finalize_write_http_header(wsi, start, &p, end)) return 1;
      pss->asset = asset;
      pss->sent = 0;
      lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
      if (!pss || !pss->asset) return 0;
      constexpr size_t kChunk = 16384;
      size_t left = pss->asset->body.size() - pss->sent;
      size_t n = left < kChunk ? left : kChunk;
      bool last = n == left;
      write_buf_.resize(LWS_PRE + n);
      std::memcpy(write_buf_.data() + LWS_PRE, pss->asset->body.data() + pss->sent, n);
      if (lws_write(wsi, write_buf_.data() + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != int(n))
        return 1;
      pss->sent += n;
      if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
      }
      pss->asset = nullptr;
      dynamic_.erase(wsi);
      return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
      if (pss) pss->asset = nullptr;
      dynamic_.erase(wsi);
      return lws_callback_http_dummy(wsi, reason, user, in, len);
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

void WsServer::SetHealth(std::string json) {
  std::lock_guard<std::mutex> lock(mu_);
  health_ = std::move(json);
}

}  // namespace vb::gateway
