// Implementation of server.h.
#include "tools/coze-sim/server.h"

#include <libwebsockets.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>

#include "tools/coze-sim/ids.h"
#include "tools/coze-sim/session.h"

namespace vb::cozesim {

// Both connection kinds sit behind the same per-session pointer; `kind`
// tells them apart when lws reports a close.
struct ConnBase {
  enum Kind { kHttp, kWs } kind;
  explicit ConnBase(Kind k) : kind(k) {}
  virtual ~ConnBase() = default;
};

struct Server::HttpConn : ConnBase {
  HttpConn() : ConnBase(kHttp) {}
  HttpRequest req;
  HttpResponse resp;
  bool headers_sent = false;
  size_t body_pos = 0;
  bool body_too_big = false;
  int64_t answered_ms = 0;  // monotonic: when the response was ready (SSE pacing)
};

struct Server::WsConn : ConnBase {
  WsConn() : ConnBase(kWs) {}
  lws* wsi = nullptr;
  uint64_t id = 0;
  std::unique_ptr<Session> session;
  Faults faults;  // snapshot taken at the handshake
  std::deque<std::string> outq;
  std::string rx;
  bool rx_binary = false;
  bool close_after_flush = false;
  bool stalled = false;
  uint64_t sent = 0;
  FILE* log = nullptr;
};

namespace {

struct Pss {
  ConnBase* conn;
};

const lws_protocols kProtocols[] = {
    {"coze", LwsService::Callback, sizeof(Pss), 65536, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

std::string Header(lws* wsi, lws_token_indexes h) {
  int n = lws_hdr_total_length(wsi, h);
  if (n <= 0) return {};
  std::string s(size_t(n) + 1, '\0');
  int got = lws_hdr_copy(wsi, s.data(), n + 1, h);
  if (got < 0) return {};
  s.resize(size_t(got));
  return s;
}

// lws splits the query into decoded fragments (and joins them with ',' in
// lws_hdr_copy); rebuild a standard query string, re-encoding the characters
// that QueryValue would otherwise misread.
std::string QueryString(lws* wsi) {
  std::string out;
  for (int i = 0; i < 64; ++i) {
    int n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n <= 0) break;
    std::string frag(size_t(n) + 1, '\0');
    int got = lws_hdr_copy_fragment(wsi, frag.data(), n + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (got < 0) break;
    frag.resize(size_t(got));
    if (!out.empty()) out += '&';
    size_t eq = frag.find('=');
    out += frag.substr(0, eq == std::string::npos ? frag.size() : eq + 1);
    if (eq == std::string::npos) continue;
    for (char c : frag.substr(eq + 1)) {
      if (c == '%' || c == '&' || c == '+' || c == ' ' || c == '=') {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", unsigned(uint8_t(c)));
        out += hex;
      } else {
        out += c;
      }
    }
  }
  return out;
}

// One JSON value per line, flushed: a log read while the simulator runs.
void WriteJsonLine(std::FILE* f, const Json& line) {
  std::string s = line.dump(-1, ' ', false, Json::error_handler_t::replace);
  s += '\n';
  std::fwrite(s.data(), 1, s.size(), f);
  std::fflush(f);
}

std::mt19937& Rng() {
  static std::mt19937 rng{std::random_device{}()};
  return rng;
}

}  // namespace

Server::Server(ServerOptions opts, std::unique_ptr<Agent> agent)
    : opts_(std::move(opts)),
      agent_(std::move(agent)),
      service_([this](lws* wsi, int reason, void* user, void* in, size_t len) {
        return Callback(wsi, reason, user, in, len);
      }) {
  rest_ = std::make_unique<RestApi>(&store_, agent_.get(), &opts_.faults, &opts_.access);
  rest_->stats = [this] { return Stats(); };
  if (opts_.use_grammar && opts_.recognizer.jsgf.empty()) opts_.recognizer.jsgf = agent_->Grammar();
  worker_ = std::make_unique<Worker>(opts_.recognizer, opts_.recognizer_threads, [this] { service_.Wake(); });
}

Server::~Server() {
  stop_ = true;
  if (flush_ticker_.joinable()) flush_ticker_.join();
  worker_.reset();  // threads first: they may wake the context
  service_.Stop();
  if (rest_log_) std::fclose(rest_log_);
}

bool Server::Start(std::string* error) {
  lws_set_log_level(opts_.verbose ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : LLL_ERR, nullptr);
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = opts_.port;
  info.iface = opts_.host.c_str();
  info.protocols = kProtocols;
  info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
  info.pt_serv_buf_size = 64 * 1024;
  info.max_http_header_data = 8192;
  info.timeout_secs = 30;
  info.ka_time = 0;
  // An idle keep-alive connection is closed by the server after this long.
  // lws's default, 5 s, is also Node's agent's: the server sometimes closed
  // a connection just as the client reused it ("socket hang up" seen under
  // load), so the server waits well past any client's own idle timeout.
  info.keepalive_timeout = 65;
  if (!opts_.tls_cert.empty() || !opts_.tls_key.empty()) {
    if (opts_.tls_cert.empty() || opts_.tls_key.empty()) {
      *error = "TLS needs both a certificate and a key";
      return false;
    }
    for (const std::string* f : {&opts_.tls_cert, &opts_.tls_key}) {
      if (std::FILE* fp = std::fopen(f->c_str(), "r")) {
        std::fclose(fp);
      } else {
        *error = "cannot read " + *f + ": " + std::strerror(errno);
        return false;
      }
    }
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = opts_.tls_cert.c_str();
    info.ssl_private_key_filepath = opts_.tls_key.c_str();
  }
  if (!service_.Create(info)) {
    *error = opts_.tls_cert.empty()
                 ? "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port)
                 : "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + " with TLS (is " +
                       opts_.tls_cert + " a PEM certificate and " + opts_.tls_key + " its key?)";
    return false;
  }
  lws_vhost* vh = lws_get_vhost_by_name(service_.context(), "default");
  port_ = vh ? lws_get_vhost_listen_port(vh) : opts_.port;
  if (port_ <= 0) {
    *error = "cannot determine the listening port";
    return false;
  }
  if (!opts_.state_file.empty()) {
    if (!store_.Open(opts_.state_file, error)) return false;
    flush_ticker_ = std::thread([this] {
      while (!stop_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(Store::kSaveIntervalMs));
        if (flush_wanted_.load()) service_.Wake();
      }
    });
  }
  if (!opts_.log_dir.empty()) {
    const std::string path = opts_.log_dir + "/rest.jsonl";
    rest_log_ = std::fopen(path.c_str(), "a");
    if (!rest_log_) {
      *error = "cannot write " + path + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

void Server::Run() {
  service_.Serve([this] {
    store_.Flush();
    flush_wanted_ = store_.dirty();
  });
  store_.Flush(true);
}

void Server::Stop() {
  stop_ = true;
  service_.RequestStop();
}

Json Server::Stats() const {
  return {{"sessions", conns_.size()},   {"connections_total", total_connections_}, {"refused", refused_},
          {"events_sent", events_sent_}, {"events_received", events_received_},     {"conversations", store_.size()}};
}

int Server::Callback(lws* wsi, int reason_int, void* user, void* in, size_t len) {
  auto reason = static_cast<lws_callback_reasons>(reason_int);
  auto* pss = static_cast<Pss*>(user);
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
      DrainWorker();
      if (stop_) return 0;
      return 0;

    // ------------------------------------------------------------ HTTP (REST)
    case LWS_CALLBACK_HTTP: {
      if (!pss) return -1;
      delete pss->conn;  // keep-alive: a new request on the same connection
      pss->conn = nullptr;
      HttpConn* hc = nullptr;
      int rc = OnHttp(wsi, hc, static_cast<const char*>(in));
      pss->conn = hc;
      return rc;
    }
    case LWS_CALLBACK_HTTP_BODY: {
      auto* hc = pss && pss->conn && pss->conn->kind == ConnBase::kHttp ? static_cast<HttpConn*>(pss->conn) : nullptr;
      if (!hc) return -1;
      if (hc->req.body.size() + len > kMaxMessageBytes) {
        hc->body_too_big = true;
        return 0;
      }
      hc->req.body.append(static_cast<const char*>(in), len);
      return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
      auto* hc = pss && pss->conn && pss->conn->kind == ConnBase::kHttp ? static_cast<HttpConn*>(pss->conn) : nullptr;
      if (!hc) return -1;
      return FinishHttp(wsi, hc);
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
      auto* hc = pss && pss->conn && pss->conn->kind == ConnBase::kHttp ? static_cast<HttpConn*>(pss->conn) : nullptr;
      if (!hc) return 0;
      return WriteHttp(wsi, hc);
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      if (pss && pss->conn && pss->conn->kind == ConnBase::kHttp) {
        delete pss->conn;
        pss->conn = nullptr;
      }
      return 0;

    // -------------------------------------------------------- WebSocket /v1/chat
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return ConfirmUpgrade(wsi);
    case LWS_CALLBACK_ESTABLISHED: {
      if (!pss) return -1;
      WsConn* wc = nullptr;
      int rc = OnEstablished(wsi, wc);
      pss->conn = wc;
      return rc;
    }
    case LWS_CALLBACK_RECEIVE: {
      auto* wc = pss && pss->conn && pss->conn->kind == ConnBase::kWs ? static_cast<WsConn*>(pss->conn) : nullptr;
      if (!wc) return -1;
      return OnReceive(wsi, wc, static_cast<const char*>(in), len);
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      auto* wc = pss && pss->conn && pss->conn->kind == ConnBase::kWs ? static_cast<WsConn*>(pss->conn) : nullptr;
      if (!wc) return 0;
      return OnWritable(wsi, wc);
    }
    case LWS_CALLBACK_TIMER: {
      lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_CLOSED: {
      auto* wc = pss && pss->conn && pss->conn->kind == ConnBase::kWs ? static_cast<WsConn*>(pss->conn) : nullptr;
      if (wc) {
        conns_.erase(wc->id);
        if (wc->log) std::fclose(wc->log);
        delete wc;
        pss->conn = nullptr;
      }
      return 0;
    }
    default: break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int Server::OnHttp(lws* wsi, HttpConn*& hc, const char* uri) {
  hc = new HttpConn();
  HttpRequest& r = hc->req;
  std::string get = Header(wsi, WSI_TOKEN_GET_URI);
  std::string post = Header(wsi, WSI_TOKEN_POST_URI);
  if (!get.empty()) {
    r.method = "GET";
    r.path = get;
  } else if (!post.empty()) {
    r.method = "POST";
    r.path = post;
  } else {
    r.method = "OTHER";
    r.path = uri ? uri : "/";
  }
  r.query = QueryString(wsi);
  r.authorization = Header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  std::string cl = Header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
  bool chunked = !Header(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING).empty();
  if (r.method == "POST" && ((!cl.empty() && std::atol(cl.c_str()) > 0) || chunked)) return 0;  // wait for the body
  return FinishHttp(wsi, hc);
}

int Server::FinishHttp(lws* wsi, HttpConn* hc) {
  if (hc->body_too_big) {
    hc->resp = {413, "application/json", Json{{"code", 4000}, {"msg", "body too large"}}.dump()};
  } else {
    hc->resp = rest_->Handle(hc->req);
  }
  hc->answered_ms = NowMonoMs();
  LogRest(hc->req, hc->resp.status);
  lws_callback_on_writable(wsi);
  return 0;
}

int Server::WriteHttp(lws* wsi, HttpConn* hc) {
  if (!hc->headers_sent) {
    std::vector<unsigned char> buf(LWS_PRE + 2048);
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size() - 1;
    if (lws_add_http_common_headers(wsi, unsigned(hc->resp.status), hc->resp.content_type.c_str(),
                                    lws_filepos_t(hc->resp.body.size()), &p, end))
      return 1;
    // The REST envelope's logid also travels as a header, as Coze does.
    Json j = Json::parse(hc->resp.body, nullptr, false);
    std::string logid = j.is_object() && j.contains("detail") ? j["detail"].value("logid", "") : NewLogId();
    if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>("X-Tt-Logid:"),
                                    reinterpret_cast<const unsigned char*>(logid.c_str()), int(logid.size()), &p, end))
      return 1;
    if (hc->resp.content_type == "text/event-stream") {
      const char* cc = "no-cache";
      if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>("cache-control:"),
                                      reinterpret_cast<const unsigned char*>(cc), int(std::strlen(cc)), &p, end))
        return 1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return 1;
    hc->headers_sent = true;
    if (!hc->resp.body.empty()) {
      lws_callback_on_writable(wsi);
      return 0;
    }
    if (lws_http_transaction_completed(wsi)) return -1;
    return 0;
  }
  constexpr size_t kChunk = 16 * 1024;
  // A paced body (SSE): only what is "produced" by now; wake up for the rest.
  size_t allowed = hc->resp.body.size();
  if (!hc->resp.pieces.empty()) {
    const int64_t elapsed = NowMonoMs() - hc->answered_ms;
    allowed = 0;
    for (const auto& piece : hc->resp.pieces) {
      if (piece.at_ms > elapsed) {
        if (hc->body_pos >= allowed) {
          lws_set_timer_usecs(wsi, (piece.at_ms - elapsed) * 1000);
          return 0;
        }
        break;
      }
      allowed = piece.end;
    }
  }
  size_t n = std::min(kChunk, allowed - hc->body_pos);
  std::vector<unsigned char> buf(LWS_PRE + n);
  std::memcpy(buf.data() + LWS_PRE, hc->resp.body.data() + hc->body_pos, n);
  hc->body_pos += n;
  bool last = hc->body_pos >= hc->resp.body.size();
  if (lws_write(wsi, buf.data() + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != int(n)) return 1;
  if (!last) {
    lws_callback_on_writable(wsi);
    return 0;
  }
  if (lws_http_transaction_completed(wsi)) return -1;
  return 0;
}

int Server::ConfirmUpgrade(lws* wsi) {
  std::string path = Header(wsi, WSI_TOKEN_GET_URI);
  std::string query = QueryString(wsi);
  std::string auth = Header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  if (path != "/v1/chat") {
    ++refused_;
    lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "not found");
    return 1;
  }
  if (opts_.faults.refuse_handshake) {
    ++refused_;
    Faults f = TakeFaults();  // a refused handshake uses up one connection
    lws_return_http_status(wsi, unsigned(f.refuse_handshake), "refused (injected fault)");
    return 1;
  }
  // Either form of the token is enough; a present but wrong one refuses.
  auto qauth = QueryValue(query, "authorization");
  if (opts_.verbose) std::fprintf(stderr, "upgrade query=[%s] auth=[%zu bytes]\n", query.c_str(), auth.size());
  bool ok = (!auth.empty() && opts_.access.TokenOk(auth)) || (qauth && opts_.access.TokenOk(*qauth));
  if (!ok) {
    ++refused_;
    lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, "authentication is invalid");
    return 1;
  }
  return 0;
}

Faults Server::TakeFaults() {
  Faults f = opts_.faults;
  if (opts_.faults.remaining > 0 && --opts_.faults.remaining == 0) {
    // The connection faults are used up; the turn faults have their own count.
    Faults rest;
    rest.chat_failed = opts_.faults.chat_failed;
    rest.chat_failed_after = opts_.faults.chat_failed_after;
    rest.turn_error = opts_.faults.turn_error;
    rest.turn_faults_remaining = opts_.faults.turn_faults_remaining;
    opts_.faults = rest;
  }
  return f;
}

int Server::OnEstablished(lws* wsi, WsConn*& wc) {
  std::string query = QueryString(wsi);
  std::string bot = QueryValue(query, "bot_id").value_or("");
  wc = new WsConn();
  wc->wsi = wsi;
  wc->id = next_conn_id_++;
  ++total_connections_;
  wc->faults = TakeFaults();
  wc->faults.refuse_handshake = 0;
  std::string logid = NewLogId();
  SessionContext ctx{&store_, agent_.get(), worker_.get(), &wc->faults, &opts_.faults};
  wc->session = std::make_unique<Session>(wc->id, ctx, bot, logid);
  conns_[wc->id] = wc;
  if (!opts_.log_dir.empty()) {
    std::string file = opts_.log_dir + "/conn-" + std::to_string(wc->id) + "-" + logid + ".jsonl";
    wc->log = std::fopen(file.c_str(), "w");
  }
  if (!opts_.access.BotOk(bot)) {
    // Documented error for an unknown bot: an error event, then close.
    wc->session->Start();
    Json err = {{"id", NewUuid()},
                {"event_type", "error"},
                {"data", {{"code", 4006}, {"msg", "bot not found or not published: " + bot}}},
                {"detail", {{"logid", logid}, {"respond_at", std::to_string(NowEpochMs())}}}};
    wc->outq.push_back(err.dump());
    wc->close_after_flush = true;
  } else {
    wc->session->Start();
  }
  lws_callback_on_writable(wsi);
  return 0;
}

void Server::LogRest(const HttpRequest& r, int status) {
  // Never the authorization header: it carries the token.
  if (rest_log_)
    WriteJsonLine(rest_log_, {{"t_ms", NowEpochMs()}, {"method", r.method}, {"path", r.path}, {"status", status}});
}

void Server::LogReceived(WsConn* wc, const std::string& text) {
  if (!wc->log) return;
  Json j = Json::parse(text, nullptr, false);
  Json line = {{"t_ms", NowEpochMs()}};
  if (j.is_discarded()) line["raw"] = text;
  else line["event"] = j;
  WriteJsonLine(wc->log, line);
}

int Server::OnReceive(lws* wsi, WsConn* wc, const char* in, size_t len) {
  if (lws_is_first_fragment(wsi)) {
    wc->rx.clear();
    wc->rx_binary = lws_frame_is_binary(wsi);
  }
  if (wc->rx.size() + len > kMaxMessageBytes) {
    wc->rx.clear();
    wc->session->OnText("");  // becomes an error event; the frame is dropped
    lws_callback_on_writable(wsi);
    return 0;
  }
  wc->rx.append(in, len);
  if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) return 0;
  std::string msg = std::move(wc->rx);
  wc->rx.clear();
  ++events_received_;
  LogReceived(wc, msg);
  if (wc->close_after_flush) return 0;
  if (wc->rx_binary) {
    // Coze carries audio as base64 inside JSON; binary frames are an error.
    wc->session->OnText(R"({"event_type":"binary frame"})");
  } else {
    wc->session->OnText(msg);
  }
  if (wc->session->overflow()) return -1;
  lws_callback_on_writable(wsi);
  return 0;
}

int Server::OnWritable(lws* wsi, WsConn* wc) {
  if (wc->stalled) return 0;
  if (wc->session->overflow()) return -1;
  if (wc->outq.empty() && !wc->close_after_flush) {
    std::vector<std::string> batch;
    int64_t wait = wc->session->Pump(NowMonoMs(), kPumpBatch, &batch);
    for (auto& s : batch) wc->outq.push_back(std::move(s));
    if (wait > 0) lws_set_timer_usecs(wsi, wait * 1000);
  }
  if (wc->outq.empty()) {
    if (wc->close_after_flush) {
      lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, nullptr, 0);
      return -1;
    }
    return 0;
  }
  const std::string& msg = wc->outq.front();
  std::vector<unsigned char> buf(LWS_PRE + msg.size());
  std::memcpy(buf.data() + LWS_PRE, msg.data(), msg.size());
  if (lws_write(wsi, buf.data() + LWS_PRE, msg.size(), LWS_WRITE_TEXT) < int(msg.size())) return -1;
  wc->outq.pop_front();
  ++wc->sent;
  ++events_sent_;
  const Faults& f = wc->faults;
  if (f.drop_after_events && wc->sent >= uint64_t(f.drop_after_events)) return -1;
  if (f.drop_probability > 0 && std::uniform_real_distribution<double>(0, 1)(Rng()) < f.drop_probability) return -1;
  if (f.stall_after_events && wc->sent >= uint64_t(f.stall_after_events)) {
    wc->stalled = true;
    return 0;
  }
  if (!wc->outq.empty() || wc->close_after_flush) {
    lws_callback_on_writable(wsi);
  } else if (wc->session->HasPending()) {
    lws_callback_on_writable(wsi);
  }
  return 0;
}

void Server::DrainWorker() {
  std::vector<WorkResult> results;
  worker_->Drain(&results);
  for (auto& r : results) {
    auto it = conns_.find(r.session_id);
    if (it == conns_.end()) continue;  // the connection closed meanwhile
    WsConn* wc = it->second;
    if (r.kind == WorkResult::kSynth) wc->session->OnSynthesized(r.job, std::move(r.pcm), r.rate);
    else wc->session->OnRecognized(r.job, r.recognition);
    lws_callback_on_writable(wc->wsi);
  }
}

}  // namespace vb::cozesim
