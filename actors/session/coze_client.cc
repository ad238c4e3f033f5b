// CozeClient on libwebsockets (see coze_client.h). All lws calls except
// the bridge's Wake() happen on the lws thread; the loop thread only
// queues work under mu_ and wakes it.
#include "actors/session/coze_client.h"

#include <libwebsockets.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstring>

#include "bus/log.h"
#include "bus/loop.h"

namespace vb::session {
namespace {

constexpr char kProtocol[] = "vb-coze";

int AddHeader(lws* wsi, const char* name, const std::string& value, void* in, size_t len) {
  auto** p = static_cast<unsigned char**>(in);
  unsigned char* end = *p + len;
  return lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name),
                                     reinterpret_cast<const unsigned char*>(value.data()), int(value.size()), p, end);
}

}  // namespace

bool Url::Parse(const std::string& text, Url* out) {
  Url u;
  size_t sep = text.find("://");
  if (sep == std::string::npos) return false;
  std::string scheme = text.substr(0, sep);
  if (scheme == "wss" || scheme == "https") u.tls = true;
  else if (scheme != "ws" && scheme != "http") return false;
  std::string rest = text.substr(sep + 3);
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  if (hostport.empty() || hostport.find('@') != std::string::npos || u.path.find('?') != std::string::npos)
    return false;
  size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    std::string port = hostport.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
    u.port = std::stoi(port);
    if (u.port <= 0 || u.port > 65535) return false;
    u.host = hostport.substr(0, colon);
  } else {
    u.host = hostport;
    u.port = u.tls ? 443 : 80;
  }
  if (u.host.empty()) return false;
  *out = u;
  return true;
}

std::string Url::Display() const {
  bool default_port = (tls && port == 443) || (!tls && port == 80);
  return host + (default_port ? "" : ":" + std::to_string(port)) + path;
}

CozeClient::CozeClient(ClientOptions options, Post post, Callbacks callbacks)
    : options_(std::move(options)),
      post_(std::move(post)),
      cb_(std::move(callbacks)),
      auth_("Bearer " + options_.token),
      service_([this](lws* wsi, int reason, void* user, void* in, size_t len) {
        return Callback(this, wsi, reason, user, in, len);
      }) {}

CozeClient::~CozeClient() { Stop(); }

bool CozeClient::Start(std::string* error) {
  static const lws_protocols kProtocols[] = {{kProtocol, &LwsService::Callback, 0, 0, 0, nullptr, 0},
                                             {nullptr, nullptr, 0, 0, 0, nullptr, 0}};
  LwsService::RouteLogs();
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.gid = -1;
  info.uid = -1;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  if (!options_.ca_file.empty()) info.client_ssl_ca_filepath = options_.ca_file.c_str();
  if (!service_.Create(info)) {
    *error = "libwebsockets: cannot create a context";
    return false;
  }
  service_.StartThread();
  return true;
}

void CozeClient::Stop() {
  if (!service_.context()) return;
  service_.Stop();  // closes what is open; reports are suppressed (stopping)
  conns_.clear();
  {
    std::lock_guard lk(mu_);
    pending_.clear();  // asked for, never opened
  }
  wsi_ = nullptr;
  ws_ = nullptr;
}

void CozeClient::Report(std::function<void()> fn) {
  if (service_.stopping()) return;
  if (!post_(std::move(fn))) ++dropped_posts_;
}

uint64_t CozeClient::Connect(const std::string& path_and_query) {
  auto c = std::make_unique<Conn>();
  c->path = options_.ws.path + path_and_query;
  uint64_t gen;
  {
    std::lock_guard lk(mu_);
    gen = ++gen_;
    c->gen = gen;
    open_ = false;
    outgoing_.clear();
    pending_.push_back({Action::kConnect, std::move(c)});
  }
  service_.Wake();
  return gen;
}

void CozeClient::Close() {
  {
    std::lock_guard lk(mu_);
    ++gen_;
    open_ = false;
    outgoing_.clear();
    pending_.push_back({Action::kClose, nullptr});
  }
  service_.Wake();
}

bool CozeClient::Send(std::string text, int64_t origin_ns) {
  {
    std::lock_guard lk(mu_);
    if (!open_ || outgoing_.size() >= options_.max_queued) return false;
    outgoing_.push_back({std::move(text), origin_ns});
  }
  service_.Wake();
  return true;
}

