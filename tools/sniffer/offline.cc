// info and recover on recordings (see offline.h).
#include "tools/sniffer/offline.h"

#include <cstdio>

#include "tools/sniffer/mcap_reader.h"
#include "tools/sniffer/mcap_writer.h"
#include "tools/sniffer/printer.h"

namespace vb::sniff {

Status SummarizeRecording(const std::string& path, RecordingSummary* out) {
  McapReader reader;
  if (Status s = reader.Open(path); !s.ok()) return s;
  McapReadReport report;
  *out = RecordingSummary{};
  Status s = reader.Read(
      [&](const McapMessage& m) {
        auto& c = out->channels[m.channel_id];
        if (!c.messages++) c.first_ns = m.log_time;
        c.first_ns = std::min(c.first_ns, m.log_time);
        c.last_ns = std::max(c.last_ns, m.log_time);
        if (!out->messages++) out->first_ns = m.log_time;
        out->first_ns = std::min(out->first_ns, m.log_time);
        out->last_ns = std::max(out->last_ns, m.log_time);
        return true;
      },
      &report);
  if (!s.ok()) return s;
  for (const auto& [id, ch] : reader.channels()) {
    auto& c = out->channels[id];
    c.topic = ch.topic;
    auto t = ch.metadata.find("payload_type");
    auto schema = reader.schemas().find(ch.schema_id);
    c.type = t != ch.metadata.end() ? t->second : schema != reader.schemas().end() ? schema->second.name : "";
  }
  out->chunks = report.chunks;
  out->bad_chunks = report.bad_chunks;
  out->bytes = report.bytes;
  out->truncated_bytes = report.truncated_bytes;
  out->has_footer = report.has_footer;
  out->problems = report.problems;
  return Status::Ok();
}

namespace {
std::string Num(double v, int decimals) {
  char b[48];
  snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}
double Rate(uint64_t n, uint64_t first, uint64_t last) {
  return n > 1 && last > first ? double(n - 1) * 1e9 / double(last - first) : 0;
}
}  // namespace

std::string FormatSummary(const std::string& path, const RecordingSummary& s, bool json) {
  double duration = s.last_ns > s.first_ns ? double(s.last_ns - s.first_ns) / 1e9 : 0;
  std::string out;
  if (json) {
    out += "{\"file\":";
    AppendJsonString(path, &out);
    out += ",\"bytes\":" + std::to_string(s.bytes) + ",\"complete\":" + (s.has_footer ? "true" : "false") +
           ",\"truncated_bytes\":" + std::to_string(s.truncated_bytes) + ",\"chunks\":" + std::to_string(s.chunks) +
           ",\"bad_chunks\":" + std::to_string(s.bad_chunks) + ",\"messages\":" + std::to_string(s.messages) +
           ",\"start_ns\":" + std::to_string(s.first_ns) + ",\"end_ns\":" + std::to_string(s.last_ns) +
           ",\"duration_s\":" + Num(duration, 3) + ",\"topics\":[";
    bool first = true;
    for (const auto& [id, c] : s.channels) {
      out += first ? "" : ",";
      first = false;
      out += "{\"topic\":";
      AppendJsonString(c.topic, &out);
      out += ",\"type\":";
      AppendJsonString(c.type, &out);
      out += ",\"messages\":" + std::to_string(c.messages) +
             ",\"hz\":" + Num(Rate(c.messages, c.first_ns, c.last_ns), 2) + "}";
    }
    out += "],\"problems\":";
    AppendJsonString(s.problems, &out);
    out += "}\n";
    return out;
  }
  out += path + ": " + std::to_string(s.messages) + " messages, " + Num(duration, 1) + " s, " +
         std::to_string(s.channels.size()) + " topics, " + std::to_string(s.chunks) + " chunks, " +
         std::to_string(s.bytes) + " bytes" + (s.has_footer ? "" : " (no summary: cut short)") + "\n";
  size_t width = 5;
  for (const auto& [id, c] : s.channels) width = std::max(width, c.topic.size());
  char line[512];
  snprintf(line, sizeof line, "  %-*s  %-24s %9s %10s\n", int(width), "topic", "type", "messages", "rate");
  out += line;
  for (const auto& [id, c] : s.channels) {
    snprintf(line, sizeof line, "  %-*s  %-24s %9llu %7.1f Hz\n", int(width), c.topic.c_str(), c.type.c_str(),
             (unsigned long long)c.messages, Rate(c.messages, c.first_ns, c.last_ns));
    out += line;
  }
  if (!s.problems.empty()) out += "problems:\n" + s.problems;
  return out;
}

Status RecoverRecording(const std::string& in, const std::string& out, std::string* report_text) {
  McapReader reader;
  if (Status s = reader.Open(in); !s.ok()) return s;
  McapWriter writer;
  if (Status s = writer.Open(out); !s.ok()) return s;
  std::map<uint16_t, uint16_t> schema_map, channel_map;  // theirs → ours
  Status werr;
  McapReadReport report;
  reader.Read(
      [&](const McapMessage& m) {
        auto c = channel_map.find(m.channel_id);
        if (c == channel_map.end()) {
          const McapChannel& ch = reader.channels().at(m.channel_id);
          uint16_t schema = 0;
          if (ch.schema_id) {
            auto sc = schema_map.find(ch.schema_id);
            if (sc == schema_map.end()) {
              auto theirs = reader.schemas().find(ch.schema_id);
              if (theirs == reader.schemas().end()) return true;  // schema lost with a damaged chunk
              sc = schema_map
                       .emplace(ch.schema_id,
                                writer.AddSchema(theirs->second.name, theirs->second.encoding, theirs->second.data))
                       .first;
            }
            schema = sc->second;
          }
          c = channel_map.emplace(m.channel_id, writer.AddChannel(schema, ch.topic, ch.message_encoding, ch.metadata))
                  .first;
        }
        werr = writer.Write(c->second, m.sequence, m.log_time, m.publish_time, m.data);
        return werr.ok();
      },
      &report);
  if (!werr.ok()) return werr;
  if (Status s = writer.Close(); !s.ok()) return s;
  *report_text = "recovered " + std::to_string(writer.stats().messages) + " messages on " +
                 std::to_string(channel_map.size()) + " topics from " + std::to_string(report.chunks) +
                 " chunks into " + out + (report.has_footer ? " (the input was complete)" : "") + "\n" +
                 report.problems;
  return Status::Ok();
}

}  // namespace vb::sniff
