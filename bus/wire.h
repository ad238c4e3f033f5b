// The wire format: a bus message is three ZeroMQ frames
// [topic]["vb.v1.Header" bytes][payload bytes]. This file checks frames
// coming in, so the runtime and the sniffer reject malformed input the same
// way, and counts the reasons.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "vb/v1/header.pb.h"

namespace vb::bus {

enum class Malformed : uint8_t {
  kNone = 0,
  kFrameCount,    // not exactly three frames
  kTopic,         // empty, oversized, or not "<base>/<device>"
  kHeader,        // header frame does not parse, or is oversized
  kTypeMismatch,  // header.type is not the topic's payload type
  kPayload,       // payload does not parse as header.type
  kOversized,     // payload larger than the configured maximum
  kCount_
};
const char* MalformedName(Malformed m);

// A publisher names itself in Header.source; longer names are malformed
// (they would only cost memory in every receiver's per-publisher state).
inline constexpr size_t kMaxSourceBytes = 128;

struct WireLimits {
  size_t max_topic = 256;
  size_t max_header = 4096;
  size_t max_payload = 4 << 20;
};

// The largest frame a well-formed message can have (the broker refuses
// bigger ones at the door).
inline size_t MaxFrameBytes(const WireLimits& l) {
  size_t m = l.max_payload > l.max_header ? l.max_payload : l.max_header;
  return m > l.max_topic ? m : l.max_topic;
}

// Splits "<base>/<device>"; false if there is no '/'.
bool SplitTopic(std::string_view topic, std::string_view* base, std::string_view* device);

// Per-reason counters of rejected frames.
struct MalformedCounts {
  std::array<uint64_t, size_t(Malformed::kCount_)> by_reason{};
  uint64_t total() const {
    uint64_t t = 0;
    for (auto v : by_reason) t += v;
    return t;
  }
};

}  // namespace vb::bus
