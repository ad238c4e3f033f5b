// Bus connection: framing, stamping, checking and dispatch (see node.h).
#include "bus/node.h"

#include <chrono>

namespace vb::bus {

Node::Node(zmq::context_t& ctx, Loop& loop, std::string source, std::string device, BusConfig config)
    : ctx_(ctx), loop_(loop), source_(std::move(source)), device_(std::move(device)),
      config_(std::move(config)) {}

Node::~Node() {
  for (int p = 0; p < 2; ++p) {
    if (sub_[p]) loop_.RemoveZmqSocket(sub_[p]->handle());
    if (pub_[p]) loop_.RemoveZmqSocket(pub_[p]->handle());
  }
}

Status Node::ApplyCurve(zmq::socket_t& s) {
  if (!config_.curve.enabled() || config_.endpoint.rfind("tcp://", 0) != 0) return Status::Ok();
  if (config_.curve.server_public_key.empty() || config_.curve.client_key_file.empty())
    return Status::Config("bus.curve: tcp:// with CURVE needs server_public_key and client_key_file");
  KeyPair kp;
  if (Status st = LoadKeyPair(config_.curve.client_key_file, &kp); !st.ok()) return st;
  s.set(zmq::sockopt::curve_serverkey, config_.curve.server_public_key);
  s.set(zmq::sockopt::curve_publickey, kp.public_key);
  s.set(zmq::sockopt::curve_secretkey, kp.secret_key);
  return Status::Ok();
}

Status Node::Connect() {
  if (Status st = DeriveEndpoints(config_.endpoint, &endpoints_); !st.ok()) return st;
  try {
    for (int p = 0; p < 2; ++p) {
      int hwm = p == int(Plane::kStream) ? config_.stream_hwm : config_.control_hwm;
      pub_[p] = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xpub);
      pub_[p]->set(zmq::sockopt::sndhwm, hwm);
      pub_[p]->set(zmq::sockopt::linger, 200);
      if (Status st = ApplyCurve(*pub_[p]); !st.ok()) return st;
      pub_[p]->connect(endpoints_[p].in);
      loop_.AddZmqSocket(pub_[p]->handle(), [this, p] { OnSubscriptions(Plane(p)); });
      sub_[p] = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::sub);
      sub_[p]->set(zmq::sockopt::rcvhwm, hwm);
      sub_[p]->set(zmq::sockopt::linger, 0);
      if (Status st = ApplyCurve(*sub_[p]); !st.ok()) return st;
      sub_[p]->connect(endpoints_[p].out);
      if (batch_.count() == 0) loop_.AddZmqSocket(sub_[p]->handle(), [this, p] { OnReadable(Plane(p)); });
    }
    if (batch_.count() > 0)
      loop_.AddTimer(batch_, [this] {
        OnReadable(Plane::kStream, 1 << 20);
        OnReadable(Plane::kControl, 1 << 20);
      });
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("bus: cannot connect to ") + config_.endpoint + ": " + e.what());
  }
  // Subscriptions made before Connect().
  for (const auto& s : subs_) {
    std::string prefix = s.base + "/" + (s.device == "*" ? "" : s.device);
    sub_[int(s.plane)]->set(zmq::sockopt::subscribe, prefix);
  }
  for (int p = 0; p < 2; ++p)
    for (const auto& [prefix, fn] : raw_[p]) sub_[p]->set(zmq::sockopt::subscribe, prefix);
  return Status::Ok();
}

std::string Node::FullTopic(std::string_view base, const std::string& device) const {
  return std::string(base) + "/" + (device.empty() ? device_ : device);
}

std::pair<std::string, uint64_t>& Node::TopicSlot(const std::string& topic) {
  for (auto& t : topics_)
    if (t->first == topic) return *t;
  topics_.push_back(std::make_unique<std::pair<std::string, uint64_t>>(topic, 0));
  return *topics_.back();
}

