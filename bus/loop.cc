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
}

void Loop::AddZmqSocket(void* socket, Callback fn) { sockets_[socket] = std::move(fn); }
void Loop::RemoveZmqSocket(void* socket) { sockets_.erase(socket); }

Loop::GroupId Loop::AddPollGroup(std::vector<pollfd> fds, PollCallback fn) {
  GroupId id = next_group_++;
  groups_[id] = Group{std::move(fds), std::move(fn)};
  return id;
}

void Loop::RemovePollGroup(GroupId id) { groups_.erase(id); }

Loop::GroupId Loop::AddFd(int fd, short events, std::function<void(short)> fn) {
  return AddPollGroup({pollfd{fd, events, 0}},
                      [fn = std::move(fn)](std::span<const pollfd> p) { fn(p[0].revents); });
}

Loop::TimerId Loop::AddTimer(std::chrono::nanoseconds period, Callback fn) {
  TimerId id = next_timer_++;
  timers_[id] = Timer{period, std::move(fn)};
  due_.emplace(Clock::now() + period, id);
  return id;
}

Loop::TimerId Loop::AddOneShot(std::chrono::nanoseconds delay, Callback fn) {
  TimerId id = next_timer_++;
  timers_[id] = Timer{std::chrono::nanoseconds(0), std::move(fn)};
  due_.emplace(Clock::now() + delay, id);
  return id;
}

void Loop::CancelTimer(TimerId id) { timers_.erase(id); }  // its due_ entry is skipped

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
      due_.emplace(next, id);
      Callback fn = it->second.fn;  // the callback may cancel its own timer
      fn();
    } else {
      Callback fn = std::move(it->second.fn);
      timers_.erase(it);
      fn();
    }
  }
}

void Loop::RunOnce(std::chrono::nanoseconds max_wait) {
  // Build the poll set: sockets, fd groups, the wake eventfd.
  std::vector<zmq_pollitem_t> items;
  std::vector<void*> socket_keys;
  items.reserve(sockets_.size() + groups_.size() + 2);
  for (auto& [s, fn] : sockets_) {
    items.push_back({s, 0, ZMQ_POLLIN, 0});
    socket_keys.push_back(s);
  }
  std::vector<std::pair<GroupId, size_t>> group_at;
  for (auto& [id, g] : groups_) {
    group_at.emplace_back(id, items.size());
    for (auto& p : g.fds) items.push_back({nullptr, p.fd, p.events, 0});
  }
  items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});

  long timeout_ms = std::chrono::ceil<std::chrono::milliseconds>(max_wait).count();
  if (!due_.empty()) {
    auto until = std::chrono::ceil<std::chrono::milliseconds>(due_.begin()->first - Clock::now()).count();
    timeout_ms = std::max(0L, std::min(timeout_ms, long(until)));
  }
  int n = zmq_poll(items.data(), int(items.size()), timeout_ms);
  ++wakeups_;
  if (n > 0) {
    for (size_t i = 0; i < socket_keys.size(); ++i) {
      if (items[i].revents & ZMQ_POLLIN) {
        auto it = sockets_.find(socket_keys[i]);
        if (it != sockets_.end()) {
          Callback fn = it->second;
          fn();
        }
      }
    }
    for (auto& [id, at] : group_at) {
      auto it = groups_.find(id);
      if (it == groups_.end()) continue;
      bool any = false;
      for (size_t k = 0; k < it->second.fds.size(); ++k) {
        it->second.fds[k].revents = items[at + k].revents;
        any = any || items[at + k].revents != 0;
      }
      if (any) {
        PollCallback fn = it->second.fn;
        std::vector<pollfd> fds = it->second.fds;
        fn(fds);
      }
    }
    if (items.back().revents & ZMQ_POLLIN) Drain();
  }
  RunDue();
}

void Loop::Run() {
  while (!stop_) RunOnce(std::chrono::hours(1));
}

}  // namespace vb::bus
