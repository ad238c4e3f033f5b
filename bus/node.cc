// Bus connection: framing, stamping, checking and dispatch (see node.h).
#include "bus/node.h"

#include <cerrno>
#include <chrono>

namespace vb::bus {

Node::Node(zmq::context_t& ctx, Loop& loop, std::string source, std::string device, BusConfig config)
    : ctx_(ctx), loop_(loop), source_(std::move(source)), device_(std::move(device)), config_(std::move(config)) {
  // Every bus process makes a Node: protobuf's own log lines (one per
  // invalid UTF-8 string a hostile header carries) go through our rate limit.
  InstallProtobufLogHandler();
}

Node::~Node() {
  for (int p = 0; p < 2; ++p) {
    if (plane_batch_timer_[p]) loop_.CancelTimer(plane_batch_timer_[p]);
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
  if (Status st = CheckTransportSecurity(config_); !st.ok()) return st;
  if (RunsInsecure(config_))
    VB_LOG(kWarn) << "bus " << config_.endpoint
                  << " runs without CURVE (bus.insecure: true): anyone who reaches it can listen and inject";
  try {
    for (int p = 0; p < 2; ++p) {
      int hwm = p == int(Plane::kStream) ? config_.stream_hwm : config_.control_hwm;
      pub_[p] = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::xpub);
      pub_[p]->set(zmq::sockopt::sndhwm, hwm);
      pub_[p]->set(zmq::sockopt::linger, 200);
      if (Status st = ApplyCurve(*pub_[p]); !st.ok()) return st;
      pub_[p]->connect(endpoints_[p].in);
      // Node marks every send (Loop::Used): the loop asks these sockets
      // only when they may hold something.
      loop_.AddZmqSocket(
          pub_[p]->handle(), [this, p] { OnSubscriptions(Plane(p)); }, true);
      sub_[p] = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::sub);
      sub_[p]->set(zmq::sockopt::rcvhwm, hwm);
      sub_[p]->set(zmq::sockopt::linger, 0);
      if (Status st = ApplyCurve(*sub_[p]); !st.ok()) return st;
      sub_[p]->connect(endpoints_[p].out);
      if (batch_.count() == 0)
        loop_.AddZmqSocket(
            sub_[p]->handle(), [this, p] { OnReadable(Plane(p)); }, true);
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
  for (int p = 0; p < 2; ++p) {
    std::vector<std::string> prefixes;  // SyncPrefix may erase (an unsubscribed one)
    for (const auto& [prefix, st] : prefixes_[p]) prefixes.push_back(prefix);
    for (const auto& prefix : prefixes) SyncPrefix(Plane(p), prefix);
    for (const auto& [prefix, fn] : raw_[p])
      if (!LocalTopic(Plane(p), prefix)) sub_[p]->set(zmq::sockopt::subscribe, prefix);
  }
  OpenLocal();
  return Status::Ok();
}

bool Node::LocalTopic(Plane plane, std::string_view topic) {
  return plane == Plane::kStream && topic.rfind(topics::kAudioBackfill.base, 0) != 0 &&
         topic.find('/') != std::string_view::npos && topic.back() != '/';
}

void Node::OpenLocal() {
  if (!config_.local_stream) return;
  std::string dir = LocalPlane::DirFor(config_.endpoint);
  if (dir.empty()) return;
  LocalPlane::Hooks hooks;
  hooks.deliver = [this](std::string_view topic, std::string_view header, std::string_view payload) {
    const std::string_view frames[3] = {topic, header, payload};
    HandleMessage(Plane::kStream, frames, 3, 3, false);
  };
  hooks.coverage = [this](const std::string& topic, bool covered) {
    auto it = prefixes_[int(Plane::kStream)].find(topic);
    if (it == prefixes_[int(Plane::kStream)].end()) return;
    it->second.covered = covered;
    SyncPrefix(Plane::kStream, topic);
  };
  hooks.wanted = [this](const std::string& topic) {
    if (on_subscribed_) on_subscribed_(topic);
  };
  hooks.malformed = [this](std::string_view why) { Reject(Malformed::kFrameCount, "(local plane)", std::string(why)); };
  local_ = std::make_unique<LocalPlane>(loop_, std::move(dir), source_, config_.limits.max_topic, std::move(hooks));
  if (Status st = local_->Open(); !st.ok()) {
    VB_LOG(kWarn) << "local stream plane off: " << st.message() << " (audio goes through the broker)";
    local_.reset();
    return;
  }
  if (batch_.count() > 0) local_->SetPolled(false);  // read at the batch timer
  for (const auto& t : topics_)
    if (LocalTopic(t->plane, t->topic)) local_->Advertise(t->topic);
  for (const auto& [prefix, st] : prefixes_[int(Plane::kStream)])
    if (LocalTopic(Plane::kStream, prefix)) local_->Want(prefix);
  for (const auto& topic : lazy_) local_->SetLazy(topic, true);
}

void Node::SetLazy(std::string_view base, bool lazy, const std::string& device) {
  const std::string topic = FullTopic(base, device);
  if (lazy) lazy_.insert(topic);
  else lazy_.erase(topic);
  if (local_) local_->SetLazy(topic, lazy);
}

void Node::DrainLazy() {
  if (local_) local_->DrainLazy();
}

void Node::SyncPrefix(Plane plane, const std::string& prefix) {
  auto it = prefixes_[int(plane)].find(prefix);
  if (it == prefixes_[int(plane)].end() || !sub_[int(plane)]) return;
  PrefixState& st = it->second;
  const bool want = st.subs > 0 && !st.covered;
  if (want != st.on) {
    if (want) sub_[int(plane)]->set(zmq::sockopt::subscribe, prefix);
    else sub_[int(plane)]->set(zmq::sockopt::unsubscribe, prefix);
    st.on = want;
    loop_.Used(sub_[int(plane)]->handle());
  }
  if (st.subs == 0 && !st.on) prefixes_[int(plane)].erase(it);
}

void Node::BatchPlane(Plane plane, std::chrono::milliseconds interval) {
  const int p = int(plane);
  if (!sub_[p] || batch_.count() > 0 || plane_batch_timer_[p] || interval.count() <= 0) return;
  loop_.RemoveZmqSocket(sub_[p]->handle());
  if (plane == Plane::kStream && local_) local_->SetPolled(false);
  plane_batch_timer_[p] = loop_.AddTimer(interval, [this, plane] { OnReadable(plane); });
}

std::string Node::FullTopic(std::string_view base, const std::string& device) const {
  return std::string(base) + "/" + (device.empty() ? device_ : device);
}

Node::Advertised& Node::TopicSlot(const std::string& topic, Plane plane) {
  for (auto& t : topics_)
    if (t->topic == topic) return *t;
  topics_.push_back(std::make_unique<Advertised>(Advertised{topic, 0, plane}));
  if (local_ && LocalTopic(plane, topic)) local_->Advertise(topic);
  return *topics_.back();
}

Plane Node::AdvertisedPlane(std::string_view topic) const {
  for (const auto& t : topics_)
    if (t->topic == topic) return t->plane;
  return Plane::kControl;
}

void Node::AddSubscription(Plane plane, std::string_view base, const std::string& device, const std::string& type,
                           Dispatch fn) {
  auto s = std::make_shared<Sub>(Sub{plane, std::string(base), device.empty() ? device_ : device, type, std::move(fn)});
  std::string prefix = s->base + "/" + (s->device == "*" ? "" : s->device);
  subs_.push_back(std::move(s));
  if (++prefixes_[int(plane)][prefix].subs == 1 && local_ && LocalTopic(plane, prefix)) local_->Want(prefix);
  SyncPrefix(plane, prefix);
}

void Node::RemoveSubscription(Plane plane, std::string_view base, const std::string& device) {
  const std::string dev = device.empty() ? device_ : device;
  const size_t before = subs_.size();
  std::erase_if(subs_, [&](const std::shared_ptr<Sub>& s) {
    const bool match = s->plane == plane && s->base == base && s->device == dev;
    if (match) s->removed = true;
    return match;
  });
  const std::string prefix = std::string(base) + "/" + (dev == "*" ? "" : dev);
  auto it = prefixes_[int(plane)].find(prefix);
  if (it == prefixes_[int(plane)].end() || subs_.size() == before) return;
  it->second.subs -= int(before - subs_.size());
  if (it->second.subs <= 0) {
    it->second.subs = 0;
    it->second.covered = false;
    if (local_ && LocalTopic(plane, prefix)) local_->Unwant(prefix);
  }
  SyncPrefix(plane, prefix);
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

bool Node::HasSubscriber(Plane plane, std::string_view topic) const {
  return (plane == Plane::kStream && local_ && local_->HasReader(topic)) || HasBrokerSubscriber(plane, topic);
}

bool Node::HasBrokerSubscriber(Plane plane, std::string_view topic) const {
  for (const auto& prefix : subscribed_[int(plane)])
    if (topic.substr(0, prefix.size()) == prefix) return true;
  return false;
}

void Node::SubscribeRaw(Plane plane, const std::string& prefix, std::function<void(const RawMessage&)> fn) {
  raw_[int(plane)].emplace_back(prefix, std::move(fn));
  if (LocalTopic(plane, prefix)) {
    // One stream topic of one device: like a typed subscription, straight
    // from a local publisher when there is one.
    if (++prefixes_[int(plane)][prefix].subs == 1 && local_) local_->Want(prefix);
    SyncPrefix(plane, prefix);
    return;
  }
  if (sub_[int(plane)]) {
    sub_[int(plane)]->set(zmq::sockopt::subscribe, prefix);
    loop_.Used(sub_[int(plane)]->handle());
  }
}

bool Node::SendRaw(Plane plane, const std::vector<std::string>& frames) {
  auto& s = *pub_[int(plane)];
  for (size_t i = 0; i < frames.size(); ++i) {
    auto flags =
        i + 1 < frames.size() ? zmq::send_flags::sndmore | zmq::send_flags::dontwait : zmq::send_flags::dontwait;
    const bool sent = bool(s.send(zmq::buffer(frames[i]), flags));
    loop_.Used(s.handle());
    if (!sent) return false;
  }
  return true;
}

bool Node::PublishEncoded(Plane plane, const std::string& topic, uint64_t* seq, const google::protobuf::Message& msg,
                          const PublishOptions& opts) {
  if (!active_) {
    ++counters_.dropped_inactive;
    if (!warned_inactive_) {
      warned_inactive_ = true;
      VB_LOG(kWarn) << "publish on " << topic << " while inactive: dropped (counted; warned once)";
    }
    return false;
  }
  // out_header_ only: the handler that may be publishing right now reads
  // in_header_, which this must never touch.
  v1::Header& h = out_header_;
  h.Clear();
  h.set_type(msg.GetDescriptor()->full_name());
  h.set_seq(++*seq);  // counted even if the socket drops it: receivers see the gap
  h.set_mono_ns(MonoNs());
  h.set_origin_ns(opts.origin_ns);
  h.set_source(source_);
  if (topic != last_device_topic_) {
    std::string_view base, dev;
    last_device_topic_ = topic;
    last_device_ = SplitTopic(topic, &base, &dev) ? std::string(dev) : std::string();
  }
  h.set_device(last_device_);
  if (!opts.turn_id.empty()) h.set_turn_id(opts.turn_id.data(), opts.turn_id.size());
  h.SerializeToString(&header_buf_);
  msg.SerializeToString(&payload_buf_);
  // Same-host readers first (local_plane.h); ZeroMQ sends only if some
  // subscriber there wants it.
  if (local_ && plane == Plane::kStream) local_->Send(topic, h.seq(), header_buf_, payload_buf_);
  auto& s = *pub_[int(plane)];
  // PUB never blocks: at the high-water mark ZeroMQ drops, and the seq gap
  // tells the receivers.
  s.send(zmq::buffer(topic), zmq::send_flags::sndmore);
  s.send(zmq::buffer(header_buf_), zmq::send_flags::sndmore);
  s.send(zmq::buffer(payload_buf_), zmq::send_flags::none);
  loop_.Used(s.handle());  // a send may take the socket's fd signal
  ++counters_.msgs_out;
  return true;
}

void Node::OnReadable(Plane plane, int budget) {
  // A batched stream plane reads its local publishers here too.
  if (plane == Plane::kStream && local_ && !local_->polled()) local_->Drain();
  auto& s = *sub_[int(plane)];
  // Drain what is there now, bounded so one busy socket cannot starve the
  // loop. Every receive is non-blocking: a multipart message arrives whole,
  // so after its first frame the others are already queued; if one is not
  // (it cannot happen with libzmq, but a blocking wait here would freeze
  // the process), what we have is judged as it is.
  // A signal during a receive (EINTR; fuzz_bus_frames met one) is no error:
  // receive again, instead of throwing out of the loop and ending the process.
  auto recv = [&s](zmq::message_t& m) {
    for (;;) {
      try {
        return bool(s.recv(m, zmq::recv_flags::dontwait));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
    }
  };
  for (int n = 0; n < budget; ++n) {
    zmq::message_t first;
    if (!recv(first)) return;
    bool more = first.more();
    frames_.clear();
    frames_.push_back(std::move(first));
    size_t count = 1;
    while (more) {
      zmq::message_t next;
      if (!recv(next)) break;
      more = next.more();
      ++count;
      // Only the first three frames matter (a well-formed message has three);
      // the rest of an absurd one is counted and released as it comes.
      if (frames_.size() < 3) frames_.push_back(std::move(next));
    }
    std::string_view views[3];
    for (size_t i = 0; i < frames_.size(); ++i)
      views[i] = std::string_view(static_cast<const char*>(frames_[i].data()), frames_[i].size());
    HandleMessage(plane, views, frames_.size(), count, true);
    // Release the frames now, not at the next message: a 64 MiB payload
    // would otherwise stay resident until this plane hears something else.
    frames_.clear();
  }
}

void Node::Reject(Malformed why, std::string_view topic, const std::string& detail) {
  ++counters_.malformed.by_reason[size_t(why)];
  uint64_t suppressed = 0;
  if (reject_log_.Allow(MonoNs(), &suppressed))
    VB_LOG(kWarn) << "dropped malformed message (" << MalformedName(why) << ") on '" << std::string(topic.substr(0, 64))
                  << "': " << detail << (suppressed ? " (" + std::to_string(suppressed) + " more not logged)" : "");
}

void Node::HandleMessage(Plane plane, const std::string_view* frames, size_t nframes, size_t count, bool via_zmq) {
  // The outermost delivery parses into the reused in_header_; a delivery
  // nested inside a handler (one that runs the loop) gets its own header,
  // so the outer handler's header does not change under it either.
  ++dispatch_depth_;
  if (dispatch_depth_ == 1) {
    Deliver(plane, frames, nframes, count, via_zmq, in_header_);
  } else {
    v1::Header nested;
    Deliver(plane, frames, nframes, count, via_zmq, nested);
  }
  --dispatch_depth_;
}

void Node::Deliver(Plane plane, const std::string_view* frames, size_t nframes, size_t count, bool via_zmq,
                   v1::Header& header) {
  auto frame = [&](size_t i) { return i < nframes ? frames[i] : std::string_view(); };
  std::string_view topic = frame(0);
  bool header_ok = false;
  header.Clear();
  if (nframes >= 2 && frames[1].size() <= config_.limits.max_header)
    header_ok = header.ParseFromArray(frames[1].data(), int(frames[1].size()));
  // Around a switch to the local plane a frame may come both ways: once only.
  if (local_ && header_ok && plane == Plane::kStream &&
      (via_zmq ? local_->Duplicate(topic, header.source(), header.seq())
               : local_->AlreadyHeard(topic, header.source(), header.seq())))
    return;
  // Raw listeners see everything that matches their prefix, malformed included.
  for (const auto& [prefix, fn] : raw_[int(plane)]) {
    if (topic.substr(0, prefix.size()) != prefix) continue;
    RawMessage raw{topic, header_ok ? &header : nullptr, frame(1), frame(2), count};
    try {
      fn(raw);
    } catch (const std::exception& e) {
      ++counters_.handler_errors;
      VB_LOG(kError) << "raw handler for " << std::string(topic.substr(0, 64)) << " threw: " << e.what();
    }
  }
  if (subs_.empty()) return;
  ++counters_.msgs_in;
  if (count != 3) return Reject(Malformed::kFrameCount, topic, std::to_string(count) + " frames");
  std::string_view base, device;
  if (topic.size() > config_.limits.max_topic || !SplitTopic(topic, &base, &device))
    return Reject(Malformed::kTopic, topic, "not <base>/<device>");
  if (!header_ok)
    return Reject(Malformed::kHeader, topic,
                  "header frame of " + std::to_string(frames[1].size()) + " bytes does not parse");
  if (header.source().size() > kMaxSourceBytes)
    return Reject(Malformed::kHeader, topic, "source name of " + std::to_string(header.source().size()) + " bytes");
  if (frames[2].size() > config_.limits.max_payload)
    return Reject(Malformed::kOversized, topic, std::to_string(frames[2].size()) + " bytes");
  std::string_view payload = frame(2);
  bool counted = false;
  // The matching subscriptions, held: handlers may change subs_ meanwhile.
  // The list's storage is reused (this runs for every audio frame); a
  // delivery nested in a handler would find it taken and make its own.
  std::vector<std::shared_ptr<Sub>> matched = std::move(matched_scratch_);
  matched.clear();
  struct GiveBack {
    std::vector<std::shared_ptr<Sub>>& list;
    std::vector<std::shared_ptr<Sub>>& scratch;
    ~GiveBack() {
      list.clear();
      scratch = std::move(list);
    }
  } give_back{matched, matched_scratch_};
  for (const auto& s : subs_)
    if (s->plane == plane && s->base == base && (s->device == "*" || s->device == device)) matched.push_back(s);
  for (const auto& sp : matched) {
    const Sub& s = *sp;
    if (s.removed) continue;  // unsubscribed by an earlier handler of this message
    if (header.type() != s.type)
      return Reject(Malformed::kTypeMismatch, topic,
                    "type '" + header.type().substr(0, 64) + "', expected '" + s.type + "'");
    if (!counted) {
      seq_.Observe(header.source(), topic, header.seq());
      counted = true;
    }
    auto t0 = Clock::now();
    bool parsed = false;
    try {
      parsed = s.dispatch(topic, device, header, payload);
    } catch (const std::exception& e) {
      ++counters_.handler_errors;
      VB_LOG(kError) << "handler for " << std::string(topic) << " threw: " << e.what();
      parsed = true;
    }
    handler_us_.Add(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!parsed) return Reject(Malformed::kPayload, topic, "payload does not parse as " + s.type);
  }
  // No subscription matched: a prefix overlap with another device; not ours,
  // not an error.
}

}  // namespace vb::bus