void CozeClient::HttpPost(const std::string& path_and_query, std::string body, HttpDone done) {
  auto c = std::make_unique<Conn>();
  c->http = true;
  c->path = options_.api.path + path_and_query;
  c->body = std::move(body);
  c->done = std::move(done);
  {
    std::lock_guard lk(mu_);
    pending_.push_back({Action::kHttp, std::move(c)});
  }
  service_.Wake();
}

uint64_t CozeClient::HttpPostStream(const std::string& path_and_query, std::string body, HttpChunk chunk,
                                    HttpDone done) {
  auto c = std::make_unique<Conn>();
  c->http = true;
  c->path = options_.api.path + path_and_query;
  c->body = std::move(body);
  c->done = std::move(done);
  c->chunk = std::move(chunk);
  uint64_t id;
  {
    std::lock_guard lk(mu_);
    id = c->http_id = ++next_http_id_;
    pending_.push_back({Action::kHttp, std::move(c)});
  }
  service_.Wake();
  return id;
}

void CozeClient::AbortHttp(uint64_t id) {
  {
    std::lock_guard lk(mu_);
    pending_.push_back({Action::kAbortHttp, nullptr, id});
  }
  service_.Wake();
}

bus::Histogram CozeClient::TakeSendLatency() {
  std::lock_guard lk(mu_);
  bus::Histogram h = send_us_;
  send_us_.Reset();
  return h;
}

void CozeClient::Forget(Conn* c) { conns_.erase(c); }

void CozeClient::ServicePending() {
  std::deque<Pending> work;
  bool want_write;
  {
    std::lock_guard lk(mu_);
    work.swap(pending_);
    want_write = !outgoing_.empty() && open_;
  }
  for (auto& p : work) {
    switch (p.action) {
      case Action::kClose:
      case Action::kConnect:
        if (wsi_) {
          // The old connection goes; its reports carry its old generation.
          lws_set_opaque_user_data(wsi_, nullptr);
          if (ws_) {
            ws_->finished = true;
            Forget(ws_);
          }
          lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
          wsi_ = nullptr;
          ws_ = nullptr;
        }
        if (p.action == Action::kConnect) Open(p.conn.release());
        break;
      case Action::kHttp: Open(p.conn.release()); break;
      case Action::kAbortHttp:
        for (auto& [raw, conn] : conns_) {
          if (!conn->http || conn->http_id != p.http_id) continue;
          conn->finished = true;  // no report
          if (conn->wsi) {
            lws_set_opaque_user_data(conn->wsi, nullptr);
            lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
          }
          Forget(raw);
          break;
        }
        break;
    }
  }
  if (want_write && wsi_) lws_callback_on_writable(wsi_);
}

void CozeClient::Open(Conn* raw) {
  conns_[raw] = std::unique_ptr<Conn>(raw);
  raw->opened_ns = bus::MonoNs();
  const Url& url = raw->http ? options_.api : options_.ws;
  lws_client_connect_info ci;
  std::memset(&ci, 0, sizeof ci);
  ci.context = service_.context();
  ci.address = url.host.c_str();
  ci.port = url.port;
  ci.path = raw->path.c_str();
  ci.host = url.host.c_str();
  ci.origin = url.host.c_str();
  ci.ssl_connection = url.tls ? LCCSCF_USE_SSL : 0;
  ci.local_protocol_name = kProtocol;
  ci.opaque_user_data = raw;
  static lws_retry_bo_t retry;  // lws keeps the pointer; values fixed at first use
  retry.secs_since_valid_ping = uint16_t(options_.ping_s);
  retry.secs_since_valid_hangup = uint16_t(options_.hangup_s);
  ci.retry_and_idle_policy = &retry;
  lws* wsi = nullptr;
  ci.pwsi = &wsi;
  if (raw->http) {
    ci.method = "POST";
    ci.alpn = "http/1.1";
  } else {
    ws_ = raw;
  }
  bool http = raw->http;
  lws* made = lws_client_connect_via_info(&ci);
  // A synchronous failure may already have destroyed raw (WSI_DESTROY).
  if (!http && made && ws_ == raw) wsi_ = made;
  if (http && made && conns_.count(raw)) raw->wsi = made;
  if (!made && conns_.count(raw)) {
    // Failed before any callback could report it.
    if (http) FinishHttp(raw, "cannot connect to " + url.Display());
    else ReportClosed(raw, "cannot connect to " + url.Display(), 0);
    if (ws_ == raw) ws_ = nullptr;
    Forget(raw);
  }
}

