// The stream plane's same-host shortcut (see local_plane.h).
#include "bus/local_plane.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace vb::bus {

namespace {

constexpr char kWant = 'S', kUnwant = 'U', kHello = 'H', kAnnounce = 'A', kMessage = 'M';
// A listener file that refuses connections this long after it was made
// belongs to a process that is gone (kill -9 leaves it behind): removed.
constexpr int kStaleSeconds = 10;
// Each connection's send buffer: ~200 audio frames (ZeroMQ's stream
// high-water mark is 100 messages); the kernel caps it at wmem_max.
constexpr int kSocketBuffer = 512 * 1024;
// How far ZeroMQ's path can be ahead of the local one for the same process
// (frames in flight on either): further means another process of that name.
constexpr uint64_t kSameRun = 4096;

bool FillAddress(const std::string& path, sockaddr_un* a) {
  if (path.size() >= sizeof a->sun_path) return false;
  std::memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  std::memcpy(a->sun_path, path.data(), path.size());
  return true;
}

// Listener names are "<pid>.<n>.<random hex>" (containers sharing the
// folder have their own pid numbers): nothing else in the folder is
// connected to or removed.
bool ListenerName(std::string_view n) {
  return !n.empty() && n.size() <= 48 && n.front() != '.' && std::count(n.begin(), n.end(), '.') == 2 &&
         std::all_of(n.begin(), n.end(), [](char ch) { return ch == '.' || std::isxdigit(uint8_t(ch)); });
}

void PutU16(char* p, size_t v) {
  p[0] = char(v & 0xff);
  p[1] = char((v >> 8) & 0xff);
}
size_t GetU16(const char* p) { return size_t(uint8_t(p[0])) | size_t(uint8_t(p[1])) << 8; }

}  // namespace

LocalPlane::LocalPlane(Loop& loop, std::string dir, std::string source, size_t max_topic, Hooks hooks)
    : loop_(loop), dir_(std::move(dir)), source_(std::move(source)), max_topic_(max_topic), hooks_(std::move(hooks)) {}

LocalPlane::~LocalPlane() {
  if (rescan_) loop_.CancelTimer(rescan_);
  for (auto& c : conns_) {
    for (auto& [t, h] : c->held) loop_.CancelTimer(h.timer);
    if (c->watch) loop_.RemovePollGroup(c->watch);
    ::close(c->fd);
  }
  if (listen_fd_ >= 0) {
    loop_.RemovePollGroup(listen_watch_);
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
}

std::string LocalPlane::DirFor(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) != 0 || endpoint.size() <= 6) return "";
  return endpoint.substr(6) + ".local";
}

Status LocalPlane::Open() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Unavailable("cannot make " + dir_ + ": " + std::strerror(errno));
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Status::Unavailable(dir_ + " is not a folder");
  static std::atomic<int> counter{0};
  uint32_t salt = 0;
  if (::getrandom(&salt, sizeof salt, GRND_NONBLOCK) != sizeof salt) salt = uint32_t(MonoNs());
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", salt);
  name_ = std::to_string(getpid()) + "." + std::to_string(counter++) + "." + hex;
  path_ = dir_ + "/" + name_;
  sockaddr_un a;
  if (!FillAddress(path_, &a)) return Status::Unavailable(path_ + " is longer than a unix socket path may be");
  return Status::Ok();
}

void LocalPlane::Advertise(const std::string& topic) {
  if (std::find(advertised_.begin(), advertised_.end(), topic) != advertised_.end()) return;
  advertised_.push_back(topic);
  if (listen_fd_ < 0) Listen();
}

void LocalPlane::Listen() {
  sockaddr_un a;
  if (!FillAddress(path_, &a)) return;
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    VB_LOG(kWarn) << "local stream plane: socket: " << std::strerror(errno) << " (streams go through the broker)";
    return;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
    VB_LOG(kWarn) << "local stream plane: cannot listen on " << path_ << ": " << std::strerror(errno)
                  << " (streams go through the broker)";
    ::close(fd);
    return;
  }
  listen_fd_ = fd;
  listen_watch_ = loop_.AddFd(fd, POLLIN, [this](short) { OnAccept(); });
}