void Node::AddSubscription(Plane plane, std::string_view base, const std::string& device,
                           const std::string& type, Dispatch fn) {
  Sub s{plane, std::string(base), device.empty() ? device_ : device, type, std::move(fn)};
  if (sub_[int(plane)]) {
    std::string prefix = s.base + "/" + (s.device == "*" ? "" : s.device);
    sub_[int(plane)]->set(zmq::sockopt::subscribe, prefix);
  }
  subs_.push_back(std::move(s));
}

void Node::OnSubscriptions(Plane plane) {
  auto& list = subscribed_[int(plane)];
  for (int budget = 0; budget < 256; ++budget) {
    zmq::message_t m;
    if (!pub_[int(plane)]->recv(m, zmq::recv_flags::dontwait)) return;
    if (m.size() == 0) continue;
    const char* d = static_cast<const char*>(m.data());
    std::string prefix(d + 1, m.size() - 1);
    if (d[0] == 1) {
      list.push_back(prefix);
      if (on_subscribed_) on_subscribed_(prefix);
    } else if (d[0] == 0) {
      for (auto it = list.begin(); it != list.end(); ++it)
        if (*it == prefix) {
          list.erase(it);
          break;
        }
    }
  }
}

bool Node::HasSubscriber(std::string_view topic) const {
  for (const auto& list : subscribed_)
    for (const auto& prefix : list)
      if (topic.substr(0, prefix.size()) == prefix) return true;
  return false;
}

void Node::SubscribeRaw(Plane plane, const std::string& prefix, std::function<void(const RawMessage&)> fn) {
  if (sub_[int(plane)]) sub_[int(plane)]->set(zmq::sockopt::subscribe, prefix);
  raw_[int(plane)].emplace_back(prefix, std::move(fn));
}

bool Node::SendRaw(Plane plane, const std::vector<std::string>& frames) {
  auto& s = *pub_[int(plane)];
  for (size_t i = 0; i < frames.size(); ++i) {
    auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                       : zmq::send_flags::dontwait;
    if (!s.send(zmq::buffer(frames[i]), flags)) return false;
  }
  return true;
}

bool Node::PublishEncoded(Plane plane, const std::string& topic, uint64_t* seq,
                          const google::protobuf::Message& msg, const PublishOptions& opts) {
  if (!active_) {
    ++counters_.dropped_inactive;
    if (!warned_inactive_) {
      warned_inactive_ = true;
      VB_LOG(kWarn) << "publish on " << topic << " while inactive: dropped (counted; warned once)";
    }
    return false;
  }
  header_.Clear();
  header_.set_type(msg.GetDescriptor()->full_name());
  header_.set_seq(++*seq);  // counted even if the socket drops it: receivers see the gap
  header_.set_mono_ns(MonoNs());
  header_.set_origin_ns(opts.origin_ns);
  header_.set_source(source_);
  if (topic != last_device_topic_) {
    std::string_view base, dev;
    last_device_topic_ = topic;
    last_device_ = SplitTopic(topic, &base, &dev) ? std::string(dev) : std::string();
  }
  header_.set_device(last_device_);
  if (!opts.turn_id.empty()) header_.set_turn_id(std::string(opts.turn_id));
  header_.SerializeToString(&header_buf_);
  msg.SerializeToString(&payload_buf_);
  auto& s = *pub_[int(plane)];
  // PUB never blocks: at the high-water mark ZeroMQ drops, and the seq gap
  // tells the receivers.
  s.send(zmq::buffer(topic), zmq::send_flags::sndmore);
  s.send(zmq::buffer(header_buf_), zmq::send_flags::sndmore);
  s.send(zmq::buffer(payload_buf_), zmq::send_flags::none);
  ++counters_.msgs_out;
  return true;
}

