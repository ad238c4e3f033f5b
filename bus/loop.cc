// Implementation of the actor event loop (see loop.h).
#include "bus/loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

namespace vb::bus {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Loop::Loop() { wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

Loop::~Loop() {
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

void Loop::AddZmqSocket(void* socket, Callback fn, bool marks_use) {
  Socket& s = sockets_[socket];
  s.fn = std::move(fn);
  size_t len = sizeof s.fd;
  if (zmq_getsockopt(socket, ZMQ_FD, &s.fd, &len) != 0) s.fd = -1;
  s.marks_use = marks_use;
  s.ask = true;
  dirty_ = true;
}

void Loop::Used(void* socket) {
  auto it = sockets_.find(socket);
  if (it != sockets_.end()) it->second.ask = true;
}
void Loop::RemoveZmqSocket(void* socket) {
  sockets_.erase(socket);
  dirty_ = true;
}

Loop::GroupId Loop::AddPollGroup(std::vector<pollfd> fds, PollCallback fn) {
  GroupId id = next_group_++;
  groups_[id] = Group{std::move(fds), std::move(fn)};
  dirty_ = true;
  return id;
}

void Loop::RemovePollGroup(GroupId id) {
  groups_.erase(id);
  dirty_ = true;
}

Loop::GroupId Loop::AddFd(int fd, short events, std::function<void(short)> fn) {
  return AddPollGroup({pollfd{fd, events, 0}}, [fn = std::move(fn)](std::span<const pollfd> p) { fn(p[0].revents); });
}

Loop::TimerId Loop::AddTimer(std::chrono::nanoseconds period, Callback fn) {
  TimerId id = next_timer_++;
  timers_[id] = Timer{period, std::move(fn), due_.emplace(Clock::now() + period, id)};
  return id;
}

Loop::TimerId Loop::AddOneShot(std::chrono::nanoseconds delay, Callback fn) {
  TimerId id = next_timer_++;
  timers_[id] = Timer{std::chrono::nanoseconds(0), std::move(fn), due_.emplace(Clock::now() + delay, id)};
  return id;
}

void Loop::CancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;  // fired (one-shot) or cancelled already
  due_.erase(it->second.due);
  timers_.erase(it);
}

bool Loop::Post(Callback fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    if (posted_.size() >= kMaxPosted) return false;
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  return true;
}

void Loop::Stop() {
  stop_ = true;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void Loop::Drain() {
  uint64_t n;
  while (read(wake_fd_, &n, sizeof n) > 0) {
  }
  std::deque<Callback> work;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    work.swap(posted_);
  }
  for (auto& fn : work) fn();
}

void Loop::RunDue() {
  auto now = Clock::now();
  while (!due_.empty() && due_.begin()->first <= now) {
    auto [when, id] = *due_.begin();
    due_.erase(due_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    if (it->second.period.count() > 0) {
      auto next = when + it->second.period;
      while (next <= now) next += it->second.period;  // skip missed periods
      it->second.due = due_.emplace(next, id);
      Callback fn = it->second.fn;  // the callback may cancel its own timer
      fn();
    } else {
      Callback fn = std::move(it->second.fn);
      timers_.erase(it);
      fn();
    }
  }
}

void Loop::RebuildPollSet() {
  items_.clear();
  item_socket_.clear();
  group_at_.clear();
  for (auto& [sock, s] : sockets_) {
    s.ask = true;  // new to the set: its fd may have fired before
    items_.push_back({s.fd, POLLIN, 0});
    item_socket_.emplace_back(sock, &s);
  }
  socket_ready_.assign(item_socket_.size(), 0);
  for (auto& [id, g] : groups_) {
    group_at_.emplace_back(id, items_.size());
    for (auto& p : g.fds) items_.push_back({p.fd, p.events, 0});
  }
  items_.push_back({wake_fd_, POLLIN, 0});
  dirty_ = false;
  // A fresh instance each time: a descriptor closed and its number reused
  // since the last rebuild cannot linger in it.
  if (epoll_fd_ >= 0) close(epoll_fd_);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < items_.size() && epoll_fd_ >= 0; ++i) {
    if (items_[i].fd < 0) continue;  // poll(2) ignores these too
    epoll_event ev{};
    ev.events = uint32_t(uint16_t(items_[i].events));  // POLL* and EPOLL* bits are the same
    ev.data.u64 = i;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, items_[i].fd, &ev) != 0) {
      close(epoll_fd_);
      epoll_fd_ = -1;
    }
  }
  ready_.resize(items_.size());
}

