// Node: one process's connection to the bus. It owns a PUB and a SUB socket
// per plane (stream, control), stamps every outgoing message with a Header
// (type, per-topic seq, publish and origin times, source, device, turn), and
// checks every incoming one: frame count, sizes, header, type against topic,
// payload — malformed frames are counted per reason, logged at a limited
// rate and dropped. Sequence gaps are counted per publisher and topic.
//
// Hostile input never blocks or grows it: every receive is non-blocking
// (ZeroMQ delivers a multipart message whole, so once its first frame is
// here the rest is too), frames past the third are counted and discarded as
// they arrive, and per-publisher state is bounded (SeqTracker).
//
// Headers: the incoming header a handler sees (Received::header) and the
// header stamped on outgoing messages are different objects, so a handler
// may publish and still read its incoming header (and pass references into
// it) for the whole call. Both Received::header and Received::msg are valid
// only during the handler call: copy what must outlive it.
//
// Typed API: Advertise(topic) returns a Publisher<M> whose Publish() takes
// exactly the topic's payload type; Subscribe(topic, fn) hands fn the parsed
// M. Raw access (any topic, undecoded) exists for the sniffer.
//
// Not thread-safe: use from the thread that runs its Loop.
#pragma once

#include <zmq.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus_config.h"
#include "bus/local_plane.h"
#include "bus/log.h"
#include "bus/loop.h"
#include "bus/seq_tracker.h"
#include "bus/stats.h"
#include "bus/topics.h"
#include "bus/wire.h"
#include "vb/v1/header.pb.h"

namespace vb::bus {

struct PublishOptions {
  int64_t origin_ns = 0;     // capture time of the audio this derives from
  std::string_view turn_id;  // dialog turn (chat id)
};

template <class M>
struct Received {
  std::string_view topic;
  std::string_view device;
  const v1::Header& header;
  const M& msg;
};

struct RawMessage {
  std::string_view topic;
  const v1::Header* header;  // null if the header frame did not parse
  std::string_view header_bytes;
  std::string_view payload;
  size_t frames;
};

struct NodeCounters {
  uint64_t msgs_in = 0;
  uint64_t msgs_out = 0;
  uint64_t dropped_inactive = 0;
  uint64_t handler_errors = 0;
  MalformedCounts malformed;
};

class Node;

template <class M>
class Publisher {
 public:
  Publisher() = default;
  // Publishes msg on the topic; false if it was not sent (inactive node).
  bool Publish(const M& msg, const PublishOptions& opts = {});
  bool valid() const { return node_ != nullptr; }
  const std::string& topic() const { return *topic_; }
  Plane plane() const { return plane_; }

