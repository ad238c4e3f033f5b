// vb-bus-floor: what the speaking pipeline's bus traffic alone costs in CPU
// on this machine, with bare libzmq and no work in any process: the floor
// under vb-e2e-bench's cpu figure (issue 18 item 6).
//
// Seven processes play the actors' parts of the traffic while the agent
// speaks, at the same rates and fan-out (vb-sniff hz during vb-e2e-bench,
// 2026-12-07): capture publishes audio.mic every 20 ms; afe turns each into
// audio.clean; wakevad, control and session read audio.clean; session sends
// a session.audio packet every 60 ms; decoder turns each into three
// audio.out frames; playback reads them and publishes audio.ref every 20 ms
// for afe. 217 messages and 317 deliveries a second, 640-byte frames.
//
//   broker  every process connects to an XSUB⇄XPUB proxy (zmq_proxy, in its
//           own process), as voicebus's bus does (vb-broker adds its checks);
//   direct  each publisher binds its own ipc:// endpoint and its readers
//           connect to it: no proxy, one hop;
//   datagram  no ZeroMQ: each reader has a unix datagram socket and each
//           publisher sends every message to each of its readers (one
//           kernel wake-up per delivery, no I/O threads): about what any
//           same-host transport that wakes its reader per message costs,
//           shared memory with a futex included.
//
// CPU: user + system time of every process (all threads, /proc/PID/stat)
// over the measured window, in % of one core; the modes alternate run by
// run, so all see the same machine. Prints one JSON object:
//   build/bin/vb-bus-floor [--seconds 10] [--runs 3] [--out FILE]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Role {
  const char* name;
  std::vector<std::string> reads;  // topics
  const char* every_topic;         // published on its own clock (nullptr: none)
  int every_ms;
  const char* on_read_topic;  // published for each message read of `on_read_from`
  const char* on_read_from;
  int on_read_count;
  int size;  // bytes of each message it publishes
};

// Who publishes what, who reads it (the speaking pipeline's audio traffic).
const std::vector<Role> kRoles = {
    {"capture", {}, "audio.mic", 20, nullptr, nullptr, 0, 640},
    {"afe", {"audio.mic", "audio.ref"}, nullptr, 0, "audio.clean", "audio.mic", 1, 640},
    {"wakevad", {"audio.clean"}, nullptr, 0, nullptr, nullptr, 0, 0},
    {"control", {"audio.clean"}, nullptr, 0, nullptr, nullptr, 0, 0},
    {"session", {"audio.clean"}, "session.audio", 60, nullptr, nullptr, 0, 120},
    {"decoder", {"session.audio"}, nullptr, 0, "audio.out", "session.audio", 3, 640},
    {"playback", {"audio.out"}, "audio.ref", 20, nullptr, nullptr, 0, 640},
};

const char* Publisher(const std::string& topic) {
  for (const auto& r : kRoles)
    if ((r.every_topic && topic == r.every_topic) || (r.on_read_topic && topic == r.on_read_topic)) return r.name;
  return nullptr;
}

// Messages this process has read; written to <dir>/<name>.reads when it is
// told to stop (SIGTERM), so each run shows that every mode delivered.
volatile sig_atomic_t g_reads = 0;
char g_reads_path[200];
void WriteReads(int) {
  char text[24];
  int n = 0;
  long v = g_reads;
  char rev[24];
  do rev[n++] = char('0' + v % 10), v /= 10;
  while (v);
  for (int i = 0; i < n; ++i) text[i] = rev[n - 1 - i];
  int fd = open(g_reads_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ssize_t w = write(fd, text, size_t(n));
    (void)w;
    close(fd);
  }
  _exit(0);
}
void CountReadsTo(const std::string& dir, const char* name) {
  std::snprintf(g_reads_path, sizeof g_reads_path, "%s/%s.reads", dir.c_str(), name);
  signal(SIGTERM, WriteReads);
}

