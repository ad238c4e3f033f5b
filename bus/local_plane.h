// LocalPlane: the stream plane's same-host shortcut. Audio frames between
// processes of one host go publisher → reader over a unix SOCK_SEQPACKET
// connection (one send, one wake-up per delivery) instead of through
// ZeroMQ and the broker (six thread wake-ups per delivery on a loaded
// machine: vb-bus-floor measured the brokered bus alone at 7.9 % of a core
// at the pipeline's rates, this path at 1.8 %).
//
// Nothing is cut off: ZeroMQ stays the bus. A publisher still publishes
// every stream message on its ZeroMQ socket, which sends it only if some
// ZeroMQ subscriber wants it (vb-sniff, a recorder, the dashboard, a
// replacement actor in another language, a satellite bridge); a reader keeps
// its ZeroMQ subscription for a topic until a local publisher has said it
// now delivers that topic here, and takes it back the moment that
// publisher's connection ends.
//
// Rendezvous: a folder beside the ipc endpoint (`<path>.local/`). A node
// that advertises a stream topic listens there on `<pid>.<n>.<random>`; a node that
// subscribes to an exact stream topic ("base/device") connects to every
// listener it finds (at once and every kRescan) and says which topics it
// wants. Packets (first byte = kind):
//   reader → publisher   'S' topic      want topic
//                        'U' topic      no longer
//   publisher → reader   'H' source     hello: who publishes here
//                        'A' seq topic  from seq (u64 LE) on, topic comes here
//                        'M' message    u16 topic length, u16 header length
//                                       (LE), topic, header, payload
// The switch, without a gap, a duplicate or a frame out of order: the
// publisher announces the seq S of the first frame it sends here; the reader
// holds the local frames until ZeroMQ has brought it S-1 (or kHoldMax
// passed: S-1 was lost on the way, or ZeroMQ never carried this stream to
// it), then delivers them in order and from then drops whatever still comes
// through ZeroMQ from that publisher on that topic at or after S.
//
// Hostile or broken peers: every packet is bounded (kMaxPacket; a bigger one
// arrives truncated and is counted as oversized), a peer's wants are bounded
// (kMaxWants), a malformed control packet closes that connection (counted,
// logged at a limited rate), messages are checked by Node like any other.
// A reader that does not keep up loses frames at its socket's buffer
// (counted by the publisher, seen as seq gaps by the reader), as ZeroMQ's
// stream high-water mark drops them.
//
// No ZeroMQ here: Node owns one and feeds it. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bus/log.h"
#include "bus/loop.h"
#include "bus/status.h"

namespace vb::bus {

class LocalPlane {
 public:
  struct Hooks {
    // A message from a local publisher (header and payload unchecked).
    std::function<void(std::string_view topic, std::string_view header, std::string_view payload)> deliver;
    // Whether a wanted topic now comes from at least one local publisher.
    std::function<void(const std::string& topic, bool covered)> coverage;
    // Publisher side: a local reader wants `topic` (first time from it).
    std::function<void(const std::string& topic)> wanted;
    // A malformed packet from a peer: counted and logged by the owner.
    std::function<void(std::string_view why)> malformed;
  };
  struct Counters {
    uint64_t sent = 0;          // message deliveries to local readers
    uint64_t dropped = 0;       // a reader's buffer full: the frame is lost (a seq gap there)
    uint64_t oversized = 0;     // bigger than a packet may be: lost (a seq gap)
    uint64_t received = 0;      // messages from local publishers
    uint64_t duplicates = 0;    // came through ZeroMQ as well, dropped (Node counts them)
    uint64_t peers_closed = 0;  // connections ended (a peer exited, or sent garbage)
    uint64_t bad_packets = 0;
  };

  static constexpr size_t kMaxPacket = 256 * 1024;  // a whole message; audio frames are ~1 KB
  static constexpr size_t kMaxWants = 64;           // topics one reader may want from one publisher
  static constexpr size_t kMaxPeers = 256;
  static constexpr std::chrono::milliseconds kRescan{1000};
  // The longest a switch holds local frames waiting for ZeroMQ's last one,
  // and how much it holds at most (a reply's burst of ~130 session.audio
  // packets can start mid-switch; a forced release loses what ZeroMQ still
  // had on the way).
  static constexpr std::chrono::milliseconds kHoldMax{500};
  static constexpr size_t kMaxHeldBytes = 4 << 20;

  // dir: the rendezvous folder; source: this node's Header.source.
  LocalPlane(Loop& loop, std::string dir, std::string source, size_t max_topic, Hooks hooks);
  ~LocalPlane();
  LocalPlane(const LocalPlane&) = delete;
  LocalPlane& operator=(const LocalPlane&) = delete;

  // The folder for an ipc:// endpoint ("" for any other kind: no local plane).
  static std::string DirFor(const std::string& endpoint);
  // Creates the folder (0700). Listening and connecting start when there is
  // something to publish or to read.
  Status Open();

