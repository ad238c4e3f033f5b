// XSUB⇄XPUB forwarding and CURVE allow-list (see broker.h).
#include "bus/broker/broker.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "bus/log.h"

namespace vb::bus {
namespace {

// Is something accepting connections on the Unix socket `path` right now?
// ZeroMQ's ipc bind silently unlinks an existing socket file, so a second
// broker would take the bus from a live one; a plain connect() tells a live
// listener (accepted) from a stale file left by a dead one (ECONNREFUSED).
bool IpcListenerAlive(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool alive = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN;
  close(fd);
  return alive;
}

}  // namespace

Status RefuseLiveBroker(const Endpoints& ep) {
  for (const auto& plane : ep)
    for (const auto* e : {&plane.in, &plane.out}) {
      if (e->rfind("ipc://", 0) != 0) continue;
      std::string path = e->substr(6);
      if (access(path.c_str(), F_OK) == 0 && IpcListenerAlive(path))
        return Status::Unavailable("broker: another broker is serving " + *e +
                                   " (it accepts connections); stop it first or use another bus.endpoint");
    }
  return Status::Ok();
}

Broker::Broker(zmq::context_t& ctx, Loop& loop, BusConfig config)
    : ctx_(ctx), loop_(loop), config_(std::move(config)) {}

Broker::~Broker() {
  for (int p = 0; p < 2; ++p) {
    if (xsub_[p]) loop_.RemoveZmqSocket(xsub_[p]->handle());
    if (xpub_[p]) loop_.RemoveZmqSocket(xpub_[p]->handle());
  }
  if (zap_) loop_.RemoveZmqSocket(zap_->handle());
  // The loop may outlive the broker (tests stop one and start another).
  loop_.CancelTimer(settle_timer_);
  loop_.CancelTimer(heap_timer_);
}

Status Broker::Bind() {
  Endpoints ep;
  if (Status st = DeriveEndpoints(config_.endpoint, &ep); !st.ok()) return st;
  if (Status st = CheckTransportSecurity(config_); !st.ok()) return st;
  if (RunsInsecure(config_))
    VB_LOG(kWarn) << "serving " << config_.endpoint
                  << " without CURVE (bus.insecure: true): anyone who reaches it can listen and inject";
  if (Status st = RefuseLiveBroker(ep); !st.ok()) return st;
  bool curve = config_.curve.enabled() && config_.endpoint.rfind("tcp://", 0) == 0;
  KeyPair server;
  if (curve) {
    if (config_.curve.server_key_file.empty())
      return Status::Config("bus.curve.server_key_file: the broker needs its key pair for CURVE");
    if (Status st = LoadKeyPair(config_.curve.server_key_file, &server); !st.ok()) return st;
    for (const auto& k : config_.curve.allowed_clients) allowed_.insert(k);
    // ZAP: libzmq asks this socket whether each connecting client may in.
    zap_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::rep);
    zap_->bind("inproc://zeromq.zap.01");
    loop_.AddZmqSocket(zap_->handle(), [this] { OnZap(); });
  }
  try {
    for (int p = 0; p < 2; ++p) {
      int hwm = p == int(Plane::kStream) ? config_.stream_hwm : config_.control_hwm;
      xsub_[p] = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xsub);
      xpub_[p] = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xpub);
      xsub_[p]->set(zmq::sockopt::rcvhwm, hwm);
      xpub_[p]->set(zmq::sockopt::sndhwm, hwm);
      xsub_[p]->set(zmq::sockopt::linger, 0);
      xpub_[p]->set(zmq::sockopt::linger, 0);
      // No frame bigger than any receiver would accept is forwarded: a
      // publisher that sends one is disconnected by ZeroMQ (it reconnects),
      // so a 64 MiB payload costs no subscriber anything and cannot sit in
      // HWM-deep queues here. Subscription frames are a topic prefix.
      xsub_[p]->set(zmq::sockopt::maxmsgsize, int64_t(MaxFrameBytes(config_.limits)));
      xpub_[p]->set(zmq::sockopt::maxmsgsize, int64_t(config_.limits.max_topic + 64));
      for (auto* s : {xsub_[p].get(), xpub_[p].get()}) {
        if (!curve) continue;
        s->set(zmq::sockopt::curve_server, 1);
        s->set(zmq::sockopt::curve_secretkey, server.secret_key);
        s->set(zmq::sockopt::zap_domain, std::string("voicebus"));
      }
      xsub_[p]->bind(ep[p].in);
      xpub_[p]->bind(ep[p].out);
      loop_.AddZmqSocket(xsub_[p]->handle(), [this, p] {
        if (p == int(Plane::kControl) && settling_) return Hold(*xsub_[p]);
        Forward(*xsub_[p], *xpub_[p], &counters_.forwarded[p]);
      });
      loop_.AddZmqSocket(xpub_[p]->handle(), [this, p] { Forward(*xpub_[p], *xsub_[p], &counters_.subscriptions); });
    }
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("broker: cannot bind " + config_.endpoint + ": " + e.what());
  }
  settle_timer_ = loop_.AddOneShot(kSettle, [this] {
    settle_timer_ = 0;
    EndSettle();
  });
  // What a flood queued here (up to the high-water marks) and then drained
  // goes back to the system within a second (bus/heap.h).
  heap_timer_ = loop_.AddTimer(std::chrono::seconds(1), [this] { heap_.AfterBurst(); });
  return Status::Ok();
}

