// The `bus` section of the config, shared by the broker, every actor, the
// sniffer and the launcher: where the broker is, high-water marks, limits and
// CURVE keys for tcp://.
//
// One configured endpoint names four sockets — for each plane (stream,
// control) the broker's XSUB ("in", publishers connect) and XPUB ("out",
// subscribers connect):
//   ipc:///run/vb/bus   → ipc:///run/vb/bus.stream.in, … .control.out
//   tcp://10.0.0.2:5560 → ports 5560 (stream in), 5561 (stream out),
//                         5562 (control in), 5563 (control out)
//   inproc://name       → inproc://name.stream.in, … (tests, one process)
#pragma once

#include <array>
#include <string>
#include <vector>

#include "bus/config.h"
#include "bus/status.h"
#include "bus/topics.h"
#include "bus/wire.h"

namespace vb::bus {

struct PlaneEndpoints {
  std::string in;   // broker XSUB: publishers connect here
  std::string out;  // broker XPUB: subscribers connect here
};
using Endpoints = std::array<PlaneEndpoints, 2>;  // indexed by Plane

Status DeriveEndpoints(const std::string& endpoint, Endpoints* out);
// The default endpoint: ipc://$XDG_RUNTIME_DIR/voicebus, or /tmp/voicebus-<uid>.
std::string DefaultEndpoint();

struct CurveConfig {
  // Broker: its key pair file; clients: the broker's public key (Z85).
  std::string server_key_file;               // broker only: file written by `vb keygen`
  std::string server_public_key;             // clients: the broker's public key (Z85)
  std::string client_key_file;               // clients: own key pair file
  std::vector<std::string> allowed_clients;  // broker: client public keys (Z85)
  bool enabled() const { return !server_key_file.empty() || !server_public_key.empty(); }
};

struct BusConfig {
  std::string endpoint;
  // Satellites (devices.h): the bus their own actors share on their host,
  // {device} = the device's name; "" = beside the hub's ipc path or the default.
  std::string satellite_endpoint;
  // tcp:// without CURVE is refused unless this is set (then every process
  // warns at start): an open tcp bus lets anyone who can reach the port
  // read the conversation and inject commands.
  bool insecure = false;
  // Stream frames between processes of one ipc:// host go straight from
  // publisher to reader (bus/local_plane.h) instead of through the broker;
  // ZeroMQ subscribers (vb-sniff, recorders, other languages) still get them.
  bool local_stream = true;
  int stream_hwm = 100;
  int control_hwm = 100000;
  int heartbeat_ms = 1000;
  WireLimits limits;
  CurveConfig curve;

  void Declare(config::Section& s);
};

// Config error if `c` is tcp:// without CURVE and not explicitly insecure.
// Checked by Declare (config files) and again by Node::Connect and
// Broker::Bind (endpoints set on the command line or in code).
Status CheckTransportSecurity(const BusConfig& c);
// True if `c` is a tcp:// bus running without CURVE by explicit choice
// (bus.insecure): the caller warns at every start.
bool RunsInsecure(const BusConfig& c);

// A key pair as written by `vb keygen`: YAML {public: Z85, secret: Z85}.
struct KeyPair {
  std::string public_key, secret_key;
};
Status LoadKeyPair(const std::string& path, KeyPair* out);
Status GenerateKeyPair(KeyPair* out);

}  // namespace vb::bus
