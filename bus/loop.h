// Loop: the one event loop of an actor. A blocking epoll_wait(2) over ZeroMQ
// sockets (their ZMQ_FD) and file descriptors (ALSA, libwebsockets, signalfd, eventfd) whose
// timeout is the next timer: no busy waiting, and wake-ups are counted so a
// test can prove it.
//
// Single-threaded: every method except Post() and Stop() must be called on
// the loop's thread. Post() and Stop() are safe from any thread.
#pragma once

#include <poll.h>
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <vector>

#include <zmq.h>

namespace vb::bus {

using Clock = std::chrono::steady_clock;

// CLOCK_MONOTONIC in nanoseconds (the time base of Header.mono_ns).
int64_t MonoNs();

class Loop {
 public:
  using Callback = std::function<void()>;
  using TimerId = uint64_t;
  using PollCallback = std::function<void(std::span<const pollfd>)>;
  using GroupId = uint64_t;

  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // A ZeroMQ socket (raw handle) becomes readable: `fn` runs; it should
  // drain what is available without blocking.
  //
  // The loop polls the sockets' ZMQ_FD itself (one epoll_wait(2) per wake-up;
  // zmq_poll made two, and asked every socket ZMQ_EVENTS twice: a poll(2)
  // and a getpid(2) each). ZMQ_FD is edge-triggered: any send or receive on
  // a socket may consume its signal, so a socket is asked ZMQ_EVENTS before
  // the loop sleeps whenever it may hold a message the fd will not signal.
  // By default that is on every wake-up (the socket may be used anywhere:
  // the broker forwards from one socket's callback on another). With
  // `marks_use` the owner promises to call Used(socket) after every send or
  // receive outside the socket's own callback (Node does), and the socket is
  // asked only when its fd fired, its callback ran or it was Used().
  void AddZmqSocket(void* socket, Callback fn, bool marks_use = false);
  void RemoveZmqSocket(void* socket);
  // A socket added with marks_use was sent on or received from.
  void Used(void* socket);

  // A group of descriptors (e.g. ALSA's poll descriptors) polled together;
  // `fn` gets the group with revents filled when any of them is ready.
  GroupId AddPollGroup(std::vector<pollfd> fds, PollCallback fn);
  void RemovePollGroup(GroupId id);
  // One descriptor; fn(revents).
  GroupId AddFd(int fd, short events, std::function<void(short)> fn);

  // Timers. A periodic timer keeps its phase (no drift) but skips missed
  // periods rather than firing in a burst.
  TimerId AddTimer(std::chrono::nanoseconds period, Callback fn);
  TimerId AddOneShot(std::chrono::nanoseconds delay, Callback fn);
  void CancelTimer(TimerId id);
  size_t timers() const { return due_.size(); }  // armed (tests)

  // Runs fn on the loop thread soon. Bounded: returns false (and drops fn)
  // when kMaxPosted callbacks are already waiting.
  bool Post(Callback fn);
  static constexpr size_t kMaxPosted = 4096;

  // Runs until Stop(). Returns the number of wake-ups.
  void Run();
  // Polls once, waiting at most `max_wait` (for tests and benchmarks).
  void RunOnce(std::chrono::nanoseconds max_wait);
  void Stop();
  bool stopped() const { return stop_; }

  uint64_t wakeups() const { return wakeups_; }

 private:
  using DueMap = std::multimap<Clock::time_point, uint64_t>;
  struct Timer {
    std::chrono::nanoseconds period{0};  // 0 = one-shot
    Callback fn;
    DueMap::iterator due;  // its entry in due_
  };
  struct Group {
    std::vector<pollfd> fds;
    PollCallback fn;
  };
  struct Socket {
    Callback fn;
    int fd = -1;  // ZMQ_FD
    bool marks_use = false;
    bool ask = true;  // ask ZMQ_EVENTS before sleeping
  };
  void RunDue();
  void Drain();
  void RebuildPollSet();

  // The poll set is rebuilt only when sockets or fd groups change, so a
  // wake-up costs no allocation.
  bool dirty_ = true;
  std::vector<pollfd> items_;  // sockets' ZMQ_FD, groups, wake fd
  // items_ registered in an epoll instance (data = index), rebuilt from
  // scratch with the set: a wake-up then costs the kernel the ready
  // descriptors only, where poll(2) visits all ~15–18 of an actor's (its
  // ZeroMQ sockets, local stream connections, device, signals) every time.
  // -1: poll(2) (a descriptor epoll refuses, e.g. one listed twice).
  int epoll_fd_ = -1;
  std::vector<epoll_event> ready_;
  std::vector<std::pair<void*, Socket*>> item_socket_;  // per socket item
  std::vector<char> socket_ready_;                      // per socket item: ZMQ_POLLIN
  std::vector<std::pair<GroupId, size_t>> group_at_;    // first item of each group
  std::map<void*, Socket> sockets_;
  std::map<GroupId, Group> groups_;
  GroupId next_group_ = 1;
  std::map<TimerId, Timer> timers_;
  // When each timer is due. A cancelled timer leaves it at once: the poll
  // timeout is the first entry, and a stale one would wake the loop for
  // nothing (vb-control re-arms its dialog timer at every event).
  DueMap due_;
  TimerId next_timer_ = 1;
  int wake_fd_ = -1;  // eventfd for Post()/Stop()
  std::mutex posted_mu_;
  std::deque<Callback> posted_;
  std::atomic<bool> stop_{false};
  uint64_t wakeups_ = 0;
};

}  // namespace vb::bus
