// vb-sniff: the bus sniffer's command line.
//
//   vb-sniff COMMAND [TOPIC_PREFIX] [--config FILE | --endpoint E]
//            [--duration SEC] [--count N] [--json]
//
//   list     topics with their types, publishers and rates
//   echo     every message decoded, one line each (or JSON lines)
//   hz       messages per second per topic, every second
//   bw       bytes per second per topic, every second
//   drops    sequence gaps per publisher and topic, and malformed frames
//   latency  now − origin and now − publish per topic, p50/p99
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "bus/actor_main.h"
#include "tools/sniffer/printer.h"
#include "tools/sniffer/sniffer.h"

namespace {

using namespace vb;

struct Options {
  std::string command, prefix, config, endpoint;
  double duration = 0;  // 0 = until Ctrl-C (list: 2 s)
  uint64_t count = 0;
  bool json = false;
};

int Usage() {
  std::cerr << "usage: vb-sniff list|echo|hz|bw|drops|latency [TOPIC_PREFIX] [--config FILE | --endpoint E]\n"
               "                [--duration SEC] [--count N] [--json]\n";
  return 64;
}

// Output is batched: written when 32 KiB have gathered or by the 50 ms
// flush timer (and at exit), so echo costs no system call per message.
std::string g_out;
void Flush() {
  if (g_out.empty()) return;
  fwrite(g_out.data(), 1, g_out.size(), stdout);
  fflush(stdout);
  g_out.clear();
}
void Emit(const std::string& line) {
  g_out += line;
  if (g_out.size() >= 32768) Flush();
}

std::string Fixed(double v, int decimals = 1) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--config") o.config = next();
    else if (a == "--endpoint") o.endpoint = next();
    else if (a == "--duration") o.duration = std::atof(next().c_str());
    else if (a == "--count") o.count = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--json") o.json = true;
    else if (a == "-h" || a == "--help") return Usage(), 0;
    else if (a.rfind("--", 0) == 0) return Usage();
    else if (o.command.empty()) o.command = a;
    else if (o.prefix.empty()) o.prefix = a;
    else return Usage();
  }
  static const std::set<std::string> kCommands = {"list", "echo", "hz", "bw", "drops", "latency"};
  if (!kCommands.count(o.command)) return Usage();
  if (o.command == "list" && o.duration == 0) o.duration = 2;
  SetLogIdentity("sniff");

  bus::BusConfig bus;
  config::File file;
  Status st = o.config.empty() ? file.LoadString("{}", "(defaults)") : file.Load(o.config);
  auto report = file.NewReport();
  if (st.ok()) {
    auto s = file.Get("bus", report);
    bus.Declare(s);
    s.Finish();
    st = config::ToStatus(*report);
  }
  if (!st.ok()) {
    std::cerr << "vb-sniff: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  if (!o.endpoint.empty()) bus.endpoint = o.endpoint;
  // Reading in 20 ms batches: room for bursts in our receive queue.
  bus.stream_hwm = std::max(bus.stream_hwm, 20000);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

  zmq::context_t zctx(1);
  int rc = 0;
  {
    bus::Loop loop;
    bus::Node node(zctx, loop, "sniff-" + std::to_string(getpid()), "-", bus);
    sniff::Sniffer sniffer(node, o.prefix);
    uint64_t seen = 0;
    std::string line;
    bool decode = o.command == "echo";
    sniffer.Start(decode, [&](std::string_view topic, const v1::Header& h,
                              const google::protobuf::Message* payload, size_t bytes) {
      // Batched reads deliver several messages at once: stop at --count exactly.
      if (o.count && seen >= o.count) return;
      ++seen;
      if (o.command == "echo") {
        line.clear();
        if (o.json) {
          line += "{\"topic\":";
          sniff::AppendJsonString(topic, &line);
          line += ",\"header\":";
          sniff::AppendJson(h, &line);
          line += ",\"payload\":";
          if (payload) sniff::AppendJson(*payload, &line);
          else line += "null";
          line += "}\n";
        } else {
          line.append(topic);
          line += " #" + std::to_string(h.seq()) + " " + h.source();
          if (!h.turn_id().empty()) line += " turn=" + h.turn_id();
          line += " | ";
          if (payload) sniff::AppendText(*payload, &line);
          else line += "<undecodable " + h.type() + ", " + std::to_string(bytes) + " bytes>";
          line += "\n";
        }
        Emit(line);
      }
      if (o.count && seen >= o.count) loop.Stop();
    });
    // Only latency needs each message's arrival time; the rest read in
    // batches, so the sniffer's cost does not grow with every wake-up.
    if (o.command != "latency") {
      node.SetBatchInterval(std::chrono::milliseconds(20));
    }
    if (Status c = node.Connect(); !c.ok()) {
      std::cerr << "vb-sniff: " << c.message() << "\n";
      return 1;
    }
    loop.AddFd(sfd, POLLIN, [&](short) { loop.Stop(); });
    if (o.duration > 0)
      loop.AddOneShot(std::chrono::nanoseconds(int64_t(o.duration * 1e9)), [&] { loop.Stop(); });

    auto last = bus::Clock::now();
    auto report_window = [&](bool final) {
      double secs = std::chrono::duration<double>(bus::Clock::now() - last).count();
      last = bus::Clock::now();
      if (secs <= 0) secs = 1;
      std::string out;
      for (auto& [topic, s] : sniffer.topics()) {
        if (o.command == "hz") {
          double hz = s.window_messages / secs;
          out += o.json ? "{\"topic\":\"" + topic + "\",\"hz\":" + Fixed(hz, 2) + "}\n"
                        : topic + "  " + Fixed(hz, 2) + " Hz\n";
        } else if (o.command == "bw") {
          double bps = s.window_bytes / secs;
          double avg = s.window_messages ? double(s.window_bytes) / s.window_messages : 0;
          out += o.json ? "{\"topic\":\"" + topic + "\",\"bytes_per_s\":" + Fixed(bps, 0) + ",\"avg_bytes\":" + Fixed(avg, 0) + "}\n"
                        : topic + "  " + Fixed(bps / 1024.0, 2) + " KiB/s  avg " + Fixed(avg, 0) + " B\n";
        } else if (o.command == "latency") {
          auto& a = s.since_origin_us;
          auto& b = s.since_publish_us;
          if (o.json)
            out += "{\"topic\":\"" + topic + "\",\"origin_p50_us\":" + Fixed(a.Percentile(50)) + ",\"origin_p99_us\":" +
                   Fixed(a.Percentile(99)) + ",\"publish_p50_us\":" + Fixed(b.Percentile(50)) +
                   ",\"publish_p99_us\":" + Fixed(b.Percentile(99)) + ",\"n\":" + std::to_string(b.count()) + "}\n";
          else
            out += topic + "  origin p50 " + Fixed(a.Percentile(50)) + " p99 " + Fixed(a.Percentile(99)) +
                   " µs | publish p50 " + Fixed(b.Percentile(50)) + " p99 " + Fixed(b.Percentile(99)) + " µs (n=" +
                   std::to_string(b.count()) + ")\n";
        } else if (o.command == "list" && final) {
          std::string pubs;
          for (const auto& p : s.publishers) pubs += (pubs.empty() ? "" : ",") + p;
          double hz = s.messages / std::max(o.duration, 1e-3);
          out += o.json ? "{\"topic\":\"" + topic + "\",\"type\":\"" + s.type + "\",\"publishers\":\"" + pubs +
                              "\",\"hz\":" + Fixed(hz, 2) + "}\n"
                        : topic + "  " + s.type + "  " + Fixed(hz, 1) + " Hz  [" + pubs + "]\n";
        }
      }
      if (o.command == "drops") {
        for (const auto& r : sniffer.seq().Rows())
          out += o.json ? "{\"source\":\"" + r.source + "\",\"topic\":\"" + r.topic + "\",\"received\":" +
                              std::to_string(r.entry.received) + ",\"lost\":" + std::to_string(r.entry.lost) +
                              ",\"restarts\":" + std::to_string(r.entry.restarts) + "}\n"
                        : r.source + "  " + r.topic + "  received " + std::to_string(r.entry.received) + "  lost " +
                              std::to_string(r.entry.lost) + "  restarts " + std::to_string(r.entry.restarts) + "\n";
        out += o.json ? "{\"malformed\":" + std::to_string(sniffer.malformed()) + "}\n"
                      : "malformed frames: " + std::to_string(sniffer.malformed()) + "\n";
      }
      if (!out.empty()) Emit(out + (o.json || o.command == "list" ? "" : "--\n"));
      sniffer.ResetWindow();
    };
    if (o.command != "echo" && o.command != "list")
      loop.AddTimer(std::chrono::seconds(1), [&] { report_window(false); });
    loop.AddTimer(std::chrono::milliseconds(50), [] { Flush(); });
    loop.Run();
    if (o.command == "list" || o.command == "drops") report_window(true);
    Flush();
  }
  zctx.shutdown();
  close(sfd);
  return rc;
}