int64_t MonoNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// A part's own clock: how long it may wait for input, and whether its
// periodic message is due (then the next one is scheduled).
struct Pacer {
  explicit Pacer(const Role& role) : r(role), next(MonoNs() + Period()) {}
  int64_t Period() const { return int64_t(r.every_ms) * 1'000'000; }
  int TimeoutMs() const {
    return r.every_topic ? int(std::max<int64_t>(0, (next - MonoNs() + 999'999) / 1'000'000)) : -1;
  }
  bool Due() {
    if (!r.every_topic || MonoNs() < next) return false;
    next += Period();
    return true;
  }
  const Role& r;
  int64_t next;
};

// A message read: counted, and answered when it is the part's input.
template <class Send>
void OnRead(const Role& r, bool is_input, Send send) {
  g_reads = g_reads + 1;
  if (is_input)
    for (int i = 0; i < r.on_read_count; ++i) send();
}

// Messages a second on `topic`, from the table: a periodic publisher's
// rate, or its input's rate times the messages each one makes.
double TopicRate(const std::string& topic) {
  for (const auto& r : kRoles) {
    if (r.every_topic && topic == r.every_topic) return 1000.0 / r.every_ms;
    if (r.on_read_topic && topic == r.on_read_topic) return TopicRate(r.on_read_from) * r.on_read_count;
  }
  return 0;
}
// What the table makes a second: messages published, and deliveries (each
// message once per part that reads its topic).
double MessagesPerSecond() {
  double n = 0;
  for (const auto& r : kRoles)
    for (const char* t : {r.every_topic, r.on_read_topic})
      if (t) n += TopicRate(t);
  return n;
}
double DeliveriesPerSecond() {
  double n = 0;
  for (const auto& r : kRoles)
    for (const auto& t : r.reads) n += TopicRate(t);
  return n;
}

enum class Mode { kBroker, kDirect, kDatagram };
const char* ModeName(Mode m) { return m == Mode::kBroker ? "broker" : m == Mode::kDirect ? "direct" : "datagram"; }

sockaddr_un DatagramAddress(const std::string& dir, const char* name) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s/%s.dgram", dir.c_str(), name);
  return a;
}

// The same part without ZeroMQ: a unix datagram socket to read, sendto()
// to each reader of a topic.
[[noreturn]] void RunDatagramRole(const Role& r, const std::string& dir) {
  CountReadsTo(dir, r.name);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un self = DatagramAddress(dir, r.name);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof self) != 0) _exit(1);
  auto readers = [&](const char* topic) {
    std::vector<sockaddr_un> to;
    for (const auto& other : kRoles)
      if (std::find(other.reads.begin(), other.reads.end(), topic) != other.reads.end())
        to.push_back(DatagramAddress(dir, other.name));
    return to;
  };
  const std::vector<sockaddr_un> every_to = r.every_topic ? readers(r.every_topic) : std::vector<sockaddr_un>{};
  const std::vector<sockaddr_un> on_read_to = r.on_read_topic ? readers(r.on_read_topic) : std::vector<sockaddr_un>{};
  std::string frame(size_t(std::max(r.size, 1)) + 16, '\x11');
  auto send = [&](const char* topic, const std::vector<sockaddr_un>& to) {
    std::memcpy(frame.data(), topic, std::min<size_t>(strlen(topic) + 1, 16));
    for (const auto& a : to)
      sendto(fd, frame.data(), frame.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  };
  Pacer pacer(r);
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, pacer.TimeoutMs()) < 0) _exit(1);
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
      OnRead(r, r.on_read_from && std::strncmp(buf, r.on_read_from, 16) == 0,
             [&] { send(r.on_read_topic, on_read_to); });
    if (pacer.Due()) send(r.every_topic, every_to);
  }
}

