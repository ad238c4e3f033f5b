// The network face of the simulator: one libwebsockets context, one vhost on
// 127.0.0.1, one protocol whose callback serves both the REST API (HTTP) and
// `/v1/chat` (WebSocket) on the same port. Everything protocol-related lives
// in Session and RestApi; this file maps lws callbacks onto them, paces
// writes, injects faults, and writes each connection's upstream events and the REST requests
// to `--log-dir`. One event loop thread; worker results arrive through
// lws_cancel_service.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "bus/lws_service.h"
#include "tools/coze-sim/agent.h"
#include "tools/coze-sim/faults.h"
#include "tools/coze-sim/rest_api.h"
#include "tools/coze-sim/store.h"
#include "tools/coze-sim/worker.h"

struct lws;
struct lws_context;

namespace vb::cozesim {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the kernel picks a free port
  std::string log_dir;
  std::string state_file;  // conversations kept across restarts; "" = in memory only
  AccessPolicy access;
  Faults faults;
  int recognizer_threads = 2;
  RecognizerOptions recognizer;
  bool use_grammar = true;  // derive a JSGF grammar from the agent's rules
  bool verbose = false;
  // TLS (https:// and wss:// on the one port) when both are set: PEM files of
  // the server certificate (with any intermediates after it) and its key.
  std::string tls_cert, tls_key;
};

class Server {
 public:
  static constexpr size_t kMaxMessageBytes = 8 << 20;  // one upstream frame
  static constexpr size_t kPumpBatch = 16;

  Server(ServerOptions opts, std::unique_ptr<Agent> agent);
  ~Server();
  // Binds and listens; false with *error on failure. port() is then valid.
  bool Start(std::string* error);
  int port() const { return port_; }
  // Serves until Stop() (callable from any thread or a signal handler).
  void Run();
  void Stop();
  // Blocks until speech models are loaded; returns an error text or "".
  std::string WaitModels() { return worker_->WaitReady(); }

  // lws entry point (public for the C callback table).
  int Callback(lws* wsi, int reason, void* user, void* in, size_t len);

 private:
  struct HttpConn;
  struct WsConn;
  int OnHttp(lws* wsi, HttpConn*& hc, const char* uri);
  int FinishHttp(lws* wsi, HttpConn* hc);
  int WriteHttp(lws* wsi, HttpConn* hc);
  int ConfirmUpgrade(lws* wsi);
  int OnEstablished(lws* wsi, WsConn*& wc);
  int OnReceive(lws* wsi, WsConn* wc, const char* in, size_t len);
  int OnWritable(lws* wsi, WsConn* wc);
  void DrainWorker();
  // The faults for a new connection; counts down `remaining`.
  Faults TakeFaults();
  void LogReceived(WsConn* wc, const std::string& text);
  // One line per REST request to `--log-dir`/rest.jsonl: when it was
  // complete, what it asked, the status given.
  void LogRest(const HttpRequest& r, int status);
  Json Stats() const;

  ServerOptions opts_;
  std::unique_ptr<Agent> agent_;
  Store store_;
  std::unique_ptr<RestApi> rest_;
  std::unique_ptr<Worker> worker_;
  // The shared libwebsockets bridge, served on the caller's thread (Run):
  // the simulator's event loop is lws's own.
  LwsService service_;
  int port_ = 0;
  std::FILE* rest_log_ = nullptr;
  std::atomic<bool> stop_{false};
  // Wakes the event loop now and then while the store has unsaved changes
  // (lws_service may otherwise sleep with them until the next connection event).
  std::thread flush_ticker_;
  std::atomic<bool> flush_wanted_{false};
  uint64_t next_conn_id_ = 1;
  std::unordered_map<uint64_t, WsConn*> conns_;
  uint64_t total_connections_ = 0, refused_ = 0, events_sent_ = 0, events_received_ = 0;
};

}  // namespace vb::cozesim
