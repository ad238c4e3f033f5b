// MCAP writer (see mcap_writer.h).
#include "tools/sniffer/mcap_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <tuple>

#include "bus/loop.h"
#include "tools/sniffer/mcap_format.h"

namespace vb::sniff {
using namespace mcap;

namespace {
std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
}  // namespace

uint32_t Crc32Update(uint32_t crc, std::string_view bytes) {
  static const std::array<uint32_t, 256> kTable = MakeCrcTable();
  crc = ~crc;
  for (unsigned char b : bytes) crc = kTable[(crc ^ b) & 0xff] ^ (crc >> 8);
  return ~crc;
}

McapWriter::~McapWriter() {
  if (fd_ >= 0) Close();
}

Status McapWriter::Open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return error_ = Status::Io("cannot create " + path + ": " + strerror(errno));
  std::string out(kMagic);
  size_t at = BeginRecord(&out, kHeader);
  PutString(&out, options_.profile);
  PutString(&out, options_.library);
  EndRecord(&out, at);
  return WriteOut(out, true);
}

Status McapWriter::WriteOut(const std::string& bytes, bool data_section) {
  if (!error_.ok()) return error_;
  if (fd_ < 0) return error_ = Status::Io("the recording is not open");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return error_ = Status::Io(std::string("cannot write the recording: ") + strerror(errno));
    done += size_t(n);
  }
  if (data_section) data_crc_ = Crc32Update(data_crc_, bytes);
  offset_ += bytes.size();
  stats_.bytes_written = offset_;
  return Status::Ok();
}

uint16_t McapWriter::AddSchema(std::string name, std::string encoding, std::string data) {
  uint16_t id = uint16_t(schemas_.size() + 1);
  schemas_.push_back({id, std::move(name), std::move(encoding), std::move(data)});
  schema_written_.push_back(false);
  return id;
}

uint16_t McapWriter::AddChannel(uint16_t schema_id, std::string topic, std::string message_encoding,
                                std::map<std::string, std::string> metadata) {
  uint16_t id = uint16_t(channels_.size() + 1);
  channels_.push_back({id, schema_id, std::move(topic), std::move(message_encoding), std::move(metadata)});
  channel_written_.push_back(false);
  return id;
}

void McapWriter::AppendSchema(const Schema& s, std::string* out) const {
  size_t at = BeginRecord(out, kSchema);
  Put<uint16_t>(out, s.id);
  PutString(out, s.name);
  PutString(out, s.encoding);
  PutString(out, s.data);
  EndRecord(out, at);
}

void McapWriter::AppendChannel(const Channel& c, std::string* out) const {
  size_t at = BeginRecord(out, kChannel);
  Put<uint16_t>(out, c.id);
  Put<uint16_t>(out, c.schema_id);
  PutString(out, c.topic);
  PutString(out, c.encoding);
  std::string map;
  for (const auto& [k, v] : c.metadata) {
    PutString(&map, k);
    PutString(&map, v);
  }
  PutString(out, map);  // a map is its byte length, then the entries
  EndRecord(out, at);
}

Status McapWriter::Write(uint16_t channel_id, uint32_t sequence, uint64_t log_time, uint64_t publish_time,
                         std::string_view data) {
  if (!error_.ok()) return error_;
  if (channel_id == 0 || channel_id > channels_.size()) return Status::Invalid("unknown MCAP channel");
  if (chunk_.empty()) {
    chunk_start_ = chunk_end_ = log_time;
    chunk_opened_mono_ = bus::MonoNs();
  }
  const Channel& c = channels_[channel_id - 1];
  if (!channel_written_[channel_id - 1]) {
    if (c.schema_id && !schema_written_[c.schema_id - 1]) {
      AppendSchema(schemas_[c.schema_id - 1], &chunk_);
      schema_written_[c.schema_id - 1] = true;
    }
    AppendChannel(c, &chunk_);
    channel_written_[channel_id - 1] = true;
  }
  chunk_index_[channel_id].emplace_back(log_time, chunk_.size());
  size_t at = BeginRecord(&chunk_, kMessage);
  Put<uint16_t>(&chunk_, channel_id);
  Put<uint32_t>(&chunk_, sequence);
  Put<uint64_t>(&chunk_, log_time);
  Put<uint64_t>(&chunk_, publish_time);
  chunk_.append(data);
  EndRecord(&chunk_, at);
  chunk_start_ = std::min(chunk_start_, log_time);
  chunk_end_ = std::max(chunk_end_, log_time);
  if (!stats_.messages || log_time < stats_.start_time) stats_.start_time = log_time;
  stats_.end_time = std::max(stats_.end_time, log_time);
  ++stats_.messages;
  ++channel_counts_[channel_id];
  if (chunk_.size() >= options_.chunk_bytes) return CloseChunk();
  return Status::Ok();
}

Status McapWriter::CloseChunkIfOlder(int64_t opened_before_mono_ns) {
  if (chunk_.empty() || chunk_opened_mono_ > opened_before_mono_ns) return Status::Ok();
  return CloseChunk();
}