[[noreturn]] void RunRole(const Role& r, bool direct, const std::string& dir) {
  CountReadsTo(dir, r.name);
  void* ctx = zmq_ctx_new();
  void* pub = zmq_socket(ctx, ZMQ_PUB);
  void* sub = zmq_socket(ctx, ZMQ_SUB);
  int hwm = 1000;
  zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
  if (direct) {
    zmq_bind(pub, ("ipc://" + dir + "/" + r.name).c_str());
    std::vector<std::string> peers;
    for (const auto& t : r.reads)
      if (const char* p = Publisher(t); p && std::find(peers.begin(), peers.end(), p) == peers.end())
        peers.push_back(p);
    for (const auto& p : peers) zmq_connect(sub, ("ipc://" + dir + "/" + p).c_str());
  } else {
    zmq_connect(pub, ("ipc://" + dir + "/in").c_str());
    zmq_connect(sub, ("ipc://" + dir + "/out").c_str());
  }
  for (const auto& t : r.reads) zmq_setsockopt(sub, ZMQ_SUBSCRIBE, t.data(), t.size());
  std::string frame(size_t(std::max(r.size, 1)), '\x11');
  auto send = [&](const char* topic) {
    zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE);
    zmq_send(pub, frame.data(), frame.size(), ZMQ_DONTWAIT);
  };
  Pacer pacer(r);
  char buf[4096];
  for (;;) {
    zmq_pollitem_t item{sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, pacer.TimeoutMs()) < 0) _exit(1);
    int n;
    while ((n = zmq_recv(sub, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0) {
      std::string topic(buf, size_t(std::min<int>(n, int(sizeof buf))));
      int more = 0;
      size_t len = sizeof more;
      zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &len);
      if (more) zmq_recv(sub, buf, sizeof buf, 0);
      OnRead(r, r.on_read_from && topic == r.on_read_from, [&] { send(r.on_read_topic); });
    }
    if (pacer.Due()) send(r.every_topic);
  }
}

[[noreturn]] void RunProxy(const std::string& dir) {
  void* ctx = zmq_ctx_new();
  void* xsub = zmq_socket(ctx, ZMQ_XSUB);
  void* xpub = zmq_socket(ctx, ZMQ_XPUB);
  zmq_bind(xsub, ("ipc://" + dir + "/in").c_str());
  zmq_bind(xpub, ("ipc://" + dir + "/out").c_str());
  zmq_proxy(xsub, xpub, nullptr);
  _exit(0);
}

// user + system ticks of the process (all its threads).
long long CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) {
      stime = std::atoll(field.c_str());
      break;
    }
  }
  return utime + stime;
}

volatile sig_atomic_t g_interrupted = 0;

// Sleeps `seconds`; false when Ctrl-C (or SIGTERM) came meanwhile.
bool Sleep(double seconds) {
  timespec left{time_t(seconds), long((seconds - double(time_t(seconds))) * 1e9)};
  while (nanosleep(&left, &left) != 0)
    if (g_interrupted) return false;
  return !g_interrupted;
}

// A child that outlives the bench (killed, Ctrl-C) goes with it.
pid_t ForkChild() {
  const pid_t parent = getpid();
  pid_t p = fork();
  if (p == 0) {
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
  }
  return p;
}

