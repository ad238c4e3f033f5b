// Broker: the bus's XSUB⇄XPUB proxy, one pair per plane (stream, control).
// Stateless: it holds no messages beyond ZeroMQ's queues, so it can be
// restarted at any time and publishers/subscribers reconnect on their own.
// For its first kSettle after binding it holds control-plane messages back
// (bounded) and then forwards them in order: publishers reconnect with what
// they queued while it was down (a TurnEnded, say) at the same time as
// subscribers come back and subscribe again, and a message that came first
// would otherwise meet nobody subscribed and be dropped.
// On tcp:// with CURVE configured it authenticates clients against an
// allow-list of public keys (a ZAP handler on the same loop); tcp:// without
// CURVE is refused unless bus.insecure says so. It never takes over an
// ipc:// endpoint another live broker serves.
//
// Runs on a Loop; not thread-safe.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bus/bus_config.h"
#include "bus/heap.h"
#include "bus/loop.h"
#include "bus/status.h"

namespace vb::bus {

// Unavailable if a live broker already serves one of `ep`'s ipc:// paths
// (a stale socket file from a dead broker is fine: bind replaces it).
Status RefuseLiveBroker(const Endpoints& ep);

class Broker {
 public:
  Broker(zmq::context_t& ctx, Loop& loop, BusConfig config);
  ~Broker();
  Status Bind();

  struct Counters {
    uint64_t forwarded[2] = {0, 0};
    uint64_t subscriptions = 0;
    uint64_t auth_denied = 0;
    uint64_t held_at_start = 0;     // control messages held through the settle time
    uint64_t dropped_at_start = 0;  // beyond the hold's bound (control_hwm messages)
  };
  static constexpr std::chrono::milliseconds kSettle{500};
  const Counters& counters() const { return counters_; }

 private:
  void Forward(zmq::socket_t& from, zmq::socket_t& to, uint64_t* count);
  void Hold(zmq::socket_t& from);
  void EndSettle();
  void OnZap();

  zmq::context_t& ctx_;
  Loop& loop_;
  HeapTrimmer heap_;
  Loop::TimerId settle_timer_ = 0, heap_timer_ = 0;
  BusConfig config_;
  std::unique_ptr<zmq::socket_t> xsub_[2], xpub_[2], zap_;
  std::set<std::string> allowed_;
  bool settling_ = true;
  std::deque<std::vector<zmq::message_t>> held_;
  Counters counters_;
};

}  // namespace vb::bus
