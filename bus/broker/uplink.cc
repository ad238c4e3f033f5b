// The satellite's bus and its link to the hub (see uplink.h).
#include "bus/broker/uplink.h"

#include <vector>

#include "bus/broker/broker.h"
#include "bus/log.h"
#include "bus/wire.h"

namespace vb::bus {
namespace {

constexpr size_t kMaxFrames = 16;     // a bus message has 3
constexpr size_t kMaxTracked = 4096;  // topics, subscriptions, sources remembered

// A ZeroMQ subscription is a prefix: "audio.clean/kitchen" lets
// "audio.clean/kitchen2" through too. A subscription naming one device
// ("base/device") wants that topic exactly; one that names none ("base/",
// "audio.", "") wants every topic it prefixes. With more subscriptions than
// are tracked, everything the prefixes let through is wanted.
bool Wants(const std::set<std::string>& subs, std::string_view topic) {
  if (subs.size() >= kMaxTracked) return true;
  for (const auto& p : subs) {
    if (topic.substr(0, p.size()) != p) continue;
    const size_t slash = p.find('/');
    if (slash == std::string::npos || slash + 1 == p.size() || topic.size() == p.size()) return true;
  }
  return false;
}

// One whole multipart message, or false if none is waiting. Messages of
// more than kMaxFrames frames are read to the end and dropped.
bool ReadMessage(zmq::socket_t& s, std::vector<zmq::message_t>* frames) {
  frames->clear();
  zmq::message_t m;
  if (!s.recv(m, zmq::recv_flags::dontwait)) return false;
  bool more = m.more();
  frames->push_back(std::move(m));
  while (more) {
    zmq::message_t part;
    if (!s.recv(part, zmq::recv_flags::none)) break;
    more = part.more();
    if (frames->size() < kMaxFrames) frames->push_back(std::move(part));
    else frames->clear();
  }
  return true;
}

void Send(zmq::socket_t& s, std::vector<zmq::message_t>& frames, bool copy) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto flags =
        (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) | zmq::send_flags::dontwait;
    if (copy) {
      zmq::message_t c;
      c.copy(frames[i]);
      if (!s.send(c, flags)) return;
    } else if (!s.send(frames[i], flags)) {
      return;
    }
  }
}

// One subscription event from an XPUB: \1prefix (on) or \0prefix (off).
// False when none is waiting; skips anything else.
bool ReadSubscription(zmq::socket_t& s, bool* on, std::string* prefix) {
  zmq::message_t m;
  while (s.recv(m, zmq::recv_flags::dontwait)) {
    if (m.size() == 0 || (m.data<char>()[0] != 0 && m.data<char>()[0] != 1)) continue;
    *on = m.data<char>()[0] == 1;
    prefix->assign(m.data<char>() + 1, m.size() - 1);
    return true;
  }
  return false;
}

std::string SourceOf(const std::vector<zmq::message_t>& frames) {
  if (frames.size() < 2) return "";
  v1::Header h;
  if (!h.ParseFromArray(frames[1].data(), int(frames[1].size()))) return "";
  return h.source();
}

}  // namespace

SatelliteBridge::SatelliteBridge(zmq::context_t& ctx, Loop& loop, BusConfig hub, std::string local_endpoint)
    : ctx_(ctx), loop_(loop), hub_(std::move(hub)), local_endpoint_(std::move(local_endpoint)) {}

SatelliteBridge::~SatelliteBridge() {
  for (auto& p : planes_)
    for (auto* s : {&p.local_in, &p.local_out, &p.up_out, &p.up_in})
      if (*s) loop_.RemoveZmqSocket((*s)->handle());
}

void SatelliteBridge::SendSub(zmq::socket_t& s, bool on, const std::string& prefix) {
  std::string frame(1, on ? '\1' : '\0');
  frame += prefix;
  s.send(zmq::buffer(frame), zmq::send_flags::dontwait);
}