void LocalPlane::OnAccept() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that went away meanwhile
    if (conns_.size() >= kMaxPeers) {
      ++counters_.peers_closed;
      ::close(fd);
      continue;
    }
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    Conn* raw = c.get();
    c->watch = loop_.AddFd(fd, POLLIN, [this, raw](short ev) { OnConn(raw, ev); });
    conns_.push_back(std::move(c));
    std::string hello(1, kHello);
    hello += source_;
    iovec v{hello.data(), hello.size()};
    SendTo(*raw, &v, 1);  // a reader that cannot take even this will not get frames either
  }
}

void LocalPlane::Want(const std::string& topic) {
  if (wants_[topic]++ > 0) return;
  covered_[topic] = false;
  zmq_seen_[topic];
  std::string p(1, kWant);
  p += topic;
  iovec v{p.data(), p.size()};
  for (auto& c : conns_)
    if (c->outgoing) SendTo(*c, &v, 1);
  if (!rescan_) rescan_ = loop_.AddTimer(kRescan, [this] { Rescan(); });
  Rescan();
}

void LocalPlane::Unwant(const std::string& topic) {
  auto it = wants_.find(topic);
  if (it == wants_.end() || --it->second > 0) return;
  wants_.erase(it);
  covered_.erase(topic);
  zmq_seen_.erase(topic);
  overtaken_.erase(topic);
  std::string p(1, kUnwant);
  p += topic;
  iovec v{p.data(), p.size()};
  for (auto& c : conns_)
    if (c->outgoing) {
      SendTo(*c, &v, 1);
      c->from.erase(topic);
      if (auto h = c->held.find(topic); h != c->held.end()) {
        loop_.CancelTimer(h->second.timer);
        c->held.erase(h);
      }
    }
  if (wants_.empty() && rescan_) {
    loop_.CancelTimer(rescan_);
    rescan_ = 0;
  }
}

void LocalPlane::SetPolled(bool polled) {
  if (polled == polled_) return;
  polled_ = polled;
  for (auto& c : conns_)
    if (c->outgoing) Rewatch(c.get());
}

void LocalPlane::SetLazy(const std::string& topic, bool lazy) {
  if (lazy ? !lazy_.insert(topic).second : lazy_.erase(topic) == 0) return;
  for (auto& c : conns_)
    if (c->outgoing) Rewatch(c.get());
}

bool LocalPlane::OnlyLazy(const Conn& c) const {
  if (lazy_.empty() || c.from.empty() || !c.held.empty()) return false;
  for (const auto& [topic, seq] : c.from)
    if (!lazy_.count(topic)) return false;
  // Every eager topic we want must already come over a finished switch:
  // until then this publisher may still announce one of them here (one
  // process publishing audio.ref and audio.mic), and its frames must not
  // wait in an unread connection.
  for (const auto& [topic, n] : wants_)
    if (!lazy_.count(topic) && !Covered(topic)) return false;
  return true;
}

void LocalPlane::Rewatch(Conn* c) {
  const bool watch = polled_ && !OnlyLazy(*c);
  if (!watch && c->watch) {
    loop_.RemovePollGroup(c->watch);
    c->watch = 0;
  } else if (watch && !c->watch) {
    c->watch = loop_.AddFd(c->fd, POLLIN, [this, c](short ev) { OnConn(c, ev); });
  }
}

void LocalPlane::DrainLazy() {
  std::vector<Conn*> lazy;
  for (auto& c : conns_)
    if (c->outgoing && !c->watch && polled_) lazy.push_back(c.get());
  for (Conn* c : lazy)
    if (Alive(c)) OnConn(c, POLLIN);
}

void LocalPlane::Drain() {
  std::vector<Conn*> readers;
  for (auto& c : conns_)
    if (c->outgoing) readers.push_back(c.get());
  for (Conn* c : readers)
    if (Alive(c)) OnConn(c, POLLIN);
}

bool LocalPlane::Covered(std::string_view topic) const {
  auto it = covered_.find(topic);
  return it != covered_.end() && it->second;
}