 private:
  friend class Node;
  Publisher(Node* node, Plane plane, const std::string* topic, uint64_t* seq)
      : node_(node), plane_(plane), topic_(topic), seq_(seq) {}
  Node* node_ = nullptr;
  Plane plane_ = Plane::kControl;
  const std::string* topic_ = nullptr;
  uint64_t* seq_ = nullptr;
};

class Node {
 public:
  // `source` names this actor instance; `device` is its default device.
  Node(zmq::context_t& ctx, Loop& loop, std::string source, std::string device, BusConfig config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Connects the four sockets and registers them with the loop.
  Status Connect();
  // Before Connect(): instead of waking for every message, drain the
  // subscriptions every `interval` (monitoring tools at high rates: far fewer
  // wake-ups; receive times are then only good to `interval`).
  void SetBatchInterval(std::chrono::milliseconds interval) { batch_ = interval; }
  // After Connect(), one plane only: its subscriptions are read every
  // `interval` (and at Drain()) instead of on every message. For a
  // subscriber that only needs to know a stream flows (vb-control's hearing
  // watch reads audio.clean): 50 wake-ups a second become 1000/interval.
  // Handlers then run up to `interval` after the message came; its
  // Header.mono_ns still says when it was published.
  void BatchPlane(Plane plane, std::chrono::milliseconds interval);
  // Reads what the plane's subscriptions hold now (a batched plane, before a
  // decision that depends on it).
  void Drain(Plane plane) {
    if (sub_[int(plane)]) OnReadable(plane);
  }
  // A stream topic that should not wake the loop (LocalPlane::SetLazy):
  // its frames from a same-host publisher are read at DrainLazy() (or with
  // the next frame of another topic from the same connection). Frames that
  // come through ZeroMQ are unaffected. For a stream consumed only when
  // another one arrives (vb-afe: audio.ref, at each audio.mic frame).
  template <class M>
  void SetLazy(const Topic<M>& topic, bool lazy, const std::string& device = "") {
    SetLazy(topic.base, lazy, device);
  }
  void SetLazy(std::string_view base, bool lazy, const std::string& device = "");
  // Reads what the lazy topics' same-host publishers sent so far.
  void DrainLazy();
  // While inactive, publishes are dropped (one warning) and counted.
  void SetActive(bool active) { active_ = active; }
  bool active() const { return active_; }

  // device "" = this node's device.
  template <class M>
  Publisher<M> Advertise(const Topic<M>& topic, std::string device = "") {
    auto& slot = TopicSlot(FullTopic(topic.base, device), topic.plane);
    return Publisher<M>(this, topic.plane, &slot.topic, &slot.seq);
  }

  // device "" = this node's device; "*" = every device.
  template <class M>
  void Subscribe(const Topic<M>& topic, std::function<void(const Received<M>&)> fn, std::string device = "") {
    auto holder = std::make_shared<M>();
    AddSubscription(topic.plane, topic.base, device, M::descriptor()->full_name(),
                    [holder, fn = std::move(fn)](std::string_view t, std::string_view dev, const v1::Header& h,
                                                 std::string_view payload) {
                      holder->Clear();
                      if (!holder->ParseFromArray(payload.data(), int(payload.size()))) return false;
                      fn(Received<M>{t, dev, h, *holder});
                      return true;
                    });
  }

  // Undoes Subscribe(topic, …, device): its handlers get nothing more and,
  // unless another subscription covers it, the broker stops sending it
  // (a hub following the device it serves: issue 16).
  template <class M>
  void Unsubscribe(const Topic<M>& topic, std::string device = "") {
    RemoveSubscription(topic.plane, topic.base, device);
  }

  // Every message on `plane` whose topic starts with `prefix`, undecoded,
  // malformed ones included (the sniffer). A whole stream topic of one
  // device ("audio.out/local") comes from a local publisher when there is one,
  // as a typed subscription does; a prefix ("audio.", "audio.out/") always
  // through the broker.
  void SubscribeRaw(Plane plane, const std::string& prefix, std::function<void(const RawMessage&)> fn);

  // True if some subscriber (through the broker) listens to `topic`
  // ("<base>/<device>") on `plane`. Publishers are XPUB sockets, so
  // subscriptions are visible: one-shot senders wait for a listener instead
  // of sleeping. Per plane because each plane has its own sockets: a
  // subscription seen on the stream plane says nothing about whether this
  // node's control socket is connected yet.
  bool HasSubscriber(Plane plane, std::string_view topic) const;
  // Only subscriptions through the broker, not local readers (local_plane.h).
  bool HasBrokerSubscriber(Plane plane, std::string_view topic) const;
  template <class M>
  bool HasSubscriber(const Publisher<M>& pub) const {
    return pub.valid() && HasSubscriber(pub.plane(), pub.topic());
  }
  // The plane this node advertised `topic` on (kControl if it did not:
  // callers that only hold a topic name, e.g. test helpers).
  Plane AdvertisedPlane(std::string_view topic) const;
  // Called when a new subscription prefix appears (e.g. to greet late
  // joiners with state at once instead of at the next heartbeat).
  void OnNewSubscriber(std::function<void(const std::string& prefix)> fn) { on_subscribed_ = std::move(fn); }

  // Sends raw frames (tests: a rogue publisher; tools: replay).
  bool SendRaw(Plane plane, const std::vector<std::string>& frames);

  // Internal: used by Publisher<M>.
  bool PublishEncoded(Plane plane, const std::string& topic, uint64_t* seq, const google::protobuf::Message& msg,
                      const PublishOptions& opts);

  // What this node advertised and subscribes to, as declared in the code
  // (vb contract; defined in bus/contract.cc).
  struct Declared {
    std::string base, type;
    Plane plane;
    bool in;
  };
  std::vector<Declared> Declarations() const;

  const std::string& source() const { return source_; }
  const std::string& device() const { return device_; }
  const NodeCounters& counters() const { return counters_; }
  const SeqTracker& seq_tracker() const { return seq_; }
  Histogram& handler_us() { return handler_us_; }
  // The same-host stream shortcut (local_plane.h); null when off
  // (bus.local_stream: false, a tcp:// or inproc:// bus, or it could not open).
  const LocalPlane* local() const { return local_.get(); }
  const BusConfig& config() const { return config_; }

 private:
  using Dispatch =
      std::function<bool(std::string_view topic, std::string_view device, const v1::Header&, std::string_view payload)>;
  struct Sub {
    Plane plane;
    std::string base;
    std::string device;  // "*" = any
    std::string type;
    Dispatch dispatch;
    bool removed = false;  // unsubscribed, perhaps by a handler during a delivery
  };
  struct Advertised {
    std::string topic;
    uint64_t seq = 0;
    Plane plane = Plane::kControl;
  };
  std::string FullTopic(std::string_view base, const std::string& device) const;
  Advertised& TopicSlot(const std::string& topic, Plane plane);
  void AddSubscription(Plane plane, std::string_view base, const std::string& device, const std::string& type,
                       Dispatch fn);
  void RemoveSubscription(Plane plane, std::string_view base, const std::string& device);
  void OnReadable(Plane plane, int budget = 256);
  // Whether `topic` ("base/device") may take the local plane: the stream
  // plane's frames, not audio.backfill's bursts (a restarted session's
  // seconds of audio at once, paced by ZeroMQ's high-water mark).
  static bool LocalTopic(Plane plane, std::string_view topic);
  // Makes the ZeroMQ subscription of `prefix` match what is wanted: on while
  // some subscription needs it and no local publisher delivers it.
  void SyncPrefix(Plane plane, const std::string& prefix);
  void OpenLocal();
  void OnSubscriptions(Plane plane);
  // frames: the first (up to) three frames (nframes of them); count: how
  // many the message had. via_zmq: not from the local plane.
  void HandleMessage(Plane plane, const std::string_view* frames, size_t nframes, size_t count, bool via_zmq);
  void Deliver(Plane plane, const std::string_view* frames, size_t nframes, size_t count, bool via_zmq,
               v1::Header& header);
  void Reject(Malformed why, std::string_view topic, const std::string& detail);
  Status ApplyCurve(zmq::socket_t& s);

  zmq::context_t& ctx_;
  Loop& loop_;
  std::string source_;
  std::string device_;
  BusConfig config_;
  Endpoints endpoints_;
  std::unique_ptr<zmq::socket_t> pub_[2];
  std::unique_ptr<zmq::socket_t> sub_[2];
  // Shared: a delivery holds the ones it calls, so a handler may subscribe
  // or unsubscribe (itself included) while it runs.
  std::vector<std::shared_ptr<Sub>> subs_;
  std::vector<std::shared_ptr<Sub>> matched_scratch_;  // Deliver's, kept for its capacity
  std::vector<std::pair<std::string, std::function<void(const RawMessage&)>>> raw_[2];
  std::vector<std::unique_ptr<Advertised>> topics_;  // stable addresses
  std::string last_device_topic_, last_device_;      // device of the last published topic
  std::vector<std::string> subscribed_[2];           // prefixes someone subscribes to, per plane
  // Typed subscriptions per ZeroMQ prefix ("base/device", "base/" for every
  // device): how many, whether a local publisher delivers it, whether the
  // SUB socket is subscribed.
  struct PrefixState {
    int subs = 0;
    bool covered = false;
    bool on = false;
  };
  std::map<std::string, PrefixState, std::less<>> prefixes_[2];
  std::unique_ptr<LocalPlane> local_;
  std::set<std::string> lazy_;  // full topics SetLazy made lazy (applied when the local plane opens)
  std::function<void(const std::string&)> on_subscribed_;
  std::chrono::milliseconds batch_{0};
  Loop::TimerId plane_batch_timer_[2] = {0, 0};
  bool active_ = false;
  bool warned_inactive_ = false;
  NodeCounters counters_;
  SeqTracker seq_;
  Histogram handler_us_;
  RateLimit reject_log_;
  // Separate on purpose: a handler that publishes must not see its incoming
  // header change (issue 12: the decoder relabelled replies with a dead
  // turn id). in_header_ serves the outermost dispatch; a nested one (a
  // handler that runs the loop) parses into its own.
  v1::Header in_header_;
  v1::Header out_header_;
  int dispatch_depth_ = 0;
  std::string header_buf_, payload_buf_;
  std::vector<zmq::message_t> frames_;
};

template <class M>
bool Publisher<M>::Publish(const M& msg, const PublishOptions& opts) {
  if (!node_) return false;
  return node_->PublishEncoded(plane_, *topic_, seq_, msg, opts);
}

}  // namespace vb::bus