void CozeClient::ReportClosed(Conn* c, const std::string& reason, int status) {
  if (c->finished) return;
  c->finished = true;
  uint64_t gen = c->gen;
  {
    std::lock_guard lk(mu_);
    if (gen == gen_) {
      open_ = false;
      outgoing_.clear();
    }
  }
  Report([this, gen, reason, status] {
    if (cb_.closed) cb_.closed(gen, reason, status);
  });
}

std::string CozeClient::NoReply(const Conn& c) {
  char buf[128];
  double s = double(bus::MonoNs() - c.opened_ns) / 1e9;
  if (c.sent) snprintf(buf, sizeof buf, "connection closed with no reply %.1f s after the request was sent", s);
  else snprintf(buf, sizeof buf, "connection closed after %.1f s before the request could be sent", s);
  return buf;
}

void CozeClient::FinishHttp(Conn* c, const std::string& error) {
  if (c->finished) return;
  c->finished = true;
  Report([done = std::move(c->done), status = c->status, body = std::move(c->response), error]() mutable {
    if (done) done(status, std::move(body), error);
  });
}

int CozeClient::Callback(CozeClient* self, lws* wsi, int reason, void* user, void* in, size_t len) {
  if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
    self->ServicePending();
    return 0;
  }
  auto* c = static_cast<Conn*>(lws_get_opaque_user_data(wsi));
  if (!c || !self->conns_.count(c)) {
    // An abandoned connection: let lws finish closing it quietly.
    return reason == LWS_CALLBACK_CLIENT_WRITEABLE || reason == LWS_CALLBACK_CLIENT_RECEIVE ||
                   reason == LWS_CALLBACK_RECEIVE_CLIENT_HTTP || reason == LWS_CALLBACK_CLIENT_HTTP_WRITEABLE
               ? -1
               : 0;
  }
  if (reason == LWS_CALLBACK_WSI_DESTROY) {
    if (c->http) self->FinishHttp(c, NoReply(*c));
    else self->ReportClosed(c, "connection closed", 0);
    if (self->ws_ == c) {
      self->ws_ = nullptr;
      self->wsi_ = nullptr;
    }
    lws_set_opaque_user_data(wsi, nullptr);
    self->Forget(c);
    return 0;
  }
  if (reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION) {
    // user = the X509_STORE_CTX, len = OpenSSL's preverify_ok. Only noted:
    // the verdict stays OpenSSL's (0 = keep it).
    if (!len && user) {
      int err = X509_STORE_CTX_get_error(static_cast<X509_STORE_CTX*>(user));
      if (err != X509_V_OK && !c->tls_error) c->tls_error = err;
    }
    return 0;
  }
  if (reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR && c->tls_error) {
    // "connect SSL err 1: error:00000001:lib(0)::reason(1)" says nothing to
    // a person: say which check failed.
    std::string why = self->TlsFailure(*c, c->http ? self->options_.api : self->options_.ws);
    if (c->http) self->FinishHttp(c, why);
    else self->ReportClosed(c, why, 0);
    return 0;
  }
  return c->http ? self->OnHttp(wsi, c, reason, in, len) : self->OnWs(wsi, c, reason, in, len);
}

std::string CozeClient::TlsFailure(const Conn& c, const Url& url) const {
  const std::string where = "TLS to " + url.Display() + ": ";
  const std::string ca = options_.ca_file.empty() ? "session.ca_file is not set, so only the system CAs are trusted"
                                                  : "session.ca_file is " + options_.ca_file;
  switch (c.tls_error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return where + "the server's certificate is signed by an unknown CA (" +
             X509_verify_cert_error_string(c.tls_error) + "); " + ca +
             ". To trust a private CA, set session.ca_file to its PEM file.";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return where + "the server's certificate is not valid for the host name '" + url.host +
             "' (wrong host in session.api_base/ws_base, or the server presents another name's certificate); " +
             "the CA itself was trusted (" + ca + ")";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return where + "the server's certificate " +
             (c.tls_error == X509_V_ERR_CERT_HAS_EXPIRED ? "has expired" : "is not valid yet") +
             " (check the clock of this device)";
    default:
      return where + "the server's certificate was refused: " + X509_verify_cert_error_string(c.tls_error) + " (" + ca +
             ")";
  }
}