// One run: returns % of one core of every process together, and per process
// (null when interrupted: its processes and folder are gone then).
nlohmann::json RunOnce(Mode mode, double seconds) {
  char tmpl[] = "/tmp/vb-bus-floor.XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::map<std::string, pid_t> pids;
  if (mode == Mode::kBroker) {
    pid_t p = ForkChild();
    if (p == 0) RunProxy(dir);
    pids["broker"] = p;
  }
  for (const auto& r : kRoles) {
    pid_t p = ForkChild();
    if (p == 0) {
      if (mode == Mode::kDatagram) RunDatagramRole(r, dir);
      RunRole(r, mode == Mode::kDirect, dir);
    }
    pids[r.name] = p;
  }
  auto stop = [&] {
    for (const auto& [name, pid] : pids) kill(pid, SIGKILL);
    for (const auto& [name, pid] : pids) waitpid(pid, nullptr, 0);
    std::filesystem::remove_all(dir);
  };
  // Connections and subscriptions settle (ipc connects retry every 100 ms).
  if (!Sleep(1.0)) return stop(), nlohmann::json();
  std::map<std::string, long long> start;
  for (const auto& [name, pid] : pids) start[name] = CpuTicks(pid);
  const int64_t t0 = MonoNs();
  if (!Sleep(seconds)) return stop(), nlohmann::json();
  const double elapsed = double(MonoNs() - t0) / 1e9;
  const double tick = double(sysconf(_SC_CLK_TCK));
  nlohmann::json per = nlohmann::json::object();
  double all = 0;
  for (const auto& [name, pid] : pids) {
    double pct = 100.0 * double(CpuTicks(pid) - start[name]) / tick / elapsed;
    per[name] = pct;
    all += pct;
  }
  for (const auto& [name, pid] : pids) kill(pid, name == "broker" ? SIGKILL : SIGTERM);
  for (const auto& [name, pid] : pids) waitpid(pid, nullptr, 0);
  // What each reader got over the settle time and the window: a mode that
  // did not deliver shows here, not as a cheap figure.
  long long reads = 0;
  for (const auto& r : kRoles) {
    std::ifstream in(dir + "/" + r.name + ".reads");
    long long n = 0;
    in >> n;
    reads += n;
  }
  const double expected = DeliveriesPerSecond() * (elapsed + 1.0);  // settle + window
  std::filesystem::remove_all(dir);
  return {{"all_processes", all},
          {"per_process", per},
          {"deliveries", reads},
          {"deliveries_of_expected", double(reads) / expected}};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  int runs = 3;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--seconds" || a == "--runs" || a == "--out") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--seconds") seconds = std::atof(v.c_str());
      else if (a == "--runs") runs = std::atoi(v.c_str());
      else out = v;
    } else {
      const bool help = a == "--help" || a == "-h";  // asked: stdout; a wrong argument: stderr
      std::fprintf(help ? stdout : stderr,
                   "usage: vb-bus-floor [--seconds S (10)] [--runs N (3)] [--out FILE]\n"
                   "  CPU of the speaking pipeline's bus traffic alone (bare libzmq, seven processes,\n"
                   "  no work in them): through an XSUB/XPUB proxy, publisher to reader directly, and\n"
                   "  without ZeroMQ (unix datagrams, one wake-up per delivery).\n"
                   "  Prints one JSON object.\n");
      return help ? 0 : 2;
    }
  }
  if (seconds <= 0 || runs <= 0) {
    std::fprintf(stderr, "vb-bus-floor: --seconds and --runs must be positive\n");
    return 2;
  }
  signal(SIGCHLD, SIG_DFL);
  struct sigaction on_stop {};
  on_stop.sa_handler = [](int) { g_interrupted = 1; };
  sigaction(SIGINT, &on_stop, nullptr);
  sigaction(SIGTERM, &on_stop, nullptr);
  std::ofstream out_file;
  if (!out.empty()) {
    out_file.open(out);
    if (!out_file) {
      std::fprintf(stderr, "vb-bus-floor: cannot write %s: %s\n", out.c_str(), std::strerror(errno));
      return 1;
    }
  }
  nlohmann::json result;
  std::map<Mode, std::vector<double>> all;
  for (int i = 0; i < runs; ++i)
    for (Mode m : {Mode::kBroker, Mode::kDirect, Mode::kDatagram}) {
      std::fprintf(stderr, "vb-bus-floor: run %d of %d, %s (%.0f s)\n", i + 1, runs, ModeName(m), seconds);
      nlohmann::json r = RunOnce(m, seconds);
      if (r.is_null()) {
        std::fprintf(stderr, "vb-bus-floor: interrupted; its processes are stopped, nothing printed\n");
        return 130;
      }
      all[m].push_back(r["all_processes"].get<double>());
      result[ModeName(m)]["runs"].push_back(r);
    }
  for (auto& [m, v] : all) result[ModeName(m)]["median_percent"] = Median(v);
  const double broker = Median(all[Mode::kBroker]);
  result["direct_over_broker"] = broker > 0 ? Median(all[Mode::kDirect]) / broker : 0;
  result["datagram_over_broker"] = broker > 0 ? Median(all[Mode::kDatagram]) / broker : 0;
  result["messages_per_s"] = MessagesPerSecond();
  result["deliveries_per_s"] = DeliveriesPerSecond();
  result["seconds"] = seconds;
  result["note"] =
      "CPU seconds (user + sys, all threads) per second of the window, % of one core; bare libzmq, no work done: "
      "the bus floor under vb-e2e-bench's speaking figure";
  std::string text = result.dump(2) + "\n";
  std::fputs(text.c_str(), stdout);
  if (out_file.is_open() && !(out_file << text).flush()) {
    std::fprintf(stderr, "vb-bus-floor: cannot write %s\n", out.c_str());
    return 1;
  }
  return 0;
}