void Broker::Hold(zmq::socket_t& from) {
  while (true) {
    std::vector<zmq::message_t> parts(1);
    if (!from.recv(parts[0], zmq::recv_flags::dontwait)) return;
    while (parts.back().more()) {
      parts.emplace_back();
      if (!from.recv(parts.back(), zmq::recv_flags::none)) break;
    }
    if (held_.size() >= size_t(std::max(1, config_.control_hwm))) {
      ++counters_.dropped_at_start;
      continue;
    }
    ++counters_.held_at_start;
    held_.push_back(std::move(parts));
  }
}

void Broker::EndSettle() {
  settling_ = false;
  const int c = int(Plane::kControl);
  for (auto& parts : held_) {
    for (size_t i = 0; i < parts.size(); ++i)
      xpub_[c]->send(parts[i], i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    ++counters_.forwarded[c];
  }
  if (!held_.empty())
    VB_LOG(kInfo) << "forwarded " << held_.size() << " control messages held while subscribers came back"
                  << (counters_.dropped_at_start
                          ? " (" + std::to_string(counters_.dropped_at_start) + " beyond the bound dropped)"
                          : "");
  held_.clear();
  Forward(*xsub_[c], *xpub_[c], &counters_.forwarded[c]);  // what came in since
}

void Broker::Forward(zmq::socket_t& from, zmq::socket_t& to, uint64_t* count) {
  for (int budget = 0; budget < 1024; ++budget) {
    zmq::message_t m;
    if (!from.recv(m, zmq::recv_flags::dontwait)) return;
    bool more = m.more();
    to.send(m, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
    while (more) {
      zmq::message_t part;
      if (!from.recv(part, zmq::recv_flags::none)) break;
      more = part.more();
      to.send(part, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    ++*count;
  }
}

void Broker::OnZap() {
  // ZAP request: version, request id, domain, address, identity, mechanism, credentials.
  std::vector<zmq::message_t> req;
  while (true) {
    zmq::message_t m;
    if (!zap_->recv(m, zmq::recv_flags::dontwait)) break;
    bool more = m.more();
    req.push_back(std::move(m));
    if (!more) break;
  }
  if (req.size() < 6) return;
  bool ok = false;
  std::string key_text = "?";
  if (req.size() >= 7 && req[5].to_string() == "CURVE" && req[6].size() == 32) {
    char z85[41];
    zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
    key_text = z85;
    ok = allowed_.count(key_text) > 0;
  }
  if (!ok) {
    ++counters_.auth_denied;
    VB_LOG(kWarn) << "refused a client whose CURVE key is not allowed: " << key_text;
  }
  zap_->send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
  zap_->send(req[1], zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(std::string(ok ? "200" : "400")), zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(std::string(ok ? "OK" : "not allowed")), zmq::send_flags::sndmore);
  zap_->send(zmq::str_buffer(""), zmq::send_flags::sndmore);
  zap_->send(zmq::str_buffer(""), zmq::send_flags::none);
}

}  // namespace vb::bus
