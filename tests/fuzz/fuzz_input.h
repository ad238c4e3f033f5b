// Helpers shared by the fuzz targets: the input as lines (a sequence of
// frames, one per line, as a client would send them) and small choices
// taken from its first bytes. Header-only; no state between runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
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

// What a protobuf string field can hold (proto3 parsing refuses invalid
// UTF-8, so text that came off the bus is valid): bytes >= 0x80 become '?'.
inline std::string Ascii(std::string_view text) {
  std::string out(text);
  for (char& ch : out)
    if (uint8_t(ch) >= 0x80) ch = '?';
  return out;
}

// Takes the next space-separated word off the front (made ASCII, as a field
// off the bus would be).
inline std::string Word(std::string_view* rest) {
  size_t sp = rest->find(' ');
  std::string w = Ascii(rest->substr(0, sp));
  rest->remove_prefix(sp == std::string_view::npos ? rest->size() : sp + 1);
  return w;
}

// The digits of `w` (at most 9) as a number; 0 if none.
inline int64_t Number(std::string_view w) {
  int64_t v = 0;
  for (char ch : w.substr(0, 9))
    if (ch >= '0' && ch <= '9') v = v * 10 + (ch - '0');
  return v;
}

// Takes one byte off the front (0 when empty).
inline uint8_t TakeByte(std::string_view* text) {
  if (text->empty()) return 0;
  uint8_t b = uint8_t(text->front());
  text->remove_prefix(1);
  return b;
}

}  // namespace vb::fuzz