  // Publisher side. Advertise(topic): this node publishes it; listening
  // starts with the first one.
  void Advertise(const std::string& topic);
  // Sends to every local reader that wants `topic`; false if none does.
  bool Send(const std::string& topic, uint64_t seq, std::string_view header, std::string_view payload);
  bool HasReader(std::string_view topic) const;

  // Reader side: exact topics ("base/device").
  void Want(const std::string& topic);
  void Unwant(const std::string& topic);
  bool Covered(std::string_view topic) const;
  // Every stream message that came through ZeroMQ, before it is delivered:
  // true if it comes (came) here as well (drop it). May end a switch's hold.
  bool Duplicate(std::string_view topic, std::string_view source, uint64_t seq);
  // Every message from this plane, before it is delivered: true if ZeroMQ
  // brought it already (it overtook the announcement; drop it).
  bool AlreadyHeard(std::string_view topic, std::string_view source, uint64_t seq);

  // Reader side: polled (each frame wakes the loop, the default) or read
  // only at Drain() (a batched plane: Node::BatchPlane, SetBatchInterval).
  void SetPolled(bool polled);
  bool polled() const { return polled_; }
  void Drain();
  // Reader side: a lazy topic does not wake the loop. A publisher's
  // connection that delivers only lazy topics (once announced, no switch
  // in progress) leaves the poll set and is read at DrainLazy() (and
  // Drain()): for a stream consumed only alongside another one (vb-afe's
  // audio.ref, needed when a mic frame comes), one wake-up a frame fewer.
  // A hang-up of such a connection is then seen at the next drain.
  void SetLazy(const std::string& topic, bool lazy);
  void DrainLazy();

  const Counters& counters() const { return counters_; }
  size_t peers() const { return conns_.size(); }
  const std::string& path() const { return path_; }

 private:
  struct Conn {
    int fd = -1;
    Loop::GroupId watch = 0;
    bool outgoing = false;                              // we connected (we read from it)
    std::string name;                                   // outgoing: the listener's file name
    std::string source;                                 // outgoing: the publisher's (from 'H')
    std::vector<std::string> wants;                     // incoming: what the reader wants
    std::vector<std::string> announced;                 // incoming: topics 'A'-sent
    std::map<std::string, uint64_t, std::less<>> from;  // outgoing: topic → first local seq
    struct Hold {
      std::vector<std::string> packets;  // 'M' bodies, in order
      size_t bytes = 0;
      Loop::TimerId timer = 0;
    };
    std::map<std::string, Hold, std::less<>> held;  // outgoing: topics mid-switch
  };
  // Whether the connection delivers only lazy topics (it may leave the poll set).
  bool OnlyLazy(const Conn& c) const;
  // Puts an outgoing connection in or out of the poll set as polled_ and lazy_ say.
  void Rewatch(Conn* c);
  // The last seq ZeroMQ brought per wanted topic and source (bounded).
  struct ZmqSeen {
    std::string source;
    uint64_t seq = 0;
  };
  static constexpr size_t kMaxSeenSources = 8;
  void Listen();
  void OnAccept();
  void Rescan();
  void ConnectTo(const std::string& name);
  void OnConn(Conn* c, short revents);
  void Packet(Conn& c, std::string_view p);
  void Close(Conn* c, std::string_view why);
  bool Alive(const Conn* c) const;
  // 0 sent, else errno (EAGAIN: the reader's buffer is full).
  int SendTo(Conn& c, const struct iovec* iov, int n);
  void Recount(const std::string& topic);
  void DeliverBody(Conn& c, std::string_view body);
  // Ends topic's hold on c (soon, from the loop: not inside a delivery).
  void Release(Conn* c, const std::string& topic);
  void ReleaseSoon(Conn* c, const std::string& topic);

  Loop& loop_;
  std::string dir_, source_, path_, name_;
  size_t max_topic_;
  Hooks hooks_;
  int listen_fd_ = -1;
  Loop::GroupId listen_watch_ = 0;
  Loop::TimerId rescan_ = 0;
  bool polled_ = true;
  std::set<std::string, std::less<>> lazy_;  // reader side: topics that do not wake the loop
  std::vector<std::string> advertised_;
  std::map<std::string, int, std::less<>> wants_;     // reader: topic → subscriptions
  std::map<std::string, bool, std::less<>> covered_;  // reader: topic → a local publisher delivers it
  std::map<std::string, std::vector<ZmqSeen>, std::less<>> zmq_seen_;  // reader: wanted topic → sources
  // reader: topic → (source, seq): ZeroMQ brought up to seq before that
  // source's announcement came; its local copies up to there are dropped.
  std::map<std::string, ZmqSeen, std::less<>> overtaken_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<char> buf_;
  Counters counters_;
  RateLimit log_limit_;
};

}  // namespace vb::bus