int CozeClient::OnWs(lws* wsi, Conn* c, int reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: return AddHeader(wsi, "authorization:", auth_, in, len) ? -1 : 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
      uint64_t gen = c->gen;
      bool current;
      {
        std::lock_guard lk(mu_);
        current = gen == gen_;
        if (current) open_ = true;
      }
      if (!current) return -1;
      Report([this, gen] {
        if (cb_.opened) cb_.opened(gen);
      });
      return 0;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (lws_is_first_fragment(wsi)) {
        c->rx.clear();
        c->rx_overflow = false;
        c->rx_start_ns = bus::MonoNs();
      }
      if (c->rx.size() + len > options_.max_message_bytes) c->rx_overflow = true;
      else c->rx.append(static_cast<const char*>(in), len);
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        if (c->rx_overflow) {
          ++oversized_;
        } else {
          uint64_t gen = c->gen;
          int64_t t = c->rx_start_ns;
          Report([this, gen, text = std::move(c->rx), t]() mutable {
            if (cb_.text) cb_.text(gen, std::move(text), t);
          });
        }
        c->rx.clear();
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      Outgoing out;
      bool more;
      {
        std::lock_guard lk(mu_);
        if (c->gen != gen_ || outgoing_.empty()) return 0;
        out = std::move(outgoing_.front());
        outgoing_.pop_front();
        more = !outgoing_.empty();
      }
      std::vector<unsigned char> buf(LWS_PRE + out.text.size());
      std::memcpy(buf.data() + LWS_PRE, out.text.data(), out.text.size());
      int n = lws_write(wsi, buf.data() + LWS_PRE, out.text.size(), LWS_WRITE_TEXT);
      if (n < int(out.text.size())) return -1;
      if (out.origin_ns) {
        double us = double(bus::MonoNs() - out.origin_ns) / 1000.0;
        std::lock_guard lk(mu_);
        send_us_.Add(us);
      }
      if (more) lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      int status = wsi ? int(lws_http_client_http_response(wsi)) : 0;
      std::string why = in && len == 0 ? std::string(static_cast<const char*>(in))
                        : in ? std::string(static_cast<const char*>(in), strnlen(static_cast<const char*>(in), len))
                             : "connection error";
      ReportClosed(c, why, status);
      return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED: ReportClosed(c, "closed by peer", 0); return 0;
    default: return 0;
  }
}

int CozeClient::OnHttp(lws* wsi, Conn* c, int reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
      if (AddHeader(wsi, "authorization:", auth_, in, len) ||
          AddHeader(wsi, "content-type:", "application/json", in, len) ||
          AddHeader(wsi, "content-length:", std::to_string(c->body.size()), in, len))
        return -1;
      lws_client_http_body_pending(wsi, 1);
      lws_callback_on_writable(wsi);
      return 0;
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
      std::vector<unsigned char> buf(LWS_PRE + c->body.size());
      std::memcpy(buf.data() + LWS_PRE, c->body.data(), c->body.size());
      lws_client_http_body_pending(wsi, 0);
      if (lws_write(wsi, buf.data() + LWS_PRE, c->body.size(), LWS_WRITE_HTTP_FINAL) < int(c->body.size())) return -1;
      c->sent = true;
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP: c->status = int(lws_http_client_http_response(wsi)); return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
      char buffer[4096 + LWS_PRE];
      char* p = buffer + LWS_PRE;
      int n = int(sizeof buffer - LWS_PRE);
      return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
      if (c->received + len > options_.max_message_bytes) return -1;
      c->received += len;
      if (c->chunk) {
        Report([fn = c->chunk, piece = std::string(static_cast<const char*>(in), len)]() mutable {
          fn(std::move(piece));
        });
        return 0;
      }
      c->response.append(static_cast<const char*>(in), len);
      return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP: FinishHttp(c, ""); return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      FinishHttp(c,
                 in ? std::string(static_cast<const char*>(in), strnlen(static_cast<const char*>(in), len ? len : 256))
                    : "connection error");
      return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP: FinishHttp(c, c->status ? "" : NoReply(*c)); return 0;
    default: return 0;
  }
}

}  // namespace vb::session
