// TtsSegmenter: cuts a streamed agent reply into speakable units (the
// `tts_ready_chunk` messages) as the tokens arrive, so a front end can start
// speaking the first sentence while the agent is still writing the rest.
//
// A unit ends at a sentence end (. ! ? … and CJK 。！？；), at a newline, or at
// a clause mark (, : ; and CJK ，、：) once the unit is long enough to be worth
// speaking alone. ASCII marks need the next character to decide (a space, a
// CJK character or the end of the reply), which keeps "3.14", "1,000",
// "example.com", "Dr. Smith", "e.g. this" and "the U.S. Army" whole. CJK marks
// take the closing quotes/brackets that follow them. Push() may hold back at
// most the text since the last boundary plus one character of look-ahead;
// Flush() at the end of the reply emits the remainder.
//
// Works on UTF-8 bytes; a code point split across two deltas is waited for,
// never cut. Not thread-safe; one instance per streamed reply.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vb::gateway {

class TtsSegmenter {
 public:
  struct Options {
    // A clause mark ends a unit only if the unit has this many code points
    // before it (so "Well," or "你好，" stay with what follows).
    size_t min_clause_chars = 6;
    // A unit without any boundary is cut at the last space (or, for text
    // without spaces, at this length) once it grows past this many code points.
    size_t max_unit_chars = 200;
  };

  TtsSegmenter() : TtsSegmenter(Options{}) {}
  explicit TtsSegmenter(Options options) : options_(options) {}

  // Appends a delta; returns the units it completed (trimmed, never empty).
  std::vector<std::string> Push(std::string_view delta);
  // End of the reply: the rest as a last unit (if it has anything speakable).
  std::vector<std::string> Flush();
  // Drops everything pending (the reply was interrupted).
  void Reset();

  const std::string& pending() const { return buf_; }

 private:
  // Scans buf_ from scan_; appends completed units to *out.
  void Scan(bool at_end, std::vector<std::string>* out);
  // Emits buf_[0, end) as a unit and removes it.
  void Cut(size_t end, std::vector<std::string>* out);
  bool IsAbbreviationBefore(size_t dot) const;
  bool IsListMarker(size_t dot) const;
  size_t CodePointsBefore(size_t pos) const;
  void ForceCutIfTooLong(std::vector<std::string>* out);

  Options options_;
  std::string buf_;
  size_t scan_ = 0;  // bytes of buf_ known to hold no boundary
};

}  // namespace vb::gateway
