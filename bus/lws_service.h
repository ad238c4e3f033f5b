// LwsService: the one libwebsockets bridge of voicebus, shared by vb-session's
// Coze client, vb-gateway's server and the simulator. Debian's lws 4.1 has
// no external-poll support, so lws serves its context on a thread of its
// own (or, for a program that is nothing else, on the caller's). This class
// owns that context and that service: it creates the context from the
// owner's settings, sends every lws callback of it to the owner's handler
// on the service thread, wakes the service from any thread (the owner's
// handler then sees LWS_CALLBACK_EVENT_WAIT_CANCELLED and takes what the
// other threads queued for it), routes lws's log into ours, and stops
// (thread joined, context destroyed) in one place. Work for the owner's own
// loop leaves the handler through the owner's queue (bus::Loop::Post, a
// bounded event queue): the one thing that differs between the three.
//
// Part of vb_lws (vb_base + libwebsockets, no ZeroMQ). Thread-safety: Wake,
// RequestStop and stopping() from any thread; Create, StartThread, Serve and
// Stop from the owning thread.
#pragma once

#include <libwebsockets.h>

#include <atomic>
#include <functional>
#include <thread>

namespace vb {

class LwsService {
 public:
  // The owner's callback, on the service thread: lws's arguments, `reason`
  // an lws_callback_reasons.
  using Handler = std::function<int(lws* wsi, int reason, void* user, void* in, size_t len)>;

  explicit LwsService(Handler handler) : handler_(std::move(handler)) {}
  ~LwsService() { Stop(); }
  LwsService(const LwsService&) = delete;
  LwsService& operator=(const LwsService&) = delete;

  // lws's errors and warnings (and notices with `verbose`) into VB_LOG.
  static void RouteLogs(bool verbose = false);
  // The callback every protocol of the context names: it hands the call to
  // the handler of the LwsService that made the context.
  static int Callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);

  // Makes the context from the owner's `info` (its `user` is taken here);
  // false if lws refused (port taken, bad certificate…).
  bool Create(lws_context_creation_info& info);
  // Serves on a thread of its own until Stop().
  void StartThread();
  // Serves on the calling thread until RequestStop(); `after_each` runs on
  // it after every service pass.
  void Serve(const std::function<void()>& after_each = nullptr);
  // Any thread: the service wakes and the handler gets
  // LWS_CALLBACK_EVENT_WAIT_CANCELLED. A no-op before Create or after Stop.
  void Wake();
  // Any thread: the service ends soon (Serve returns, the thread leaves its loop).
  void RequestStop();
  // Ends the service: joins its thread, then destroys the context (its
  // connections' CLOSED callbacks run here, with stopping() true).
  void Stop();
  bool stopping() const { return stop_.load(); }
  lws_context* context() const { return context_; }

 private:
  Handler handler_;
  std::atomic<lws_context*> context_{nullptr};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vb
