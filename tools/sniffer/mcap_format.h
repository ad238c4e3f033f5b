// MCAP wire primitives shared by McapWriter and McapReader: opcodes, the
// magic, and little-endian appends. See https://mcap.dev/spec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vb::sniff::mcap {

inline constexpr std::string_view kMagic{"\x89MCAP0\r\n", 8};

enum Op : uint8_t {
  kHeader = 0x01,
  kFooter = 0x02,
  kSchema = 0x03,
  kChannel = 0x04,
  kMessage = 0x05,
  kChunk = 0x06,
  kMessageIndex = 0x07,
  kChunkIndex = 0x08,
  kAttachment = 0x09,
  kAttachmentIndex = 0x0A,
  kStatistics = 0x0B,
  kMetadata = 0x0C,
  kMetadataIndex = 0x0D,
  kSummaryOffset = 0x0E,
  kDataEnd = 0x0F,
};

template <class T>
inline void Put(std::string* out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(char(uint64_t(v) >> (8 * i) & 0xff));
}
inline void PutString(std::string* out, std::string_view s) {
  Put<uint32_t>(out, uint32_t(s.size()));
  out->append(s);
}
// Starts a record: opcode + a length placeholder; returns where the length is.
inline size_t BeginRecord(std::string* out, Op op) {
  out->push_back(char(op));
  size_t at = out->size();
  Put<uint64_t>(out, 0);
  return at;
}
inline void EndRecord(std::string* out, size_t at) {
  uint64_t len = out->size() - at - 8;
  for (size_t i = 0; i < 8; ++i) (*out)[at + i] = char(len >> (8 * i) & 0xff);
}

}  // namespace vb::sniff::mcap
