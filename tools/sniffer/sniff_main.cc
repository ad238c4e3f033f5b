// vb-sniff: the bus sniffer's command line.
//
//   vb-sniff COMMAND [ARGS] [--config FILE | --endpoint E] [--json] …
//
//   list     topics with their types, publishers and rates
//   echo     every message decoded, one line each (or JSON lines), timestamped
//   hz       messages per second per topic, every second
//   bw       bytes per second per topic, every second
//   drops    sequence gaps per publisher and topic: changes as they happen
//   latency  now − origin and now − publish per topic, p50/p99 in ms
//   record   the bus (or some topics) into an MCAP file
//   replay   an MCAP recording into the live bus at its original pacing
//   info     topics, types, counts, duration and rates of a recording
//   recover  a recording cut short (kill -9, full disk) into a complete one
//   trace    per-turn waterfalls of a dialog's stages, live or from a recording
//
// `vb-sniff COMMAND --help` says more of each. Live commands that hear
// nothing for a few seconds say so, naming the endpoint and config watched.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "bus/actor_main.h"
#include "bus/devices.h"
#include "bus/signals.h"
#include "tools/sniffer/mcap_reader.h"
#include "tools/sniffer/offline.h"
#include "tools/sniffer/printer.h"
#include "tools/sniffer/recording.h"
#include "tools/sniffer/sniffer.h"
#include "tools/sniffer/trace.h"

