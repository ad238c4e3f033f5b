// McapWriter: writes MCAP files (https://mcap.dev/spec), the recording
// format of Foxglove and rosbag2: magic, Header, then the data section of
// zstd-compressed Chunks (each followed by its MessageIndex records), then
// DataEnd (data section CRC), the summary (Schemas, Channels, Statistics,
// ChunkIndexes), SummaryOffsets and the Footer.
//
// Crash safety: a chunk is written to the file (write(2), no user-space
// buffering) when it is closed, so a writer killed with SIGKILL loses only
// the chunk still open. The owner closes chunks by time (CloseChunkIfOlder)
// and the writer closes one by size (chunk_bytes). A file cut short has no
// summary or footer: McapReader reads it anyway, `vb sniff recover` rewrites
// it whole.
//
// Schema and Channel records go into the chunk that first uses them (as the
// official writers do), and again, all of them, into the summary.
//
// Not thread-safe. Errors are Status values; after one, the writer refuses
// further writes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bus/status.h"

namespace vb::sniff {

struct McapOptions {
  size_t chunk_bytes = 1 << 20;  // uncompressed size at which a chunk closes
  int zstd_level = 1;            // fast: recording must stay cheap
  std::string library = "voicebus vb-sniff";
  std::string profile = "";  // MCAP profile: none of the well-known ones
};

struct McapStatsSnapshot {
  uint64_t messages = 0, chunks = 0, bytes_written = 0;
  uint64_t start_time = 0, end_time = 0;
};

class McapWriter {
 public:
  explicit McapWriter(McapOptions options = {}) : options_(std::move(options)) {}
  ~McapWriter();  // closes (writes the summary) if still open
  McapWriter(const McapWriter&) = delete;
  McapWriter& operator=(const McapWriter&) = delete;

  // Creates (truncates) `path` and writes magic + Header.
  Status Open(const std::string& path);
  // Ids start at 1 (schema 0 means "no schema" in MCAP).
  uint16_t AddSchema(std::string name, std::string encoding, std::string data);
  uint16_t AddChannel(uint16_t schema_id, std::string topic, std::string message_encoding,
                      std::map<std::string, std::string> metadata);
  // Appends a message to the open chunk (opening one if needed); closes the
  // chunk when it reaches chunk_bytes. Times are nanoseconds.
  Status Write(uint16_t channel_id, uint32_t sequence, uint64_t log_time, uint64_t publish_time, std::string_view data);
  // Closes the open chunk (if any) when its first message was written at or
  // before `opened_before` (monotonic ns) — the once-a-second flush.
  Status CloseChunkIfOlder(int64_t opened_before_mono_ns);
  Status CloseChunk();
  // Closes the chunk, writes DataEnd, summary, summary offsets, footer,
  // magic, and closes the file.
  Status Close();

  bool is_open() const { return fd_ >= 0; }
  const McapStatsSnapshot& stats() const { return stats_; }
  uint64_t file_bytes() const { return offset_; }

 private:
  struct Schema {
    uint16_t id;
    std::string name, encoding, data;
  };
  struct Channel {
    uint16_t id, schema_id;
    std::string topic, encoding;
    std::map<std::string, std::string> metadata;
  };
  struct ChunkIndex {
    uint64_t start, end, offset, length;
    std::map<uint16_t, uint64_t> index_offsets;
    uint64_t index_length, compressed, uncompressed;
  };
  Status WriteOut(const std::string& bytes, bool data_section);
  void AppendSchema(const Schema& s, std::string* out) const;
  void AppendChannel(const Channel& c, std::string* out) const;

  McapOptions options_;
  int fd_ = -1;
  Status error_;
  uint64_t offset_ = 0;
  uint32_t data_crc_ = 0;  // running (un-finalised) CRC of the data section
  std::vector<Schema> schemas_;
  std::vector<Channel> channels_;
  std::vector<bool> schema_written_, channel_written_;  // into some chunk already
  std::map<uint16_t, uint64_t> channel_counts_;
  std::vector<ChunkIndex> chunk_indexes_;
  // The open chunk.
  std::string chunk_;  // uncompressed records
  uint64_t chunk_start_ = 0, chunk_end_ = 0;
  int64_t chunk_opened_mono_ = 0;
  std::map<uint16_t, std::vector<std::pair<uint64_t, uint64_t>>> chunk_index_;  // channel → (log_time, offset)
  std::string compressed_;
  McapStatsSnapshot stats_;
};

// CRC-32 (IEEE, as zlib and MCAP): Crc32Update(Crc32Update(0, a), b) == CRC of a+b.
uint32_t Crc32Update(uint32_t crc, std::string_view bytes);

}  // namespace vb::sniff