Status SatelliteBridge::Start() {
  Endpoints local, hub;
  if (Status st = DeriveEndpoints(local_endpoint_, &local); !st.ok()) return st;
  if (local_endpoint_.rfind("ipc://", 0) != 0 && local_endpoint_.rfind("inproc://", 0) != 0)
    return Status::Config("bus.satellite_endpoint: '" + local_endpoint_ + "' must be ipc:// (the satellite's own bus)");
  if (Status st = DeriveEndpoints(hub_.endpoint, &hub); !st.ok()) return st;
  if (Status st = CheckTransportSecurity(hub_); !st.ok()) return st;
  if (Status st = RefuseLiveBroker(local); !st.ok()) return st;
  const bool curve = hub_.curve.enabled() && hub_.endpoint.rfind("tcp://", 0) == 0;
  KeyPair kp;
  if (curve) {
    if (hub_.curve.server_public_key.empty() || hub_.curve.client_key_file.empty())
      return Status::Config(
          "bus.curve: a satellite joins the hub with server_public_key and its client key "
          "(devices.list.DEVICE.client_key_file or bus.curve.client_key_file)");
    if (Status st = LoadKeyPair(hub_.curve.client_key_file, &kp); !st.ok()) return st;
  } else if (RunsInsecure(hub_)) {
    VB_LOG(kWarn) << "joining " << hub_.endpoint << " without CURVE (bus.insecure: true)";
  }
  try {
    for (int p = 0; p < 2; ++p) {
      auto& ps = planes_[p];
      const int hwm = p == int(Plane::kStream) ? hub_.stream_hwm : hub_.control_hwm;
      ps.local_in = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xsub);
      ps.local_out = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xpub);
      ps.up_out = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xpub);
      ps.up_in = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xsub);
      for (auto* s : {ps.local_in.get(), ps.local_out.get(), ps.up_out.get(), ps.up_in.get()}) {
        s->set(zmq::sockopt::linger, 0);
        s->set(zmq::sockopt::sndhwm, hwm);
        s->set(zmq::sockopt::rcvhwm, hwm);
      }
      ps.local_in->set(zmq::sockopt::maxmsgsize, int64_t(MaxFrameBytes(hub_.limits)));
      ps.up_in->set(zmq::sockopt::maxmsgsize, int64_t(MaxFrameBytes(hub_.limits)));
      for (auto* s : {ps.up_out.get(), ps.up_in.get()}) {
        // A link that silently died (Wi-Fi gone) is noticed within seconds
        // and redialled; a dial into the void gives up and retries.
        s->set(zmq::sockopt::heartbeat_ivl, 1000);
        s->set(zmq::sockopt::heartbeat_timeout, 3000);
        s->set(zmq::sockopt::heartbeat_ttl, 6000);
        s->set(zmq::sockopt::connect_timeout, 2000);
        s->set(zmq::sockopt::reconnect_ivl, 250);
        s->set(zmq::sockopt::reconnect_ivl_max, 2000);
        if (curve) {
          s->set(zmq::sockopt::curve_serverkey, hub_.curve.server_public_key);
          s->set(zmq::sockopt::curve_publickey, kp.public_key);
          s->set(zmq::sockopt::curve_secretkey, kp.secret_key);
        }
      }
      ps.local_in->bind(local[p].in);
      ps.local_out->bind(local[p].out);
      ps.up_out->connect(hub[p].in);
      ps.up_in->connect(hub[p].out);
      loop_.AddZmqSocket(ps.local_in->handle(), [this, p] { OnLocalMessage(p); });
      loop_.AddZmqSocket(ps.up_in->handle(), [this, p] { OnHubMessage(p); });
      loop_.AddZmqSocket(ps.local_out->handle(), [this, p] { OnSubscription(p, false); });
      loop_.AddZmqSocket(ps.up_out->handle(), [this, p] { OnSubscription(p, true); });
    }
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("satellite bridge: " + local_endpoint_ + " ⇄ " + hub_.endpoint + ": " + e.what());
  }
  return Status::Ok();
}

void SatelliteBridge::OnLocalMessage(int p) {
  auto& ps = planes_[p];
  std::vector<zmq::message_t> frames;
  for (int budget = 0; budget < 1024 && ReadMessage(*ps.local_in, &frames); ++budget) {
    if (frames.empty()) continue;
    const std::string topic = frames[0].to_string();
    if (!ps.local_topics.count(topic) && ps.local_topics.size() < kMaxTracked) {
      ps.local_topics.insert(topic);
      // Published here: the local subscribers hear it here; stop asking the hub.
      if (ps.passed_up.erase(topic)) {
        SendSub(*ps.up_in, false, topic);
        ++counters_.kept_local;
      }
    }
    if (std::string src = SourceOf(frames); !src.empty() && local_sources_.size() < kMaxTracked)
      local_sources_.insert(src);
    Send(*ps.local_out, frames, true);
    // Up only for an exact device match: another device whose name starts
    // with ours (kitchen2) has its own satellite and its own subscriptions.
    if (Wants(ps.hub_subs, topic)) {
      Send(*ps.up_out, frames, false);
      ++counters_.up[p];
    } else {
      ++counters_.other_device;
    }
  }
}

void SatelliteBridge::OnHubMessage(int p) {
  auto& ps = planes_[p];
  std::vector<zmq::message_t> frames;
  for (int budget = 0; budget < 1024 && ReadMessage(*ps.up_in, &frames); ++budget) {
    if (frames.empty()) continue;
    if (local_sources_.count(SourceOf(frames))) {
      ++counters_.echoes_dropped;
      continue;
    }
    if (!Wants(ps.local_subs, frames[0].to_string_view())) {  // another device's, come down by prefix
      ++counters_.other_device;
      continue;
    }
    Send(*ps.local_out, frames, false);
    ++counters_.down[p];
  }
}

void SatelliteBridge::OnSubscription(int p, bool from_hub) {
  auto& ps = planes_[p];
  std::set<std::string>& subs = from_hub ? ps.hub_subs : ps.local_subs;
  bool on = false;
  std::string prefix;
  for (int budget = 0; budget < 256 && ReadSubscription(from_hub ? *ps.up_out : *ps.local_out, &on, &prefix);
       ++budget) {
    const bool before = ps.local_subs.count(prefix) || ps.hub_subs.count(prefix);
    if (on && subs.size() >= kMaxTracked) continue;
    if (on) subs.insert(prefix);
    else subs.erase(prefix);
    // A local subscription is passed up unless the topic is published here.
    if (!from_hub && on && ps.local_topics.count(prefix)) ++counters_.kept_local;
    else if (!from_hub && on && ps.passed_up.insert(prefix).second) SendSub(*ps.up_in, true, prefix);
    else if (!from_hub && !on && ps.passed_up.erase(prefix)) SendSub(*ps.up_in, false, prefix);
    // Local publishers send what either side wants.
    const bool now = ps.local_subs.count(prefix) || ps.hub_subs.count(prefix);
    if (now != before) SendSub(*ps.local_in, now, prefix);
  }
}

}  // namespace vb::bus
