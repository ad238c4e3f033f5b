// TtsSegmenter: boundary rules for speakable units (see tts_segmenter.h).
#include "actors/gateway/tts_segmenter.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>

namespace vb::gateway {
namespace {

constexpr uint32_t kIncomplete = 0xFFFFFFFF;

// Decodes the code point at s[i]; *len gets its byte length. Returns
// kIncomplete if the sequence runs past the end (wait for more bytes). An
// invalid lead byte counts as one character of its own.
uint32_t Decode(std::string_view s, size_t i, size_t* len) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + n > s.size()) {
    *len = 0;
    return kIncomplete;
  }
  *len = n;
  if (n == 1) return c;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

enum class Mark { kNone = 0, kClause = 1, kSentence = 2 };

Mark Classify(uint32_t cp) {
  switch (cp) {
    case '.':
    case '!':
    case '?':
    case 0x2026:  // …
    case 0x3002:  // 。
    case 0xFF01:  // ！
    case 0xFF1F:  // ？
    case 0xFF1B:  // ；
    case 0xFF0E:  // ．
      return Mark::kSentence;
    case ',':
    case ':':
    case ';':
    case 0xFF0C:  // ，
    case 0x3001:  // 、
    case 0xFF1A:  // ：
      return Mark::kClause;
    default: return Mark::kNone;
  }
}

bool IsCloser(uint32_t cp) {
  switch (cp) {
    case '"':
    case '\'':
    case ')':
    case ']':
    case '}':
    case 0x201D:
    case 0x2019:  // ” ’
    case 0x300D:
    case 0x300F:
    case 0x3011:  // 」 』 】
    case 0x300B:
    case 0xFF09:  // 》 ）
      return true;
    default: return false;
  }
}

bool IsSpace(uint32_t cp) { return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == 0x3000 || cp == 0xA0; }

// Scripts written without spaces between sentences.
bool IsCjk(uint32_t cp) {
  return (cp >= 0x2E80 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
         (cp >= 0xFF00 && cp <= 0xFFEF) || (cp >= 0x20000 && cp <= 0x3FFFF);
}

// Abbreviations after which a period does not end a sentence (lower case,
// without their final period).
constexpr std::array<std::string_view, 27> kAbbreviations = {
    "mr",  "mrs", "ms",  "dr",  "prof", "sr",  "jr", "st", "mt",  "no",  "vs", "fig",  "approx", "dept",
    "e.g", "i.e", "u.s", "u.k", "a.m",  "p.m", "cf", "al", "inc", "ltd", "co", "corp", "gen"};

bool IsAsciiAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  auto space_at = [&](size_t i, size_t* len) {
    uint32_t cp = Decode(s, i, len);
    return cp != kIncomplete && IsSpace(cp);
  };
  size_t len = 0;
  while (b < e && space_at(b, &len)) b += len;
  while (e > b) {
    // Step back to the start of the last code point.
    size_t p = e - 1;
    while (p > b && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
    if (!space_at(p, &len)) break;
    e = p;
  }
  return std::string(s.substr(b, e - b));
}

// Has something a voice can say: a letter, digit or non-ASCII non-mark.
bool Speakable(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    uint32_t cp = Decode(s, i, &len);
    if (cp == kIncomplete) return false;
    if (cp < 0x80 ? std::isalnum(static_cast<int>(cp)) != 0
                  : (Classify(cp) == Mark::kNone && !IsCloser(cp) && !IsSpace(cp)))
      return true;
    i += len;
  }
  return false;
}

}  // namespace

std::vector<std::string> TtsSegmenter::Push(std::string_view delta) {
  std::vector<std::string> out;
  buf_.append(delta);
  Scan(false, &out);
  return out;
}

std::vector<std::string> TtsSegmenter::Flush() {
  std::vector<std::string> out;
  Scan(true, &out);
  if (!buf_.empty()) Cut(buf_.size(), &out);
  Reset();
  return out;
}

void TtsSegmenter::Reset() {
  buf_.clear();
  scan_ = 0;
}

void TtsSegmenter::Cut(size_t end, std::vector<std::string>* out) {
  std::string unit = Trim(std::string_view(buf_).substr(0, end));
  buf_.erase(0, end);
  scan_ = 0;
  if (Speakable(unit)) out->push_back(std::move(unit));
}

size_t TtsSegmenter::CodePointsBefore(size_t pos) const {
  size_t n = 0;
  for (size_t i = 0; i < pos;) {
    size_t len = 0;
    uint32_t cp = Decode(buf_, i, &len);
    if (cp == kIncomplete) break;
    if (!IsSpace(cp)) ++n;
    i += len;
  }
  return n;
}

