// The sniffer's commands on recordings, without a bus: `info` (topics,
// types, counts, duration, rates of an MCAP file) and `recover` (rewrite a
// recording cut short — no summary, no footer — into a complete file).
// Both read through McapReader, so they cope with a truncated file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "bus/status.h"

namespace vb::sniff {

struct ChannelSummary {
  std::string topic, type;                           // type: the bus payload type (or the schema name)
  uint64_t messages = 0, first_ns = 0, last_ns = 0;  // log times
};
struct RecordingSummary {
  std::map<uint16_t, ChannelSummary> channels;
  uint64_t messages = 0, first_ns = 0, last_ns = 0, chunks = 0, bad_chunks = 0, bytes = 0, truncated_bytes = 0;
  bool has_footer = false;
  std::string problems;
};

Status SummarizeRecording(const std::string& path, RecordingSummary* out);
// Text (or one JSON object) for `vb sniff info`.
std::string FormatSummary(const std::string& path, const RecordingSummary& s, bool json);
// Copies every readable message of `in` into a new, complete `out`.
Status RecoverRecording(const std::string& in, const std::string& out, std::string* report);

}  // namespace vb::sniff
