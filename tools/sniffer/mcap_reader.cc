// MCAP reader (see mcap_reader.h).
#include "tools/sniffer/mcap_reader.h"

#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tools/sniffer/mcap_format.h"
#include "tools/sniffer/mcap_writer.h"

namespace vb::sniff {
using namespace mcap;

namespace {
// Bounds-checked little-endian reads; any overrun sets ok=false.
struct Cursor {
  std::string_view s;
  size_t at = 0;
  bool ok = true;
  template <class T>
  T Get() {
    if (s.size() - at < sizeof(T) || !ok) return ok = false, T{};
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(uint8_t(s[at + i])) << (8 * i);
    at += sizeof(T);
    return T(v);
  }
  std::string_view Bytes(uint64_t n) {
    if (!ok || s.size() - at < n) return ok = false, std::string_view{};
    auto v = s.substr(at, n);
    at += n;
    return v;
  }
  std::string String() { return std::string(Bytes(Get<uint32_t>())); }
};
}  // namespace

Status McapReader::Open(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Io("cannot read " + path + ": " + strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  file_ = std::move(ss).str();
  if (file_.size() < kMagic.size() || std::string_view(file_).substr(0, kMagic.size()) != kMagic)
    return Status::Invalid(path + " is not an MCAP file (no MCAP magic at its start)");
  return Status::Ok();
}

Status McapReader::Read(const MessageFn& fn, McapReadReport* r) {
  if (file_.empty()) return Status::Invalid("no MCAP file open");
  *r = McapReadReport{};
  r->bytes = file_.size();
  Records(std::string_view(file_).substr(kMagic.size()), false, fn, r);
  return Status::Ok();
}

bool McapReader::Records(std::string_view bytes, bool in_chunk, const MessageFn& fn, McapReadReport* r) {
  Cursor c{bytes};
  bool after_data_end = false;
  while (c.at < bytes.size()) {
    size_t record_at = c.at;
    uint8_t op = c.Get<uint8_t>();
    uint64_t len = c.Get<uint64_t>();
    std::string_view body = c.Bytes(len);
    if (!c.ok) {
      if (in_chunk) {
        r->problems += "a chunk's records end mid-record\n";
        return true;
      }
      // The trailing magic of a complete file is not a record.
      if (bytes.substr(record_at) == kMagic && r->has_footer) return true;
      r->truncated_bytes = bytes.size() - record_at;
      r->problems += "the file is cut short: its last " + std::to_string(r->truncated_bytes) +
                     " bytes are an incomplete record (a recording stopped by a crash?)\n";
      return true;
    }
    Cursor b{body};
    // After DataEnd only the summary follows: nothing in it is read but the
    // footer (a damaged summary must not pass for data).
    if (after_data_end && op != kFooter) continue;
    switch (op) {
      case kSchema: {
        McapSchema s;
        s.id = b.Get<uint16_t>();
        s.name = b.String();
        s.encoding = b.String();
        s.data = std::string(b.Bytes(b.Get<uint32_t>()));
        if (b.ok && s.id) schemas_[s.id] = std::move(s);
        else r->problems += "a damaged schema record\n";
        break;
      }
      case kChannel: {
        McapChannel ch;
        ch.id = b.Get<uint16_t>();
        ch.schema_id = b.Get<uint16_t>();
        ch.topic = b.String();
        ch.message_encoding = b.String();
        Cursor m{b.Bytes(b.Get<uint32_t>())};
        while (b.ok && m.ok && m.at < m.s.size()) {
          std::string k = m.String(), v = m.String();
          if (m.ok) ch.metadata[k] = v;
        }
        if (b.ok && m.ok) channels_[ch.id] = std::move(ch);
        else r->problems += "a damaged channel record\n";
        break;
      }
      case kMessage: {
        McapMessage m;
        m.channel_id = b.Get<uint16_t>();
        m.sequence = b.Get<uint32_t>();
        m.log_time = b.Get<uint64_t>();
        m.publish_time = b.Get<uint64_t>();
        if (!b.ok) break;
        m.data = body.substr(b.at);
        if (!channels_.count(m.channel_id)) {
          ++r->orphan_messages;
          break;
        }
        ++r->messages;
        if (fn && !fn(m)) return false;
        break;
      }
      case kChunk: {
        if (in_chunk) break;
        ++r->chunks;
        b.Get<uint64_t>();  // start, end time
        b.Get<uint64_t>();
        uint64_t size = b.Get<uint64_t>();
        uint32_t crc = b.Get<uint32_t>();
        std::string compression = b.String();
        std::string_view data = b.Bytes(b.Get<uint64_t>());
        std::string_view records;
        std::string plain;
        if (!b.ok || size > kMaxChunkBytes) {
          ++r->bad_chunks;
          r->problems += "a damaged chunk header\n";
          break;
        }
        if (compression.empty()) {
          records = data;
        } else if (compression == "zstd") {
          plain.resize(size);
          size_t n = ZSTD_decompress(plain.data(), plain.size(), data.data(), data.size());
          if (ZSTD_isError(n) || n != size) {
            ++r->bad_chunks;
            r->problems += "a chunk does not decompress (zstd)\n";
            break;
          }
          records = plain;
        } else {
          ++r->bad_chunks;
          r->problems += "a chunk compressed with " + compression + " (only zstd is read)\n";
          break;
        }
        if (records.size() != size || (crc && Crc32Update(0, records) != crc)) {
          ++r->bad_chunks;
          r->problems += "a chunk fails its CRC\n";
          break;
        }
        if (!Records(records, true, fn, r)) return false;
        break;
      }
      case kDataEnd:
        if (!in_chunk) after_data_end = true;
        break;
      case kFooter: r->has_footer = true; break;
      default:  // indexes, statistics, attachments, metadata: not needed to read
        break;
    }
  }
  return true;
}

}  // namespace vb::sniff
