// SatelliteBridge: the bus of a satellite's host (devices.h), joined to the
// hub's bus. Per plane it binds a local XSUB/XPUB pair (ipc://, the
// satellite's own actors connect there) and connects an XPUB to the hub's
// "in" and an XSUB to the hub's "out" (tcp:// with CURVE: the bridge is the
// only client of the hub on this host).
//
// What crosses the link is what the other side subscribes to, nothing more:
// - up: local messages reach the hub only if someone at the hub subscribes
//   to their topic (the hub's subscriptions arrive on the upward XPUB, which
//   filters);
// - down: a local subscription is passed up to the hub, except for topics
//   published on this host (its microphone, reference, clean audio: the
//   afe and wakevad here hear them locally, so the hub is not asked for its
//   copy — which would pull them up the link and back);
// - echoes: a message coming down whose Header.source published here is
//   dropped (a subscription of every device, "audio.clean/", would bring
//   our own frames back);
// - device names: a subscription of "audio.clean/kitchen" is a ZeroMQ
//   prefix that also matches "audio.clean/kitchen2"; the bridge sends up
//   only what a hub subscription names exactly and drops what comes down
//   for another device (the hub's broker still sends those down the link:
//   ZeroMQ filters by prefix only).
// Losing the hub changes nothing here: the local actors keep their bus;
// ZeroMQ reconnects (connect timeout and heartbeats bound how long a dead
// link goes unnoticed) and resends the subscriptions both ways.
//
// Runs on a Loop; not thread-safe.
#pragma once

#include <zmq.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "bus/bus_config.h"
#include "bus/loop.h"
#include "bus/status.h"

namespace vb::bus {

class SatelliteBridge {
 public:
  // `hub`: the bus config of the hub (endpoint, CURVE client keys);
  // `local_endpoint`: the satellite's own bus (ipc://).
  SatelliteBridge(zmq::context_t& ctx, Loop& loop, BusConfig hub, std::string local_endpoint);
  ~SatelliteBridge();
  Status Start();

  struct Counters {
    uint64_t up[2] = {0, 0};      // messages sent towards the hub (some hub subscription names them)
    uint64_t down[2] = {0, 0};    // messages from the hub delivered here
    uint64_t echoes_dropped = 0;  // our own messages coming back down
    uint64_t kept_local = 0;      // subscriptions not passed up: topics published here
    uint64_t other_device = 0;    // messages of a device whose name only starts like a subscribed one
  };
  const Counters& counters() const { return counters_; }

 private:
  struct PlaneState {
    std::unique_ptr<zmq::socket_t> local_in, local_out, up_out, up_in;
    std::set<std::string> local_subs, hub_subs, passed_up, local_topics;
  };
  void OnLocalMessage(int p);
  void OnHubMessage(int p);
  // A subscription from the local side or the hub's; local publishers are
  // kept subscribed to the union of both.
  void OnSubscription(int p, bool from_hub);
  static void SendSub(zmq::socket_t& s, bool on, const std::string& prefix);

  zmq::context_t& ctx_;
  Loop& loop_;
  BusConfig hub_;
  std::string local_endpoint_;
  PlaneState planes_[2];
  std::set<std::string> local_sources_;
  Counters counters_;
};

}  // namespace vb::bus
