// Text that goes into a bus message (a protobuf `string`) or a JSON document:
// always valid UTF-8. A proto3 string with invalid UTF-8 serializes with an
// error line and then fails to parse at every subscriber, so the message is
// lost — a TurnEnded whose Chinese error text was cut at a byte count in the
// middle of a character ended the turn for nobody. And a value put into a
// URL's query (UrlEncode).
#pragma once

#include <string>
#include <string_view>

namespace vb {

// At most `max_bytes` of `s`, cut on a character boundary, with every byte
// that does not start a well-formed UTF-8 sequence replaced by '?'.
inline std::string Utf8Prefix(std::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  auto cont = [&](size_t i) { return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; };
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80                   ? 1
               : (c >= 0xC2 && c <= 0xDF) ? 2
               : (c >= 0xE0 && c <= 0xEF) ? 3
               : (c >= 0xF0 && c <= 0xF4) ? 4
                                          : 0;
    for (size_t k = 1; k < n; ++k)
      if (!cont(i + k)) n = 0;
    if (n >= 3) {
      // No overlong forms, no UTF-16 surrogates, nothing above U+10FFFF.
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
        n = 0;
    }
    const size_t take = n ? n : 1;
    if (out.size() + take > max_bytes) break;
    if (n) out.append(s.substr(i, n));
    else out += '?';
    i += take;
  }
  return out;
}

// `v` as a URL query value: unreserved characters (RFC 3986) as they are,
// every other byte %XX.
inline std::string UrlEncode(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : v) {
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_' ||
        ch == '.' || ch == '~') {
      out += char(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

}  // namespace vb
