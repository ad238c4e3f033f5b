// Helpers shared by the fuzz targets: the input as lines (a sequence of
// frames, one per line, as a client would send them) and small choices
// taken from its first bytes. Header-only; no state between runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace vb::fuzz {

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Splits on '\n'; a trailing empty piece is dropped. At most `max` lines, so
// one input cannot make a run arbitrarily long.
inline std::vector<std::string_view> Lines(std::string_view text, size_t max = 256) {
  std::vector<std::string_view> out;
  while (!text.empty() && out.size() < max) {
    size_t nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

// Takes one byte off the front (0 when empty).
inline uint8_t TakeByte(std::string_view* text) {
  if (text->empty()) return 0;
  uint8_t b = uint8_t(text->front());
  text->remove_prefix(1);
  return b;
}

}  // namespace vb::fuzz
