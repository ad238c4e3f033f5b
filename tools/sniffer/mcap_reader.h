// McapReader: reads MCAP files written by McapWriter — or by anyone, as long
// as chunks are uncompressed or zstd — in file order, without needing the
// summary: a recording cut short (the recorder killed, the disk full) yields
// every complete chunk and says how much of its tail was unreadable. Damaged
// chunks (bad CRC, bad zstd) are skipped and counted; the rest is read.
//
// The whole file is read into memory (recordings are compressed audio and
// events: tens of MB per hour). Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "bus/status.h"

namespace vb::sniff {

struct McapSchema {
  uint16_t id = 0;
  std::string name, encoding, data;
};
struct McapChannel {
  uint16_t id = 0, schema_id = 0;
  std::string topic, message_encoding;
  std::map<std::string, std::string> metadata;
};
struct McapMessage {
  uint16_t channel_id;
  uint32_t sequence;
  uint64_t log_time, publish_time;
  std::string_view data;  // valid during the callback
};

struct McapReadReport {
  bool has_footer = false;       // the file ends with a summary and footer
  uint64_t bytes = 0;            // file size
  uint64_t truncated_bytes = 0;  // unreadable tail (a cut record)
  uint64_t chunks = 0, bad_chunks = 0;
  uint64_t messages = 0, orphan_messages = 0;  // orphan: channel never defined
  std::string problems;                        // one line per problem, for humans
};

class McapReader {
 public:
  // Loads `path`; fails only if it cannot be read or is not MCAP at all.
  Status Open(const std::string& path);
  // Walks the data section in file order, calling fn for each message whose
  // channel is known (schemas()/channels() are filled as they appear). fn
  // returns false to stop. Returns what was found; problems are in the
  // report, not the Status (which fails only if Open() did not succeed).
  using MessageFn = std::function<bool(const McapMessage&)>;
  Status Read(const MessageFn& fn, McapReadReport* report);

  const std::map<uint16_t, McapSchema>& schemas() const { return schemas_; }
  const std::map<uint16_t, McapChannel>& channels() const { return channels_; }

  // A chunk claiming more than this uncompressed is treated as damaged.
  static constexpr uint64_t kMaxChunkBytes = 256ull << 20;

 private:
  // Parses the records of `bytes` (in_chunk: a chunk's records); false if fn stopped it.
  bool Records(std::string_view bytes, bool in_chunk, const MessageFn& fn, McapReadReport* r);

  std::string file_;
  std::map<uint16_t, McapSchema> schemas_;
  std::map<uint16_t, McapChannel> channels_;
};

}  // namespace vb::sniff