void Node::OnReadable(Plane plane, int budget) {
  auto& s = *sub_[int(plane)];
  // Drain what is there now, bounded so one busy socket cannot starve the loop.
  for (int n = 0; n < budget; ++n) {
    frames_.clear();
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) return;
    frames_.push_back(std::move(m));
    while (frames_.back().more() && frames_.size() < 16) {
      zmq::message_t next;
      if (!s.recv(next, zmq::recv_flags::none)) break;
      frames_.push_back(std::move(next));
    }
    while (frames_.back().more()) {  // absurd frame count: drain and drop
      zmq::message_t rest;
      if (!s.recv(rest, zmq::recv_flags::none)) break;
    }
    HandleMessage(plane, frames_);
  }
}

void Node::Reject(Malformed why, std::string_view topic, const std::string& detail) {
  ++counters_.malformed.by_reason[size_t(why)];
  uint64_t suppressed = 0;
  if (reject_log_.Allow(MonoNs(), &suppressed))
    VB_LOG(kWarn) << "dropped malformed message (" << MalformedName(why) << ") on '"
                  << std::string(topic.substr(0, 64)) << "': " << detail
                  << (suppressed ? " (" + std::to_string(suppressed) + " more not logged)" : "");
}

void Node::HandleMessage(Plane plane, std::vector<zmq::message_t>& frames) {
  std::string_view topic(static_cast<const char*>(frames[0].data()), frames[0].size());
  bool header_ok = false;
  if (frames.size() >= 2 && frames[1].size() <= config_.limits.max_header) {
    header_.Clear();
    header_ok = header_.ParseFromArray(frames[1].data(), int(frames[1].size()));
  }
  // Raw listeners see everything that matches their prefix, malformed included.
  for (const auto& [prefix, fn] : raw_[int(plane)]) {
    if (topic.substr(0, prefix.size()) != prefix) continue;
    RawMessage raw{topic, header_ok ? &header_ : nullptr,
                   frames.size() >= 2 ? std::string_view(static_cast<const char*>(frames[1].data()), frames[1].size()) : std::string_view(),
                   frames.size() >= 3 ? std::string_view(static_cast<const char*>(frames[2].data()), frames[2].size()) : std::string_view(),
                   frames.size()};
    fn(raw);
  }
  if (subs_.empty()) return;
  ++counters_.msgs_in;
  if (frames.size() != 3) return Reject(Malformed::kFrameCount, topic, std::to_string(frames.size()) + " frames");
  std::string_view base, device;
  if (topic.size() > config_.limits.max_topic || !SplitTopic(topic, &base, &device))
    return Reject(Malformed::kTopic, topic, "not <base>/<device>");
  if (!header_ok) return Reject(Malformed::kHeader, topic, "header frame of " + std::to_string(frames[1].size()) + " bytes does not parse");
  if (frames[2].size() > config_.limits.max_payload)
    return Reject(Malformed::kOversized, topic, std::to_string(frames[2].size()) + " bytes");
  std::string_view payload(static_cast<const char*>(frames[2].data()), frames[2].size());
  bool matched = false, counted = false;
  for (auto& s : subs_) {
    if (s.plane != plane || s.base != base || (s.device != "*" && s.device != device)) continue;
    matched = true;
    if (header_.type() != s.type)
      return Reject(Malformed::kTypeMismatch, topic, "type '" + header_.type().substr(0, 64) + "', expected '" + s.type + "'");
    if (!counted) {
      seq_.Observe(header_.source(), topic, header_.seq());
      counted = true;
    }
    auto t0 = Clock::now();
    bool parsed = false;
    try {
      parsed = s.dispatch(topic, device, header_, payload);
    } catch (const std::exception& e) {
      ++counters_.handler_errors;
      VB_LOG(kError) << "handler for " << std::string(topic) << " threw: " << e.what();
      parsed = true;
    }
    handler_us_.Add(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!parsed) return Reject(Malformed::kPayload, topic, "payload does not parse as " + s.type);
  }
  (void)matched;  // prefix overlap with another device: not ours, not an error
}

}  // namespace vb::bus