bool TtsSegmenter::IsAbbreviationBefore(size_t dot) const {
  size_t start = dot;
  while (start > 0 && (IsAsciiAlpha(buf_[start - 1]) || buf_[start - 1] == '.')) --start;
  std::string word = buf_.substr(start, dot - start);
  if (word.empty()) return false;
  // A single capital: an initial ("J. K. Rowling").
  if (word.size() == 1 && std::isupper(static_cast<unsigned char>(word[0]))) return true;
  std::string lower = word;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (auto a : kAbbreviations)
    if (lower == a) return true;
  // Dotted acronyms of single letters: "U.S.A", "Ph.D" is not, "e.g" is listed.
  if (word.size() >= 3) {
    bool dotted = true;
    for (size_t k = 0; k < word.size(); ++k) dotted = dotted && ((k % 2 == 0) ? IsAsciiAlpha(word[k]) : word[k] == '.');
    if (dotted) return true;
  }
  return false;
}

bool TtsSegmenter::IsListMarker(size_t dot) const {
  // "1." or "12." opening the unit: a numbered list item, not a sentence.
  size_t b = 0;
  while (b < dot && std::isspace(static_cast<unsigned char>(buf_[b]))) ++b;
  if (b == dot || dot - b > 3) return false;
  for (size_t k = b; k < dot; ++k)
    if (!std::isdigit(static_cast<unsigned char>(buf_[k]))) return false;
  return true;
}

void TtsSegmenter::Scan(bool at_end, std::vector<std::string>* out) {
  size_t i = scan_;
  while (i < buf_.size()) {
    size_t len = 0;
    uint32_t cp = Decode(buf_, i, &len);
    if (cp == kIncomplete) break;
    if (cp == '\n') {
      Cut(i + 1, out);
      i = 0;
      continue;
    }
    Mark kind = Classify(cp);
    if (kind == Mark::kNone) {
      i += len;
      continue;
    }
    // The run of marks and closing quotes that ends here ("?!", "...", "。」").
    size_t j = i + len;
    Mark strongest = kind;
    bool wide = cp >= 0x2000;  // a CJK mark or "…": no space needed after it
    size_t marks = 1;
    bool incomplete = false;
    while (j < buf_.size()) {
      size_t l2 = 0;
      uint32_t c2 = Decode(buf_, j, &l2);
      if (c2 == kIncomplete) {
        incomplete = true;
        break;
      }
      Mark k2 = Classify(c2);
      if (k2 != Mark::kNone) {
        strongest = std::max(strongest, k2);
        wide = wide || c2 >= 0x2000;
        ++marks;
      } else if (!IsCloser(c2)) {
        break;
      }
      j += l2;
    }
    bool end_of_text = j >= buf_.size() && !incomplete;
    if ((incomplete || end_of_text) && !at_end) {
      scan_ = i;  // decide when the next character arrives
      return;
    }
    bool confirmed = end_of_text || wide;
    if (!confirmed) {
      size_t l2 = 0;
      uint32_t next = Decode(buf_, j, &l2);
      confirmed = next != kIncomplete && (IsSpace(next) || IsCjk(next));
    }
    if (!confirmed) {  // "3.14", "1,000", "example.com", "a:b"
      i = j;
      continue;
    }
    if (strongest == Mark::kSentence) {
      bool single_dot = cp == '.' && marks == 1;
      if (single_dot && !end_of_text && (IsAbbreviationBefore(i) || IsListMarker(i))) {
        i = j;
        continue;
      }
      Cut(j, out);
      i = 0;
      continue;
    }
    if (CodePointsBefore(i) >= options_.min_clause_chars) {
      Cut(j, out);
      i = 0;
      continue;
    }
    i = j;
  }
  scan_ = std::min(i, buf_.size());
  ForceCutIfTooLong(out);
}

void TtsSegmenter::ForceCutIfTooLong(std::vector<std::string>* out) {
  // Linear in the pending text: counted once, then per cut only what is cut.
  size_t n = CodePointsBefore(buf_.size());
  while (n > options_.max_unit_chars) {
    // Byte offset just past max_unit_chars code points.
    size_t limit = 0, k = 0;
    while (limit < buf_.size() && k < options_.max_unit_chars) {
      size_t len = 0;
      if (Decode(buf_, limit, &len) == kIncomplete) break;
      limit += len;
      ++k;
    }
    size_t space = buf_.rfind(' ', limit);
    size_t cut = (space != std::string::npos && space > 0) ? space + 1 : limit;
    if (cut == limit) {
      // No space: do not cut inside a number or a Latin word; one that is
      // itself too long waits (up to 4x the limit) for its end.
      while (cut > 1 && std::isalnum(static_cast<unsigned char>(buf_[cut - 1])) &&
             std::isalnum(static_cast<unsigned char>(buf_[cut])))
        --cut;
      if (cut <= 1) {
        if (n <= 4 * options_.max_unit_chars) return;
        cut = limit;
      }
    }
    size_t removed = CodePointsBefore(cut);
    Cut(cut, out);
    n -= std::min(n, removed);
  }
}

}  // namespace vb::gateway