bool LocalPlane::Duplicate(std::string_view topic, std::string_view source, uint64_t seq) {
  auto w = zmq_seen_.find(topic);
  if (w == zmq_seen_.end()) return false;  // not a topic we want from here
  auto& seen = w->second;
  auto s = std::find_if(seen.begin(), seen.end(), [&](const ZmqSeen& z) { return z.source == source; });
  if (s == seen.end()) {
    if (seen.size() >= kMaxSeenSources) seen.erase(seen.begin());
    seen.push_back(ZmqSeen{std::string(source), seq});
  } else {
    s->seq = seq;
  }
  for (const auto& c : conns_) {
    if (!c->outgoing || c->source != source) continue;
    auto it = c->from.find(topic);
    if (it == c->from.end()) continue;
    const bool dup = seq >= it->second;
    // ZeroMQ brought the frame before the first local one (or passed it):
    // the held local frames follow it.
    if (seq + 1 >= it->second && c->held.count(topic)) ReleaseSoon(c.get(), std::string(topic));
    if (dup) {
      ++counters_.duplicates;
      return true;
    }
  }
  return false;
}

bool LocalPlane::AlreadyHeard(std::string_view topic, std::string_view source, uint64_t seq) {
  auto it = overtaken_.find(topic);
  if (it == overtaken_.end() || it->second.source != source) return false;
  if (seq > it->second.seq) {
    overtaken_.erase(it);  // past it: nothing more to drop
    return false;
  }
  ++counters_.duplicates;
  return true;
}

void LocalPlane::ReleaseSoon(Conn* c, const std::string& topic) {
  auto h = c->held.find(topic);
  if (h == c->held.end()) return;
  loop_.CancelTimer(h->second.timer);
  h->second.timer = loop_.AddOneShot(std::chrono::nanoseconds(0), [this, c, topic] {
    if (Alive(c)) Release(c, topic);
  });
}

void LocalPlane::Release(Conn* c, const std::string& topic) {
  auto h = c->held.find(topic);
  if (h == c->held.end()) return;
  loop_.CancelTimer(h->second.timer);
  std::vector<std::string> packets = std::move(h->second.packets);
  c->held.erase(h);
  for (const auto& body : packets) {
    if (!Alive(c)) return;
    DeliverBody(*c, body);
  }
  Recount(topic);
  if (Alive(c) && !lazy_.empty()) Rewatch(c);  // the switch is over: it may leave the poll set
}

bool LocalPlane::HasReader(std::string_view topic) const {
  for (const auto& c : conns_)
    if (!c->outgoing && std::find(c->wants.begin(), c->wants.end(), topic) != c->wants.end()) return true;
  return false;
}

void LocalPlane::Rescan() {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return;
  std::vector<std::string> found;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == name_ || !ListenerName(n)) continue;
    bool known = false;
    for (const auto& c : conns_) known = known || (c->outgoing && c->name == n);
    if (!known) found.emplace_back(n);
  }
  ::closedir(d);
  for (const auto& n : found)
    if (conns_.size() < kMaxPeers) ConnectTo(n);
}

void LocalPlane::ConnectTo(const std::string& name) {
  const std::string full = dir_ + "/" + name;
  sockaddr_un a;
  if (!FillAddress(full, &a)) return;
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    struct stat st {};
    if (err == ECONNREFUSED && ::lstat(full.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        std::time(nullptr) - st.st_mtime > kStaleSeconds)
      ::unlink(full.c_str());  // its process is gone
    return;
  }
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
  auto c = std::make_unique<Conn>();
  c->fd = fd;
  c->outgoing = true;
  c->name = name;
  Conn* raw = c.get();
  Rewatch(raw);
  conns_.push_back(std::move(c));
  for (const auto& [topic, n] : wants_) {
    std::string p(1, kWant);
    p += topic;
    iovec v{p.data(), p.size()};
    if (SendTo(*raw, &v, 1) != 0) {
      Close(raw, "it does not take our subscriptions");
      return;
    }
  }
}

