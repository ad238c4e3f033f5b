// CozeClient: the network side of the session — one WebSocket to
// `<ws_base>/v1/chat` and REST calls to `<api_base>`, both with libwebsockets
// (Debian's 4.1.6 has no external-poll support, so lws runs on its own
// thread — the shared bridge, bus/lws_service.h — and everything it reports
// is handed to the actor's loop with Loop::Post; the loop hands work back
// through a small locked queue and LwsService::Wake). TLS (wss://, https://) is verified against the system
// CAs unless a CA file is configured. The token only ever goes into the
// Authorization header; nothing here logs URLs with secrets or headers.
//
// Thread-safety: every public method may be called from the loop thread; the
// callbacks run on the loop thread (through `post`).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/lws_service.h"
#include "bus/stats.h"

struct lws;
struct lws_context;

namespace vb::session {

// scheme://host[:port][/prefix] split for lws.
struct Url {
  bool tls = false;
  std::string host;
  int port = 0;
  std::string path;  // prefix, without trailing '/', may be empty
  // Parses ws://, wss://, http://, https://; false on anything else.
  static bool Parse(const std::string& text, Url* out);
  // For logs and SessionStatus: scheme-less host[:port] (never a query or a secret).
  std::string Display() const;
};

struct ClientOptions {
  Url ws;   // where /v1/chat lives
  Url api;  // where /v1/conversation/create lives
  std::string token;
  std::string ca_file;  // "" = system CAs
  int ping_s = 10;      // WebSocket ping after this idle time
  int hangup_s = 30;    // no pong/traffic for this long → dropped
  size_t max_message_bytes = 4 << 20;
  size_t max_queued = 1024;  // upstream frames waiting for the socket
};

class CozeClient {
 public:
  using Post = std::function<bool(std::function<void()>)>;
  struct Callbacks {
    std::function<void(uint64_t gen)> opened;
    std::function<void(uint64_t gen, std::string text, int64_t recv_ns)> text;
    // `http_status` is the handshake's status if it failed there (401, 403…), else 0.
    std::function<void(uint64_t gen, std::string reason, int http_status)> closed;
  };
  using HttpDone = std::function<void(int http_status, std::string body, std::string error)>;
  // A piece of a streamed response body (SSE), in order.
  using HttpChunk = std::function<void(std::string chunk)>;

  CozeClient(ClientOptions options, Post post, Callbacks callbacks);
  ~CozeClient();
  CozeClient(const CozeClient&) = delete;
  CozeClient& operator=(const CozeClient&) = delete;

  // Starts the lws thread; false with *error if the context cannot be made.
  bool Start(std::string* error);
  void Stop();

  // Opens the WebSocket (`path_and_query` e.g. "/v1/chat?bot_id=1"); closes
  // any previous one. Returns the connection's generation: callbacks carry
  // it so a late report of an old connection is recognised.
  uint64_t Connect(const std::string& path_and_query);
  void Close();
  // Queues one text frame; false if not open or the queue is full.
  // `origin_ns` (0 = none) feeds the send-latency histogram.
  bool Send(std::string text, int64_t origin_ns);
  // POSTs JSON to the REST base; `done` runs on the loop.
  void HttpPost(const std::string& path_and_query, std::string body, HttpDone done);
  // POSTs JSON and hands the response body to `chunk` as it arrives (an SSE
  // stream); `done` runs once at the end with an empty body. Both run on the
  // loop. Returns an id for AbortHttp. Any number may run at once (text
  // chats run beside the WebSocket and each other).
  uint64_t HttpPostStream(const std::string& path_and_query, std::string body, HttpChunk chunk, HttpDone done);
  // Drops a request under way (its connection is closed); neither callback
  // is called for it again, except ones already handed to the loop.
  void AbortHttp(uint64_t id);

  // Latency from origin_ns to the frame being written to the socket (µs);
  // copies and resets.
  bus::Histogram TakeSendLatency();
  uint64_t dropped_posts() const { return dropped_posts_; }
  uint64_t oversized() const { return oversized_; }

  // Internal: the lws protocol callback (reason is an lws_callback_reasons).
  static int Callback(CozeClient* self, lws* wsi, int reason, void* user, void* in, size_t len);

 private:
  struct Outgoing {
    std::string text;
    int64_t origin_ns;
  };
  // One lws connection (the WebSocket or a REST call), owned by conns_ until
  // lws destroys its wsi.
  struct Conn {
    bool http = false;
    uint64_t gen = 0;
    std::string path, body;
    HttpDone done;
    HttpChunk chunk;       // http: streamed (body handed on as it comes)
    uint64_t http_id = 0;  // http: for AbortHttp
    lws* wsi = nullptr;    // http: its connection (lws thread)
    size_t received = 0;   // http: body bytes so far
    int status = 0;
    std::string response;
    bool finished = false;  // http: done reported / ws: closed reported
    std::string rx;         // ws: message being reassembled
    int64_t rx_start_ns = 0;
    bool rx_overflow = false;
    int64_t opened_ns = 0;  // http: when the request was started
    bool sent = false;      // http: the whole request went out
    int tls_error = 0;      // OpenSSL's verify error of the server's certificate (0 = none seen)
  };
  // What a person reads when the TLS handshake failed on certificate
  // verification: which check failed, naming session.ca_file; "" if `c` saw
  // no verification error (the library's own text is used then).
  std::string TlsFailure(const Conn& c, const Url& url) const;
  enum class Action { kConnect, kClose, kHttp, kAbortHttp };
  struct Pending {
    Action action;
    // Owned until the lws thread opens it: a client stopped before then
    // frees it with the queue (LSan found one asked for just before a SIGTERM).
    std::unique_ptr<Conn> conn;
    uint64_t http_id = 0;  // kAbortHttp
  };

  int OnWs(lws* wsi, Conn* c, int reason, void* in, size_t len);
  int OnHttp(lws* wsi, Conn* c, int reason, void* in, size_t len);
  void ServicePending();  // lws thread
  void Open(Conn* c);     // lws thread
  void FinishHttp(Conn* c, const std::string& error);
  // Why a request ended without a reply, naming the stage and the time taken
  // (a server that never answers and one that never accepts look alike).
  static std::string NoReply(const Conn& c);
  void ReportClosed(Conn* c, const std::string& reason, int status);
  void Report(std::function<void()> fn);
  void Forget(Conn* c);

  ClientOptions options_;
  Post post_;
  Callbacks cb_;
  std::string auth_;  // "Bearer <token>": header value only

  LwsService service_;

  std::mutex mu_;  // guards everything below shared with the lws thread
  std::deque<Pending> pending_;
  std::deque<Outgoing> outgoing_;
  bool open_ = false;  // the current connection is established
  uint64_t gen_ = 0;   // current connection generation
  uint64_t next_http_id_ = 0;
  bus::Histogram send_us_;

  // lws thread only.
  std::map<Conn*, std::unique_ptr<Conn>> conns_;
  lws* wsi_ = nullptr;  // the current WebSocket
  Conn* ws_ = nullptr;
  std::atomic<uint64_t> dropped_posts_{0};
  std::atomic<uint64_t> oversized_{0};
};

}  // namespace vb::session
