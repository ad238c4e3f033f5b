// Names of malformed-frame reasons and topic parsing (see wire.h).
#include "bus/wire.h"

namespace vb::bus {

const char* MalformedName(Malformed m) {
  switch (m) {
    case Malformed::kNone: return "none";
    case Malformed::kFrameCount: return "frame_count";
    case Malformed::kTopic: return "topic";
    case Malformed::kHeader: return "header";
    case Malformed::kTypeMismatch: return "type_mismatch";
    case Malformed::kPayload: return "payload";
    case Malformed::kOversized: return "oversized";
    default: return "?";
  }
}

bool SplitTopic(std::string_view topic, std::string_view* base, std::string_view* device) {
  auto slash = topic.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  *base = topic.substr(0, slash);
  *device = topic.substr(slash + 1);
  return true;
}

}  // namespace vb::bus
