// WsServer: the libwebsockets transport of the gateway — one port serving
// the WebSocket endpoint (default /v1/chat/stream) and the dashboard's
// embedded static files over HTTP.
//
// libwebsockets 4.1 (as packaged) has no external-poll support, so it runs on
// its own service thread (the shared bridge, bus/lws_service.h) and talks to
// the actor's loop through two bounded, locked queues: events (open, text, bad frame, close) go to the loop, which
// is poked through `notify` when the queue becomes non-empty and calls
// TakeEvents(); frames and closes come from the loop via Send()/Close(),
// which wake the service thread with lws_cancel_service().
//
// Limits: a text message over max_frame_bytes is discarded (a bad-frame
// event, the connection stays); a client whose unsent frames exceed
// max_queued_bytes is closed (a slow consumer must not grow memory); at most
// max_clients WebSocket connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "actors/gateway/protocol.h"
#include "bus/lws_service.h"
#include "bus/status.h"

struct lws;
struct lws_context;

namespace vb::gateway {

using ConnId = uint64_t;

struct WebAsset {
  std::string_view path;          // e.g. "/index.html"
  std::string_view content_type;  // e.g. "text/html; charset=utf-8"
  std::string_view body;
};

class WsServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 5500;
    std::string ws_path = "/v1/chat/stream";
    size_t max_frame_bytes = 65536;
    size_t max_queued_bytes = 8 << 20;
    int max_clients = 128;
    std::span<const WebAsset> assets;  // "/" serves "/index.html"
  };
  struct Event {
    enum Kind { kOpen, kText, kBadFrame, kClose } kind;
    ConnId conn = 0;
    std::string text;  // kText: the message; kBadFrame: why
  };
  struct Session;  // one WebSocket connection (service thread only)
  struct Stats {
    uint64_t events_dropped = 0, slow_closed = 0, refused = 0, http_requests = 0;
  };

  explicit WsServer(Options options);
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  // Binds the port (Unavailable if it cannot).
  Status Listen();
  // Starts the service thread; `notify` runs on it when events are waiting.
  void Start(std::function<void()> notify);
  // Stops the thread and closes every connection.
  void Stop();

  // Thread-safe.
  void Send(ConnId conn, Frame frame);
  void Close(ConnId conn, std::string_view reason);
  std::vector<Event> TakeEvents();
  Stats stats() const;
  // The body of `GET /health` (JSON) from now on; the loop refreshes it.
  void SetHealth(std::string json);

  // Internal: the libwebsockets callback.
  int Callback(lws* wsi, int reason, void* user, void* in, size_t len);

 private:
  struct Outgoing {
    ConnId conn;
    Frame frame;  // null: close
    std::string reason;
  };
  void Push(Event e);
  void DistributeOutgoing();
  int Writable(Session& s);

  Options options_;
  LwsService service_;
  std::function<void()> notify_;

  // Service thread only.
  std::unordered_map<ConnId, Session*> sessions_;
  // A generated body (GET /health) while it is written, per HTTP connection.
  struct DynamicBody {
    std::string body;
    WebAsset asset;
  };
  std::unordered_map<lws*, std::unique_ptr<DynamicBody>> dynamic_;
  ConnId next_id_ = 1;
  std::vector<unsigned char> write_buf_;

  // Shared.
  mutable std::mutex mu_;
  std::vector<Event> events_;
  std::vector<Outgoing> outgoing_;
  Stats stats_;
  std::string health_ = "{}";
  static constexpr size_t kMaxEvents = 16384;
  static constexpr size_t kMaxOutgoing = 1 << 20;
};

}  // namespace vb::gateway