namespace {
// Whether a ZeroMQ socket has a message to read (ZMQ_EVENTS also processes
// its pending commands, which re-arms its ZMQ_FD).
bool Readable(void* socket) {
  int events = 0;
  size_t len = sizeof events;
  return zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}
}  // namespace

void Loop::RunOnce(std::chrono::nanoseconds max_wait) {
  if (dirty_) RebuildPollSet();
  const size_t sockets = item_socket_.size();
  // Before sleeping: every socket whose fd may not signal what it holds.
  bool ready = false;
  for (size_t i = 0; i < sockets; ++i) {
    Socket& s = *item_socket_[i].second;
    socket_ready_[i] = 0;
    if (s.ask || !s.marks_use || s.fd < 0) {
      // Asked again until it says it is empty (a nested RunOnce inside a
      // callback may take its turn).
      s.ask = Readable(item_socket_[i].first);
      socket_ready_[i] = s.ask;
      ready = ready || socket_ready_[i];
    }
  }
  long timeout_ms = std::chrono::ceil<std::chrono::milliseconds>(max_wait).count();
  if (!due_.empty()) {
    auto until = std::chrono::ceil<std::chrono::milliseconds>(due_.begin()->first - Clock::now()).count();
    timeout_ms = std::max(0L, std::min(timeout_ms, long(until)));
  }
  if (ready) timeout_ms = 0;
  const int wait_ms = int(std::min(timeout_ms, 24L * 3600 * 1000));
  int n;
  if (epoll_fd_ >= 0) {
    n = epoll_wait(epoll_fd_, ready_.data(), int(ready_.size()), wait_ms);
    for (auto& item : items_) item.revents = 0;
    for (int k = 0; k < n; ++k) items_[ready_[size_t(k)].data.u64].revents = short(ready_[size_t(k)].events);
  } else {
    n = poll(items_.data(), nfds_t(items_.size()), wait_ms);
  }
  ++wakeups_;
  if (n < 0) n = 0;  // EINTR: timers still run
  if (n > 0 || ready) {
    for (size_t i = 0; i < sockets; ++i)
      if (!socket_ready_[i] && items_[i].revents) {
        item_socket_[i].second->ask = Readable(item_socket_[i].first);
        socket_ready_[i] = item_socket_[i].second->ask;
      }
    // Callbacks may add or remove sockets and groups (dirty_): then the
    // cached set is stale, and the rest is handled on the next wake-up.
    for (size_t i = 0; i < sockets && !dirty_; ++i) {
      if (!socket_ready_[i]) continue;
      Socket& s = *item_socket_[i].second;
      s.ask = true;        // it received: ask again before sleeping
      Callback fn = s.fn;  // copy: the callback may remove itself
      fn();
    }
    for (size_t k = 0; k < group_at_.size() && !dirty_; ++k) {
      auto [id, at] = group_at_[k];
      auto it = groups_.find(id);
      if (it == groups_.end()) continue;
      bool any = false;
      for (size_t j = 0; j < it->second.fds.size(); ++j) {
        it->second.fds[j].revents = items_[at + j].revents;
        any = any || items_[at + j].revents != 0;
      }
      if (any) {
        PollCallback fn = it->second.fn;
        std::vector<pollfd> fds = it->second.fds;
        fn(fds);
      }
    }
    if (items_.back().revents & POLLIN) Drain();
  }
  RunDue();
}

void Loop::Run() {
  while (!stop_) RunOnce(std::chrono::hours(1));
}

}  // namespace vb::bus
