// The `bus` config section and endpoint derivation (see bus_config.h).
#include "bus/bus_config.h"

#include <unistd.h>
#include <zmq.h>

#include <cstdlib>

namespace vb::bus {

std::string DefaultEndpoint() {
  const char* run = std::getenv("XDG_RUNTIME_DIR");
  if (run && *run) return std::string("ipc://") + run + "/voicebus";
  return "ipc:///tmp/voicebus-" + std::to_string(getuid());
}

Status DeriveEndpoints(const std::string& endpoint, Endpoints* out) {
  static const char* kPlane[] = {"stream", "control"};
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) {
    if (endpoint.size() <= endpoint.find("://") + 3)
      return Status::Config("bus.endpoint: '" + endpoint + "' has no path");
    for (int p = 0; p < 2; ++p) {
      (*out)[p].in = endpoint + "." + kPlane[p] + ".in";
      (*out)[p].out = endpoint + "." + kPlane[p] + ".out";
    }
    return Status::Ok();
  }
  if (endpoint.rfind("tcp://", 0) == 0) {
    auto colon = endpoint.rfind(':');
    if (colon == std::string::npos || colon < 6)
      return Status::Config("bus.endpoint: '" + endpoint + "' needs host:port");
    int port = std::atoi(endpoint.c_str() + colon + 1);
    if (port <= 0 || port > 65532)
      return Status::Config("bus.endpoint: '" + endpoint + "': port must be 1..65532 (4 ports are used)");
    std::string host = endpoint.substr(0, colon);
    for (int p = 0; p < 2; ++p) {
      (*out)[p].in = host + ":" + std::to_string(port + 2 * p);
      (*out)[p].out = host + ":" + std::to_string(port + 2 * p + 1);
    }
    return Status::Ok();
  }
  return Status::Config("bus.endpoint: '" + endpoint + "' must start with ipc://, tcp:// or inproc://");
}

void BusConfig::Declare(config::Section& s) {
  s.Key("endpoint", &endpoint, std::string(""),
        "broker endpoint: ipc://PATH, tcp://HOST:PORT (4 ports, CURVE) or inproc://NAME; "
        "empty = ipc://$XDG_RUNTIME_DIR/voicebus");
  s.Key("satellite_endpoint", &satellite_endpoint, std::string(""),
        "satellites: the bus a satellite's own actors share on its host (ipc://PATH, {device} = its name), "
        "bridged to endpoint by `vb-broker --satellite DEVICE`; empty = ipc://DIR/voicebus-sat-{device} "
        "beside an ipc endpoint, else beside the default one");
  s.Key("local_stream", &local_stream, true,
        "ipc:// buses: audio frames go straight from publisher to reader on this host (a fifth less CPU for the "
        "pipeline); ZeroMQ subscribers (vb sniff, recorders, actors in other languages) still get them. false: "
        "every frame through the broker");
  s.Key("stream_hwm", &stream_hwm, 100, {1, 1e6},
        "high-water mark (messages) for audio streams: beyond it stale audio is dropped (and counted)");
  s.Key("control_hwm", &control_hwm, 100000, {1000, 1e7},
        "high-water mark for events and commands, sized so they are not dropped");
  s.Key("heartbeat_ms", &heartbeat_ms, 1000, {100, 10000}, "heartbeat interval of every actor");
  size_t max_payload = limits.max_payload;
  s.Key("max_message_bytes", &max_payload, size_t(4 << 20), {1024, 256 << 20},
        "largest payload accepted; bigger frames are counted as malformed and dropped");
  limits.max_payload = max_payload;
  s.Key("insecure", &insecure, false,
        "allow tcp:// without CURVE (anyone reaching the ports can read and inject); "
        "without it such a bus refuses to start");
  auto c = s.Sub("curve", "CURVE authentication and encryption for tcp:// endpoints");
  c.Key("server_key_file", &curve.server_key_file, std::string(""), "broker: its key pair file (from `vb keygen`)");
  c.Key("server_public_key", &curve.server_public_key, std::string(""), "clients: the broker's public key (Z85)");
  c.Key("client_key_file", &curve.client_key_file, std::string(""),
        "clients: their own key pair file (from `vb keygen`)");
  c.Key("allowed_clients", &curve.allowed_clients, {}, "broker: public keys (Z85) of the clients allowed to connect");
  c.Finish();
  if (endpoint.empty()) endpoint = DefaultEndpoint();
  Endpoints e;
  if (Status st = DeriveEndpoints(endpoint, &e); !st.ok()) s.Error("endpoint", st.message());
  if (Status st = CheckTransportSecurity(*this); !st.ok()) s.Error("endpoint", st.message());
  if (!curve.server_public_key.empty() && curve.server_public_key.size() != 40)
    c.Error("server_public_key", "must be a 40-character Z85 key");
  for (const auto& k : curve.allowed_clients)
    if (k.size() != 40) c.Error("allowed_clients", "'" + k + "' is not a 40-character Z85 key");
}

namespace {
bool IsTcp(const BusConfig& c) { return c.endpoint.rfind("tcp://", 0) == 0; }
}  // namespace

Status CheckTransportSecurity(const BusConfig& c) {
  if (!IsTcp(c) || c.curve.enabled() || c.insecure) return Status::Ok();
  return Status::Config("bus.endpoint: '" + c.endpoint +
                        "' is tcp:// without CURVE: anyone who reaches it can listen and inject commands. "
                        "Configure bus.curve (keys from `vb keygen`), or set bus.insecure: true to run it open");
}

bool RunsInsecure(const BusConfig& c) { return IsTcp(c) && !c.curve.enabled(); }

Status LoadKeyPair(const std::string& path, KeyPair* out) {
  try {
    YAML::Node n = YAML::LoadFile(path);
    out->public_key = n["public"].as<std::string>("");
    out->secret_key = n["secret"].as<std::string>("");
  } catch (const std::exception& e) {
    return Status::Config(path + ": cannot read key pair: " + e.what());
  }
  if (out->public_key.size() != 40 || out->secret_key.size() != 40)
    return Status::Config(path + ": expected 'public' and 'secret' Z85 keys of 40 characters");
  return Status::Ok();
}

Status GenerateKeyPair(KeyPair* out) {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) return Status::Unavailable("libzmq has no CURVE support");
  out->public_key = pub;
  out->secret_key = sec;
  return Status::Ok();
}

}  // namespace vb::bus