namespace {

using namespace vb;
using namespace std::chrono_literals;

struct Options {
  std::string command, config, endpoint;
  std::vector<std::string> args;  // positional, after the command
  double duration = 0;            // 0 = until Ctrl-C (list: 2 s)
  uint64_t count = 0;
  bool json = false;
  double quiet_after = 3;  // seconds of silence before saying so
  // record
  double split_mb = 0;
  // replay
  double rate = 1;
  bool fast = false, loop = false;
  std::vector<std::string> topics;
  std::map<std::string, std::string> device_map;
};

const char* kUsage =
    "usage: vb-sniff COMMAND [ARGS] [--config FILE | --endpoint E] [--json]\n"
    "  list    [TOPIC_PREFIX] [--duration SEC]      topics, types, publishers, rates (2 s)\n"
    "  echo    [TOPIC_PREFIX] [--count N]           every message decoded, timestamped\n"
    "  hz | bw [TOPIC_PREFIX]                       messages / bytes per second per topic\n"
    "  drops   [TOPIC_PREFIX]                       sequence gaps and malformed frames, as they change\n"
    "  latency [TOPIC_PREFIX]                       now - origin, now - publish per topic, ms\n"
    "  record  FILE.mcap [TOPIC_PREFIX…] [--duration S] [--split-size MB]\n"
    "  replay  FILE.mcap [--rate R | --fast] [--loop] [--topics P,…] [--device-map A=B,…]\n"
    "  info    FILE.mcap                            topics, types, counts, duration, rates\n"
    "  recover IN.mcap OUT.mcap                     rewrite a recording cut short into a complete one\n"
    "  trace   [FILE.mcap]                          per-turn waterfall and response time, live or recorded\n"
    "common: --duration SEC (stop after), --quiet-after SEC (say so when nothing is heard; 3)\n"
    "`vb-sniff COMMAND --help` for one command.\n";

const std::map<std::string, std::string> kHelp = {
    {"list",
     "vb-sniff list [TOPIC_PREFIX] [--duration SEC (2)] [--json]\n"
     "Listens for SEC seconds, then prints each topic heard: type, rate, publishers.\n"},
    {"echo",
     "vb-sniff echo [TOPIC_PREFIX] [--count N] [--duration SEC] [--json]\n"
     "Prints every message, decoded, one per line: the publisher's time (local, ms), topic,\n"
     "#seq, source, turn, payload (bytes fields as their size). --json: one object per line\n"
     "with \"time\" (ISO 8601 UTC), \"header\" and \"payload\".\n"},
    {"hz", "vb-sniff hz [TOPIC_PREFIX] [--duration SEC] [--json]\nMessages per second per topic, every second.\n"},
    {"bw", "vb-sniff bw [TOPIC_PREFIX] [--duration SEC] [--json]\nBytes per second per topic, every second.\n"},
    {"drops",
     "vb-sniff drops [TOPIC_PREFIX] [--duration SEC] [--json]\n"
     "Prints a line when a publisher appears, loses messages (sequence gaps), restarts, or\n"
     "malformed frames arrive; the whole table when it stops.\n"},
    {"latency",
     "vb-sniff latency [TOPIC_PREFIX] [--duration SEC] [--json]\n"
     "Every second, per topic: p50/p99 of now - origin_ns (since the audio was captured)\n"
     "and now - mono_ns (since it was published), in milliseconds.\n"},
    {"record",
     "vb-sniff record FILE.mcap [TOPIC_PREFIX…] [--duration SEC] [--split-size MB] [--json]\n"
     "Records the bus (every topic, or those starting with a prefix) into MCAP: one channel\n"
     "per topic, one protobuf schema per payload type, zstd chunks closed at least once a\n"
     "second, so a recorder killed with -9 loses at most its last second (`vb-sniff recover`\n"
     "makes such a file complete). --split-size: start FILE-001.mcap, -002… at MB megabytes.\n"
     "Stops at --duration or Ctrl-C and prints what it recorded (--json: one object).\n"},
    {"replay",
     "vb-sniff replay FILE.mcap [--rate R | --fast] [--loop] [--topics P,…] [--device-map A=B,…]\n"
     "Publishes a recording into the live bus at the pacing of its publishers' stamps (R times\n"
     "faster; --fast: as fast as possible, stream messages beyond the high-water marks are\n"
     "dropped). Headers are restamped: mono_ns is the time of sending, origin_ns keeps its\n"
     "distance to it, seq counts from 1 per source and topic. --topics: only topics starting\n"
     "with these prefixes; --device-map kitchen=local: publish device kitchen's topics as\n"
     "local's. --loop: again from the start until Ctrl-C. --duration SEC: stop after SEC.\n"},
    {"info",
     "vb-sniff info FILE.mcap [--json]\nTopics, payload types, message counts, duration and rates of a recording\n"
     "(also of one cut short: it says so).\n"},
    {"trace",
     "vb-sniff trace [FILE.mcap] [--duration SEC] [--json]\n"
     "Per turn, its stages across processes as a waterfall (ms from the turn's first stage):\n"
     "wake or key, speech start/end (client VAD), server speech end, final transcript, turn\n"
     "started, first text, first audio, first and last sample at the speaker (audio.ref\n"
     "play_ns), interruption, end. Then the response time (speech end -> first reply sample\n"
     "at the speaker) and each stage's share. Stamps are the publishers'; turns are linked\n"
     "across the WebSocket by turn id. From FILE (a recording) or the live bus (a turn is\n"
     "printed once its audio has played; open turns at exit). --json: one object per turn.\n"},
    {"recover",
     "vb-sniff recover IN.mcap OUT.mcap\nCopies every complete chunk of IN (a recording cut short) into OUT, a "
     "complete\n"
     "MCAP file with summary and indexes.\n"},
};

int Usage() {
  std::cerr << kUsage;
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

// "HH:MM:SS.mmm" local time, or ISO 8601 UTC with µs for JSON.
std::string WallTime(int64_t wall_ns, bool iso) {
  time_t secs = time_t(wall_ns / 1'000'000'000);
  tm t{};
  char buf[64];
  if (iso) {
    gmtime_r(&secs, &t);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    snprintf(buf + n, sizeof buf - n, ".%06lldZ", (long long)(wall_ns % 1'000'000'000 / 1000));
  } else {
    localtime_r(&secs, &t);
    size_t n = strftime(buf, sizeof buf, "%H:%M:%S", &t);
    snprintf(buf + n, sizeof buf - n, ".%03lld", (long long)(wall_ns % 1'000'000'000 / 1'000'000));
  }
  return buf;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t comma = s.find(',', at);
    if (comma == std::string::npos) comma = s.size();
    if (comma > at) out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

// Loads the bus section; exit code (0 = ok).
int LoadBus(const Options& o, bus::BusConfig* bus) {
  if (Status st = bus::LoadBusSections(o.config, bus, nullptr); !st.ok()) {
    std::cerr << "vb-sniff: config error:\n" << st.message() << "\n";
    return kExitConfig;
  }
  if (!o.endpoint.empty()) bus->endpoint = o.endpoint;
  // Reading in 20 ms batches: room for bursts in our receive queue.
  bus->stream_hwm = std::max(bus->stream_hwm, 20000);
  return 0;
}

// What a user needs when nothing arrives: which bus, which config, which filter.
std::string NothingHeard(const Options& o, const bus::BusConfig& bus, const std::vector<std::string>& prefixes,
                         double secs) {
  std::string filter;
  for (const auto& p : prefixes)
    if (!p.empty()) filter += (filter.empty() ? " matching '" : "', '") + p;
  if (!filter.empty()) filter += "'";
  return "vb-sniff: no messages" + filter + " in " + Fixed(secs, 1) + " s on " + bus.endpoint +
         " (config: " + (o.config.empty() ? std::string("none, built-in defaults") : o.config) +
         (o.endpoint.empty() ? "" : ", --endpoint") +
         "). Is `vb run` up with this config? --config FILE or --endpoint E watch another bus.\n";
}

int Info(const Options& o) {
  if (o.args.size() != 1) return Usage();
  sniff::RecordingSummary s;
  if (Status st = sniff::SummarizeRecording(o.args[0], &s); !st.ok()) {
    std::cerr << "vb-sniff: " << st.message() << "\n";
    return 1;
  }
  std::cout << sniff::FormatSummary(o.args[0], s, o.json);
  return 0;
}

int Recover(const Options& o) {
  if (o.args.size() != 2) return Usage();
  if (o.args[0] == o.args[1]) {
    std::cerr << "vb-sniff: recover writes a new file: OUT must differ from IN\n";
    return 64;
  }
  std::string report;
  if (Status st = sniff::RecoverRecording(o.args[0], o.args[1], &report); !st.ok()) {
    std::cerr << "vb-sniff: " << st.message() << "\n";
    return 1;
  }
  std::cerr << report;
  return 0;
}

// Per-turn waterfalls of a recording.
int TraceFile(const Options& o) {
  if (o.args.size() != 1) return Usage();
  sniff::McapReader reader;
  if (Status st = reader.Open(o.args[0]); !st.ok()) {
    std::cerr << "vb-sniff: " << st.message() << "\n";
    return 1;
  }
  sniff::TurnTracer tracer(
      [&](const sniff::TurnTrace& t) { std::cout << (o.json ? sniff::TraceJson(t) : sniff::FormatTrace(t)); });
  uint64_t bad = 0;
  v1::Header h;
  sniff::McapReadReport report;
  reader.Read(
      [&](const sniff::McapMessage& m) {
        const std::string& topic = reader.channels().at(m.channel_id).topic;
        if (!sniff::TurnTracer::Wants(topic)) return true;
        std::string_view header, payload;
        if (!sniff::DecodeRecorded(m.data, &header, &payload) || !h.ParseFromArray(header.data(), int(header.size())))
          ++bad;
        else tracer.Add(topic, h, payload);
        return true;
      },
      &report);
  tracer.Finish();
  bad += tracer.malformed();
  if (!report.problems.empty()) std::cerr << report.problems;
  if (bad) std::cerr << "vb-sniff: " << bad << " messages could not be decoded\n";
  if (!tracer.turns()) std::cerr << "vb-sniff: no turn in " << o.args[0] << "\n";
  return 0;
}

// ---- live commands (list, echo, hz, bw, drops, latency, record, trace) ----

int Live(const Options& o, const bus::BusConfig& bus, int sfd) {
  const bool record = o.command == "record";
  std::vector<std::string> prefixes(record ? o.args.begin() + 1 : o.args.begin(), o.args.end());
  zmq::context_t zctx(1);
  int rc = 0;
  {
    bus::Loop loop;
    bus::Node node(zctx, loop, "sniff-" + std::to_string(getpid()), "-", bus);
    sniff::Sniffer sniffer(node, prefixes);
    const int64_t wall_offset = sniff::WallOffsetNs();
    const int64_t started = bus::MonoNs();

    std::unique_ptr<sniff::Recorder> recorder;
    Status record_error;
    if (record) {
      sniff::RecorderOptions ro;
      ro.split_bytes = uint64_t(o.split_mb * 1024 * 1024);
      ro.chunk_interval_ns = 900'000'000;  // + the 100 ms tick: closed within a second
      recorder = std::make_unique<sniff::Recorder>(ro);
      if (Status s = recorder->Open(o.args[0]); !s.ok()) {
        std::cerr << "vb-sniff: " << s.message() << "\n";
        return 1;
      }
    }

    uint64_t seen = 0;
    std::string line;
    bool decode = o.command == "echo";
    std::unique_ptr<sniff::TurnTracer> tracer;
    if (o.command == "trace")
      tracer = std::make_unique<sniff::TurnTracer>(
          [&](const sniff::TurnTrace& t) { Emit(o.json ? sniff::TraceJson(t) : sniff::FormatTrace(t)); });
    sniff::Sniffer::RawFn raw;
    if (record)
      raw = [&](bus::Plane plane, const bus::RawMessage& m, int64_t now) {
        if (!record_error.ok()) return;
        record_error = recorder->Record(plane, m, now);
        if (!record_error.ok()) loop.Stop();
      };
    if (tracer)
      raw = [&](bus::Plane, const bus::RawMessage& m, int64_t) {
        if (!m.header || !sniff::TurnTracer::Wants(m.topic)) return;
        tracer->Add(m.topic, *m.header, m.payload);
      };
    sniffer.Start(
        decode,
        [&](std::string_view topic, const v1::Header& h, const google::protobuf::Message* payload, size_t bytes) {
          if (o.command != "echo") return;
          // Batched reads deliver several messages at once: stop at --count exactly.
          if (o.count && seen >= o.count) return;
          ++seen;
          int64_t stamp = (h.mono_ns() > 0 ? h.mono_ns() : bus::MonoNs()) + wall_offset;
          line.clear();
          if (o.json) {
            line += "{\"topic\":";
            sniff::AppendJsonString(topic, &line);
            line += ",\"time\":\"" + WallTime(stamp, true) + "\",\"header\":";
            sniff::AppendJson(h, &line);
            line += ",\"payload\":";
            if (payload) sniff::AppendJson(*payload, &line);
            else line += "null";
            line += "}\n";
          } else {
            line += WallTime(stamp, false);
            line += ' ';
            line.append(topic);
            line += " #" + std::to_string(h.seq()) + " " + h.source();
            if (!h.turn_id().empty()) line += " turn=" + h.turn_id();
            line += " | ";
            if (payload) sniff::AppendText(*payload, &line);
            else line += "<undecodable " + h.type() + ", " + std::to_string(bytes) + " bytes>";
            line += "\n";
          }
          Emit(line);
          if (o.count && seen >= o.count) loop.Stop();
        },
        raw);
    // Only latency needs each message's arrival time; the rest read in
    // batches, so the sniffer's cost does not grow with every wake-up.
    if (o.command != "latency") node.SetBatchInterval(std::chrono::milliseconds(20));
    if (Status c = node.Connect(); !c.ok()) {
      std::cerr << "vb-sniff: " << c.message() << "\n";
      return 1;
    }
    loop.AddFd(sfd, POLLIN, [&](short) { loop.Stop(); });
    double duration = o.duration;
    if (o.command == "list" && duration == 0) duration = 2;
    if (duration > 0) loop.AddOneShot(std::chrono::nanoseconds(int64_t(duration * 1e9)), [&] { loop.Stop(); });
    // Silence is reported once, after quiet_after seconds (list: at its end).
    if (o.command != "list" && o.quiet_after > 0)
      loop.AddOneShot(std::chrono::nanoseconds(int64_t(o.quiet_after * 1e9)), [&] {
        if (sniffer.heard() == 0) {
          Flush();
          std::cerr << NothingHeard(o, bus, sniffer.prefixes(), o.quiet_after) << std::flush;
        }
      });
    if (record)
      loop.AddTimer(100ms, [&] {
        if (record_error.ok()) record_error = recorder->Tick();
        if (!record_error.ok()) loop.Stop();
      });

    std::map<std::pair<std::string, std::string>, bus::SeqTracker::Entry> drops_seen;
    uint64_t malformed_seen = 0;
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
          out += o.json ? "{\"topic\":\"" + topic + "\",\"bytes_per_s\":" + Fixed(bps, 0) +
                              ",\"avg_bytes\":" + Fixed(avg, 0) + "}\n"
                        : topic + "  " + Fixed(bps / 1024.0, 2) + " KiB/s  avg " + Fixed(avg, 0) + " B\n";
        } else if (o.command == "latency") {
          auto& a = s.since_origin_us;
          auto& b = s.since_publish_us;
          if (!b.count()) continue;
          auto ms = [](double us) { return Fixed(us / 1000.0, 2); };
          if (o.json)
            out += "{\"topic\":\"" + topic + "\",\"origin_p50_ms\":" + ms(a.Percentile(50)) +
                   ",\"origin_p99_ms\":" + ms(a.Percentile(99)) + ",\"publish_p50_ms\":" + ms(b.Percentile(50)) +
                   ",\"publish_p99_ms\":" + ms(b.Percentile(99)) + ",\"n\":" + std::to_string(b.count()) + "}\n";
          else
            out += topic + "  origin p50 " +
                   (a.count() ? ms(a.Percentile(50)) + " p99 " + ms(a.Percentile(99)) + " ms" : std::string("-")) +
                   " | publish p50 " + ms(b.Percentile(50)) + " p99 " + ms(b.Percentile(99)) +
                   " ms (n=" + std::to_string(b.count()) + ")\n";
        } else if (o.command == "list" && final) {
          std::string pubs;
          for (const auto& p : s.publishers) pubs += (pubs.empty() ? "" : ",") + p;
          double hz = s.messages / std::max(duration, 1e-3);
          out += o.json ? "{\"topic\":\"" + topic + "\",\"type\":\"" + s.type + "\",\"publishers\":\"" + pubs +
                              "\",\"hz\":" + Fixed(hz, 2) + "}\n"
                        : topic + "  " + s.type + "  " + Fixed(hz, 1) + " Hz  [" + pubs + "]\n";
        }
      }
      if (o.command == "drops") {
        // Each second only what changed; the whole table when stopping.
        std::string now = WallTime(bus::MonoNs() + wall_offset, o.json);
        for (const auto& r : sniffer.seq().Rows()) {
          auto key = std::make_pair(r.source, r.topic);
          auto it = drops_seen.find(key);
          bool fresh = it == drops_seen.end();
          uint64_t lost0 = fresh ? 0 : it->second.lost, restarts0 = fresh ? 0 : it->second.restarts;
          bool changed = fresh || r.entry.lost != lost0 || r.entry.restarts != restarts0;
          if (final || changed) {
            std::string what = final ? "total" : fresh ? "new publisher" : "changed";
            out += o.json ? "{\"time\":\"" + now + "\",\"event\":\"" + what + "\",\"source\":\"" + r.source +
                                "\",\"topic\":\"" + r.topic + "\",\"received\":" + std::to_string(r.entry.received) +
                                ",\"lost\":" + std::to_string(r.entry.lost) +
                                ",\"new_lost\":" + std::to_string(r.entry.lost - lost0) +
                                ",\"restarts\":" + std::to_string(r.entry.restarts) + "}\n"
                          : now + "  " + r.source + "  " + r.topic + "  " + what + ": received " +
                                std::to_string(r.entry.received) + "  lost " + std::to_string(r.entry.lost) +
                                (r.entry.lost != lost0 && !final ? " (+" + std::to_string(r.entry.lost - lost0) + ")"
                                                                 : "") +
                                "  restarts " + std::to_string(r.entry.restarts) + "\n";
          }
          drops_seen[key] = r.entry;
        }
        if (final || sniffer.malformed() != malformed_seen)
          out += o.json ? "{\"time\":\"" + now + "\",\"malformed\":" + std::to_string(sniffer.malformed()) + "}\n"
                        : now + "  malformed frames: " + std::to_string(sniffer.malformed()) + "\n";
        malformed_seen = sniffer.malformed();
      }
      if (!out.empty()) Emit(out + (o.json || o.command == "list" || o.command == "drops" ? "" : "--\n"));
      sniffer.ResetWindow();
    };
    if (o.command != "echo" && o.command != "list" && o.command != "trace" && !record)
      loop.AddTimer(std::chrono::seconds(1), [&] { report_window(false); });
    loop.AddTimer(std::chrono::milliseconds(50), [] { Flush(); });
    loop.Run();
    if (o.command == "list" || o.command == "drops") report_window(true);
    if (tracer) tracer->Finish();
    Flush();
    double listened = double(bus::MonoNs() - started) / 1e9;
    if (o.command == "list" && sniffer.heard() == 0) std::cerr << NothingHeard(o, bus, sniffer.prefixes(), listened);
    if (record) {
      Status closed = recorder->Close();
      if (record_error.ok()) record_error = closed;
      std::string out;
      if (o.json) {
        out = "{\"files\":[";
        for (size_t i = 0; i < recorder->files().size(); ++i) {
          if (i) out += ",";
          sniff::AppendJsonString(recorder->files()[i], &out);
        }
        out += "],\"messages\":" + std::to_string(recorder->messages()) +
               ",\"bytes\":" + std::to_string(recorder->bytes_written()) + ",\"seconds\":" + Fixed(listened, 3) +
               ",\"unknown_type\":" + std::to_string(recorder->unknown_type()) +
               ",\"malformed\":" + std::to_string(recorder->malformed()) +
               ",\"lost\":" + std::to_string(sniffer.seq().total_lost()) + ",\"topics\":{";
        bool first = true;
        for (const auto& [t, n] : recorder->per_topic()) {
          out += first ? "" : ",";
          first = false;
          sniff::AppendJsonString(t, &out);
          out += ":" + std::to_string(n);
        }
        out += "}}\n";
        std::cout << out;
      } else {
        std::cerr << "vb-sniff: recorded " << recorder->messages() << " messages on " << recorder->per_topic().size()
                  << " topics in " << Fixed(listened, 1) << " s into " << recorder->files().size() << " file(s), "
                  << recorder->bytes_written() << " bytes";
        for (const auto& f : recorder->files()) std::cerr << "\n  " << f;
        std::cerr << "\n";
        if (uint64_t lost = sniffer.seq().total_lost())
          std::cerr << "vb-sniff: " << lost
                    << " messages never reached the recorder (sequence gaps): the broker drops a "
                    << "slow subscriber's stream messages beyond bus.stream_hwm (e.g. a reply's burst of audio); "
                    << "raise it in the config for recordings that must be whole\n";
        if (recorder->unknown_type())
          std::cerr << "vb-sniff: " << recorder->unknown_type() << " messages of payload types this build does not know"
                    << " (or not their topic's type) were not recorded\n";
      }
      if (!record_error.ok()) {
        std::cerr << "vb-sniff: recording failed: " << record_error.message() << "\n";
        rc = 1;
      }
    }
  }
  zctx.shutdown();
  return rc;
}

// ---- replay --------------------------------------------------------------

struct ReplayItem {
  uint16_t channel;
  int64_t stamp;  // pacing key: the publisher's mono_ns (or log time)
  std::string header, payload;
};
struct ReplayChannel {
  bus::Plane plane = bus::Plane::kControl;
  std::string topic;  // after --device-map
  std::string from_device, to_device;
  bool wanted = true;
};

int Replay(const Options& o, const bus::BusConfig& bus, int sfd) {
  if (o.args.size() != 1 || o.rate <= 0) return Usage();
  sniff::McapReader reader;
  if (Status s = reader.Open(o.args[0]); !s.ok()) {
    std::cerr << "vb-sniff: " << s.message() << "\n";
    return 1;
  }
  // Read it all first: pacing must not wait on decompression.
  std::vector<ReplayItem> items;
  uint64_t undecodable = 0;
  v1::Header h;
  sniff::McapReadReport report;
  reader.Read(
      [&](const sniff::McapMessage& m) {
        std::string_view header, payload;
        if (!sniff::DecodeRecorded(m.data, &header, &payload) || !h.ParseFromArray(header.data(), int(header.size()))) {
          ++undecodable;
          return true;
        }
        items.push_back({m.channel_id, h.mono_ns() > 0 ? h.mono_ns() : int64_t(m.log_time), std::string(header),
                         std::string(payload)});
        return true;
      },
      &report);
  if (!report.problems.empty()) std::cerr << "vb-sniff: " << o.args[0] << ": " << report.problems;
  std::map<uint16_t, ReplayChannel> channels;
  for (const auto& [id, ch] : reader.channels()) {
    ReplayChannel rc;
    auto plane = ch.metadata.find("plane");
    rc.plane = plane != ch.metadata.end() && plane->second == "stream" ? bus::Plane::kStream : bus::Plane::kControl;
    rc.topic = ch.topic;
    if (!o.topics.empty()) {
      rc.wanted = false;
      for (const auto& p : o.topics) rc.wanted |= ch.topic.rfind(p, 0) == 0;
    }
    auto slash = ch.topic.find('/');
    if (slash != std::string::npos) {
      auto map = o.device_map.find(ch.topic.substr(slash + 1));
      if (map != o.device_map.end()) {
        rc.from_device = map->first;
        rc.to_device = map->second;
        rc.topic = ch.topic.substr(0, slash + 1) + map->second;
      }
    }
    channels[id] = rc;
  }
  std::erase_if(items, [&](const ReplayItem& i) { return !channels[i.channel].wanted; });
  if (items.empty()) {
    std::cerr << "vb-sniff: " << o.args[0] << " has no messages" << (o.topics.empty() ? "" : " on those topics")
              << " to replay\n";
    return 1;
  }

  zmq::context_t zctx(1);
  {
    bus::Loop loop;
    bus::Node node(zctx, loop, "replay-" + std::to_string(getpid()), "-", bus);
    if (Status c = node.Connect(); !c.ok()) {
      std::cerr << "vb-sniff: " << c.message() << "\n";
      return 1;
    }
    loop.AddFd(sfd, POLLIN, [&](short) { loop.Stop(); });
    // A publisher drops what nobody has subscribed to yet: wait (bounded)
    // until the bus's subscriptions for the recorded topics reach us.
    auto anyone = [&] {
      for (const auto& [id, c] : channels)
        if (c.wanted && node.HasSubscriber(c.plane, c.topic)) return true;
      return false;
    };
    auto deadline = bus::Clock::now() + 3s;
    while (!anyone() && !loop.stopped() && bus::Clock::now() < deadline) loop.RunOnce(50ms);
    if (!anyone())
      std::cerr << "vb-sniff: nobody on " << bus.endpoint
                << " subscribes to the recorded topics (yet); replaying anyway\n";

    std::map<std::pair<std::string, std::string>, uint64_t> seqs;  // (source, topic) → last seq sent
    std::vector<std::string> frames(3);
    size_t next = 0;
    uint64_t sent = 0, send_failed = 0, loops = 0;
    const int64_t first_stamp = items.front().stamp;
    int64_t base = bus::MonoNs();  // replay time of first_stamp (this pass)
    int64_t last_target = base;
    const int64_t replay_start = base;
    auto target_of = [&](const ReplayItem& it) { return base + int64_t(double(it.stamp - first_stamp) / o.rate); };
    std::function<void()> pump = [&] {
      int64_t now = bus::MonoNs();
      int burst = 0;
      while (!loop.stopped()) {
        if (next == items.size()) {
          if (!o.loop) {
            loop.Stop();
            return;
          }
          ++loops;
          next = 0;
          base = last_target + 20'000'000;  // the next pass starts one frame after the last message
        }
        const ReplayItem& it = items[next];
        int64_t target = o.fast ? now : std::max(target_of(it), last_target);
        if (!o.fast && target > now) {
          loop.AddOneShot(std::chrono::nanoseconds(target - now), pump);
          return;
        }
        if (o.fast && ++burst > 64) {  // let the loop (and Ctrl-C) breathe
          loop.AddOneShot(1ms, pump);
          return;
        }
        last_target = target;
        const ReplayChannel& ch = channels[it.channel];
        h.ParseFromArray(it.header.data(), int(it.header.size()));
        int64_t stamp = bus::MonoNs();
        if (h.origin_ns() > 0) h.set_origin_ns(stamp - (h.mono_ns() - h.origin_ns()));
        h.set_mono_ns(stamp);
        if (!ch.to_device.empty() && h.device() == ch.from_device) h.set_device(ch.to_device);
        h.set_seq(++seqs[{h.source(), ch.topic}]);
        frames[0] = ch.topic;
        h.SerializeToString(&frames[1]);
        frames[2] = it.payload;
        if (node.SendRaw(ch.plane, frames)) ++sent;
        else ++send_failed;
        ++next;
      }
    };
    loop.Post(pump);
    if (o.duration > 0) loop.AddOneShot(std::chrono::nanoseconds(int64_t(o.duration * 1e9)), [&] { loop.Stop(); });
    loop.Run();
    // Let what was queued reach the broker before the sockets close.
    double secs = double(bus::MonoNs() - replay_start) / 1e9;
    std::cerr << "vb-sniff: replayed " << sent << " messages in " << Fixed(secs, 1) << " s"
              << (loops ? " (" + std::to_string(loops) + " loops)" : std::string()) << "\n";
    if (send_failed) std::cerr << "vb-sniff: " << send_failed << " could not be sent\n";
    if (undecodable) std::cerr << "vb-sniff: " << undecodable << " recorded messages were not voicebus messages\n";
  }
  zctx.close();  // linger: queued messages are delivered before it returns
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_next = i + 1 < argc;
    auto next = [&]() -> std::string { return has_next ? argv[++i] : ""; };
    auto number = [&](double* out) {
      std::string v = next();
      char* end = nullptr;
      *out = std::strtod(v.c_str(), &end);
      if (v.empty() || *end) {
        std::cerr << "vb-sniff: " << a << " needs a number, not '" << v << "'\n";
        return false;
      }
      return true;
    };
    double n = 0;
    if (a == "--config") o.config = next();
    else if (a == "--endpoint") o.endpoint = next();
    else if (a == "--duration") {
      if (!number(&o.duration)) return 64;
    } else if (a == "--quiet-after") {
      if (!number(&o.quiet_after)) return 64;
    } else if (a == "--count") {
      if (!number(&n)) return 64;
      o.count = uint64_t(n);
    } else if (a == "--split-size") {
      if (!number(&o.split_mb) || o.split_mb < 0) return 64;
    } else if (a == "--rate") {
      if (!number(&o.rate) || o.rate <= 0) return std::cerr << "vb-sniff: --rate must be > 0\n", 64;
    } else if (a == "--fast") o.fast = true;
    else if (a == "--loop") o.loop = true;
    else if (a == "--topics")
      for (auto& t : SplitList(next())) o.topics.push_back(t);
    else if (a == "--device-map") {
      for (const auto& pair : SplitList(next())) {
        auto eq = pair.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
          std::cerr << "vb-sniff: --device-map wants FROM=TO, not '" << pair << "'\n";
          return 64;
        }
        o.device_map[pair.substr(0, eq)] = pair.substr(eq + 1);
      }
    } else if (a == "--json") o.json = true;
    else if (a == "-h" || a == "--help") help = true;
    else if (a.rfind("--", 0) == 0) return std::cerr << "vb-sniff: unknown option " << a << "\n", Usage();
    else if (o.command.empty()) o.command = a;
    else o.args.push_back(a);
  }
  if (help) {
    auto h = kHelp.find(o.command);
    std::cout << (h != kHelp.end() ? h->second : kUsage);
    return 0;
  }
  static const std::set<std::string> kLive = {"list", "echo", "hz", "bw", "drops", "latency", "record", "trace"};
  if (o.command == "info") return Info(o);
  if (o.command == "trace" && !o.args.empty()) return TraceFile(o);
  if (o.command == "recover") return Recover(o);
  if (!kLive.count(o.command) && o.command != "replay") return Usage();
  if (o.command == "record" && o.args.empty()) return std::cerr << kHelp.at("record"), 64;
  if (kLive.count(o.command) && o.command != "record" && o.args.size() > 1) return Usage();
  SetLogIdentity("sniff");
  bus::BusConfig bus;
  if (int rc = LoadBus(o, &bus)) return rc;
  StopSignals signals;
  return o.command == "replay" ? Replay(o, bus, signals.fd()) : Live(o, bus, signals.fd());
}