Status McapWriter::CloseChunk() {
  if (!error_.ok()) return error_;
  if (chunk_.empty()) return Status::Ok();
  compressed_.resize(ZSTD_compressBound(chunk_.size()));
  size_t n = ZSTD_compress(compressed_.data(), compressed_.size(), chunk_.data(), chunk_.size(), options_.zstd_level);
  if (ZSTD_isError(n)) return error_ = Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(n));
  compressed_.resize(n);

  ChunkIndex ci{};
  ci.start = chunk_start_;
  ci.end = chunk_end_;
  ci.offset = offset_;
  ci.compressed = n;
  ci.uncompressed = chunk_.size();
  std::string out;
  out.reserve(n + 64);
  size_t at = BeginRecord(&out, kChunk);
  Put<uint64_t>(&out, chunk_start_);
  Put<uint64_t>(&out, chunk_end_);
  Put<uint64_t>(&out, chunk_.size());
  Put<uint32_t>(&out, Crc32Update(0, chunk_));
  PutString(&out, "zstd");
  Put<uint64_t>(&out, n);
  out.append(compressed_);
  EndRecord(&out, at);
  ci.length = out.size();
  for (const auto& [channel, entries] : chunk_index_) {
    ci.index_offsets[channel] = offset_ + out.size();
    size_t mi = BeginRecord(&out, kMessageIndex);
    Put<uint16_t>(&out, channel);
    Put<uint32_t>(&out, uint32_t(entries.size() * 16));
    for (const auto& [t, off] : entries) {
      Put<uint64_t>(&out, t);
      Put<uint64_t>(&out, off);
    }
    EndRecord(&out, mi);
  }
  ci.index_length = out.size() - ci.length;
  chunk_.clear();
  chunk_index_.clear();
  if (Status s = WriteOut(out, true); !s.ok()) return s;
  chunk_indexes_.push_back(std::move(ci));
  ++stats_.chunks;
  return Status::Ok();
}

Status McapWriter::Close() {
  if (fd_ < 0) return error_;
  Status s = CloseChunk();
  if (s.ok()) {
    std::string out;
    size_t at = BeginRecord(&out, kDataEnd);
    Put<uint32_t>(&out, data_crc_);
    EndRecord(&out, at);
    uint64_t summary_start = offset_ + out.size();
    // Summary: one group per record kind, each indexed by a SummaryOffset.
    std::string summary;
    std::vector<std::tuple<Op, uint64_t, uint64_t>> groups;
    auto group = [&](Op op, const std::function<void()>& fill) {
      size_t begin = summary.size();
      fill();
      if (summary.size() > begin) groups.emplace_back(op, summary_start + begin, summary.size() - begin);
    };
    group(kSchema, [&] {
      for (const auto& sc : schemas_) AppendSchema(sc, &summary);
    });
    group(kChannel, [&] {
      for (const auto& c : channels_) AppendChannel(c, &summary);
    });
    group(kStatistics, [&] {
      size_t r = BeginRecord(&summary, kStatistics);
      Put<uint64_t>(&summary, stats_.messages);
      Put<uint16_t>(&summary, uint16_t(schemas_.size()));
      Put<uint32_t>(&summary, uint32_t(channels_.size()));
      Put<uint32_t>(&summary, 0);  // attachments
      Put<uint32_t>(&summary, 0);  // metadata
      Put<uint32_t>(&summary, uint32_t(chunk_indexes_.size()));
      Put<uint64_t>(&summary, stats_.start_time);
      Put<uint64_t>(&summary, stats_.end_time);
      Put<uint32_t>(&summary, uint32_t(channel_counts_.size() * 10));
      for (const auto& [ch, n] : channel_counts_) {
        Put<uint16_t>(&summary, ch);
        Put<uint64_t>(&summary, n);
      }
      EndRecord(&summary, r);
    });
    group(kChunkIndex, [&] {
      for (const auto& ci : chunk_indexes_) {
        size_t r = BeginRecord(&summary, kChunkIndex);
        Put<uint64_t>(&summary, ci.start);
        Put<uint64_t>(&summary, ci.end);
        Put<uint64_t>(&summary, ci.offset);
        Put<uint64_t>(&summary, ci.length);
        Put<uint32_t>(&summary, uint32_t(ci.index_offsets.size() * 10));
        for (const auto& [ch, off] : ci.index_offsets) {
          Put<uint16_t>(&summary, ch);
          Put<uint64_t>(&summary, off);
        }
        Put<uint64_t>(&summary, ci.index_length);
        PutString(&summary, "zstd");
        Put<uint64_t>(&summary, ci.compressed);
        Put<uint64_t>(&summary, ci.uncompressed);
        EndRecord(&summary, r);
      }
    });
    uint64_t offsets_start = summary_start + summary.size();
    for (const auto& [op, start, length] : groups) {
      size_t r = BeginRecord(&summary, kSummaryOffset);
      Put<uint8_t>(&summary, op);
      Put<uint64_t>(&summary, start);
      Put<uint64_t>(&summary, length);
      EndRecord(&summary, r);
    }
    std::string footer;
    footer.push_back(char(kFooter));
    Put<uint64_t>(&footer, 20);  // fixed length: two offsets and the CRC
    Put<uint64_t>(&footer, summary_start);
    Put<uint64_t>(&footer, offsets_start);
    // The summary CRC covers the summary, the offsets and the footer up to
    // (not including) the CRC itself.
    Put<uint32_t>(&footer, Crc32Update(Crc32Update(0, summary), footer));
    out += summary;
    out += footer;
    out.append(kMagic);
    s = WriteOut(out, false);
  }
  ::close(fd_);
  fd_ = -1;
  return s;
}

}  // namespace vb::sniff
