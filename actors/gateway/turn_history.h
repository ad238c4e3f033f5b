// TurnHistory: the dashboard's memory of the last N turns, so a page opened
// or reloaded shows what was said before (issue 14 item 5). Each record is
// the JSON the page draws: when it started and ended (wall clock, ms since
// the epoch), who asked ("voice" or the client's connection/user id), the
// question (final transcript or typed text), the answer, the outcome, tool
// calls in order with their results, and the first-token latency.
//
// Bounded: at most `max_turns` records, text fields cut at `max_text_bytes`
// (on a UTF-8 boundary, marked with "…"), at most `max_tools` calls per turn.
// Pure logic, single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "actors/gateway/protocol.h"

namespace vb::gateway {

class TurnHistory {
 public:
  struct Options {
    size_t max_turns = 50;
    size_t max_text_bytes = 2000;
    size_t max_tools = 16;
  };
  TurnHistory() : TurnHistory(Options{}) {}
  explicit TurnHistory(Options options) : options_(options) {}

  // A finished turn: `record` with the fields above; its text fields are
  // capped here. The oldest record makes room (counted in dropped()).
  void Add(Json record);
  // Oldest first.
  Json Turns() const;
  size_t size() const { return turns_.size(); }
  const Json& last() const { return turns_.back(); }  // size() > 0
  uint64_t dropped() const { return dropped_; }
  const Options& options() const { return options_; }

  // `text` cut to at most max_bytes bytes without splitting a UTF-8 sequence.
  static std::string Cap(std::string_view text, size_t max_bytes);

 private:
  Options options_;
  std::deque<Json> turns_;
  uint64_t dropped_ = 0;
};

}  // namespace vb::gateway