int LocalPlane::SendTo(Conn& c, const iovec* iov, int n) {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = size_t(n);
  for (;;) {
    if (::sendmsg(c.fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

bool LocalPlane::Send(const std::string& topic, uint64_t seq, std::string_view header, std::string_view payload) {
  bool any = false;
  const size_t size = 5 + topic.size() + header.size() + payload.size();
  char head[5] = {kMessage};
  PutU16(head + 1, topic.size());
  PutU16(head + 3, header.size());
  iovec v[4] = {{head, sizeof head},
                {const_cast<char*>(topic.data()), topic.size()},
                {const_cast<char*>(header.data()), header.size()},
                {const_cast<char*>(payload.data()), payload.size()}};
  std::vector<Conn*> broken;
  for (auto& cp : conns_) {
    Conn& c = *cp;
    if (c.outgoing || std::find(c.wants.begin(), c.wants.end(), topic) == c.wants.end()) continue;
    any = true;
    if (size > kMaxPacket || topic.size() > 0xffff || header.size() > 0xffff) {
      ++counters_.oversized;
      uint64_t suppressed = 0;
      if (log_limit_.Allow(MonoNs(), &suppressed))
        VB_LOG(kWarn) << "local stream plane: a " << size << "-byte message on " << topic
                      << " is too big to pass; lost (a seq gap for its readers)";
      continue;
    }
    int err = 0;
    if (std::find(c.announced.begin(), c.announced.end(), topic) == c.announced.end()) {
      std::string a(9, '\0');
      a[0] = kAnnounce;
      for (int i = 0; i < 8; ++i) a[1 + i] = char((seq >> (8 * i)) & 0xff);
      a += topic;
      iovec av{a.data(), a.size()};
      err = SendTo(c, &av, 1);
      if (err == 0) c.announced.push_back(topic);
    }
    if (err == 0) err = SendTo(c, v, 4);
    if (err == 0) {
      ++counters_.sent;
    } else if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      ++counters_.dropped;  // the reader is behind: its seq gap says so
    } else {
      broken.push_back(&c);
    }
  }
  for (Conn* c : broken) Close(c, "the reader is gone");
  return any;
}

void LocalPlane::OnConn(Conn* c, short revents) {
  if (buf_.empty()) buf_.resize(kMaxPacket);
  for (int budget = 0; budget < 256; ++budget) {
    iovec v{buf_.data(), buf_.size()};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    ssize_t n = ::recvmsg(c->fd, &m, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return Close(c, std::strerror(errno));
    }
    if (n == 0) return Close(c, "closed");
    if (m.msg_flags & MSG_TRUNC) {
      ++counters_.oversized;
      ++counters_.bad_packets;
      if (hooks_.malformed) hooks_.malformed("a packet larger than " + std::to_string(kMaxPacket) + " bytes");
      continue;
    }
    Packet(*c, std::string_view(buf_.data(), size_t(n)));
    if (!Alive(c)) return;  // closed by Packet
  }
  if ((revents & (POLLHUP | POLLERR)) && !(revents & POLLIN)) return Close(c, "hung up");
  if (c->outgoing && !lazy_.empty()) Rewatch(c);  // an announcement or a switch's end may change it
}

void LocalPlane::Packet(Conn& c, std::string_view p) {
  auto bad = [&](const char* why) {
    ++counters_.bad_packets;
    if (hooks_.malformed) hooks_.malformed(why);
    Close(&c, why);
  };
  const char kind = p[0];
  p.remove_prefix(1);
  if (!c.outgoing) {  // a reader talks to us, the publisher
    if ((kind != kWant && kind != kUnwant) || p.empty() || p.size() > max_topic_)
      return bad("not a subscription packet");
    auto it = std::find(c.wants.begin(), c.wants.end(), p);
    if (kind == kUnwant) {
      if (it != c.wants.end()) c.wants.erase(it);
      std::erase(c.announced, p);
      return;
    }
    if (it != c.wants.end()) return;
    if (c.wants.size() >= kMaxWants) return bad("too many subscriptions");
    c.wants.emplace_back(p);
    if (hooks_.wanted) hooks_.wanted(c.wants.back());
    return;
  }
  switch (kind) {
    case kHello:
      if (p.empty() || p.size() > 128) return bad("a hello without a source");
      c.source.assign(p);
      return;
    case kAnnounce: {
      if (p.size() < 9 || p.size() > 8 + max_topic_) return bad("a short announcement");
      uint64_t seq = 0;
      for (int i = 0; i < 8; ++i) seq |= uint64_t(uint8_t(p[i])) << (8 * i);
      std::string topic(p.substr(8));
      if (!wants_.count(topic)) return;  // no longer wanted: its 'U' is on the way
      c.from[topic] = seq;
      // Hold the local frames until ZeroMQ has brought seq-1 (unless it has,
      // or this stream starts here).
      bool caught_up = seq <= 1;
      if (auto w = zmq_seen_.find(topic); w != zmq_seen_.end())
        for (const auto& z : w->second) {
          // Far ahead of this announcement: an earlier process of the same
          // name (a restarted capture counts from 1 again), not this one.
          if (z.source != c.source || z.seq >= seq + kSameRun) continue;
          caught_up = caught_up || z.seq + 1 >= seq;
          if (z.seq >= seq) overtaken_[topic] = z;  // ZeroMQ was faster than the announcement
        }
      if (!caught_up) {
        Conn* cp = &c;
        c.held[topic].timer = loop_.AddOneShot(kHoldMax, [this, cp, topic] {
          if (Alive(cp)) Release(cp, topic);
        });
      }
      Recount(topic);
      return;
    }
    case kMessage: {
      if (p.size() < 4) return bad("a short message");
      const size_t tl = GetU16(p.data()), hl = GetU16(p.data() + 2);
      if (4 + tl + hl > p.size()) return bad("a message shorter than its lengths");
      std::string_view topic = p.substr(4, tl);
      // Only what it announced (and we want): anything else is a peer that
      // does not follow the protocol.
      if (!c.from.count(topic)) return bad("a message on a topic it did not announce");
      if (auto h = c.held.find(topic); h != c.held.end()) {
        h->second.packets.emplace_back(p);
        h->second.bytes += p.size();
        if (h->second.bytes >= kMaxHeldBytes) Release(&c, std::string(topic));
        return;
      }
      DeliverBody(c, p);
      return;
    }
    default: return bad("an unknown packet");
  }
}

bool LocalPlane::Alive(const Conn* c) const {
  return std::any_of(conns_.begin(), conns_.end(), [c](const auto& p) { return p.get() == c; });
}

void LocalPlane::DeliverBody(Conn& c, std::string_view p) {
  // Checked by Packet: the lengths fit.
  const size_t tl = GetU16(p.data()), hl = GetU16(p.data() + 2);
  ++counters_.received;
  hooks_.deliver(p.substr(4, tl), p.substr(4 + tl, hl), p.substr(4 + tl + hl));
}

void LocalPlane::Close(Conn* c, std::string_view why) {
  auto it = std::find_if(conns_.begin(), conns_.end(), [c](const auto& p) { return p.get() == c; });
  if (it == conns_.end()) return;
  std::vector<std::string> topics;
  for (const auto& [t, s] : c->from) topics.push_back(t);
  if (!topics.empty()) {
    uint64_t suppressed = 0;
    if (log_limit_.Allow(MonoNs(), &suppressed))
      VB_LOG(kInfo) << "local stream plane: " << (c->source.empty() ? c->name : c->source) << " ended (" << why
                    << "): its streams go through the broker until it is back";
  }
  for (auto& [t, h] : c->held) loop_.CancelTimer(h.timer);  // its held frames: a gap the seqs show
  // What ZeroMQ brought from this process says nothing about its successor.
  for (auto& [t, seen] : zmq_seen_) std::erase_if(seen, [&](const ZmqSeen& z) { return z.source == c->source; });
  std::erase_if(overtaken_, [&](const auto& o) { return o.second.source == c->source; });
  if (c->watch) loop_.RemovePollGroup(c->watch);
  ::close(c->fd);
  conns_.erase(it);
  ++counters_.peers_closed;
  for (const auto& t : topics) Recount(t);
}

void LocalPlane::Recount(const std::string& topic) {
  auto it = covered_.find(topic);
  if (it == covered_.end()) return;
  bool now = false;
  // Covered once a switch is complete: ZeroMQ's subscription is withdrawn
  // only after it brought its last frame before the local ones (a SUB
  // socket drops what it holds of a topic it no longer subscribes to).
  for (const auto& c : conns_) now = now || (c->outgoing && c->from.count(topic) && !c->held.count(topic));
  if (now == it->second) return;
  it->second = now;
  if (hooks_.coverage) hooks_.coverage(topic, now);
  if (!lazy_.empty() && !lazy_.count(topic)) {  // lazy connections may leave or rejoin the poll set
    std::vector<Conn*> outgoing;
    for (auto& c : conns_)
      if (c->outgoing) outgoing.push_back(c.get());
    for (Conn* c : outgoing)
      if (Alive(c)) Rewatch(c);
  }
}

}  // namespace vb::bus
