// TurnHistory: the dashboard's memory of the last turns (see turn_history.h).
#include "actors/gateway/turn_history.h"

namespace vb::gateway {

std::string TurnHistory::Cap(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  static constexpr std::string_view kMark = "…";
  size_t n = max_bytes > kMark.size() ? max_bytes - kMark.size() : 0;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // not inside a sequence
  return std::string(text.substr(0, n)) + std::string(kMark);
}

void TurnHistory::Add(Json record) {
  if (options_.max_turns == 0) return;
  for (const char* key : {"question", "answer", "error"})
    if (record.contains(key) && record[key].is_string())
      record[key] = Cap(record[key].get_ref<const std::string&>(), options_.max_text_bytes);
  if (record.contains("tools") && record["tools"].is_array()) {
    Json& tools = record["tools"];
    if (tools.size() > options_.max_tools) {
      record["tools_dropped"] = tools.size() - options_.max_tools;
      tools.erase(tools.begin() + static_cast<std::ptrdiff_t>(options_.max_tools), tools.end());
    }
    for (Json& t : tools)
      for (const char* key : {"args", "result"})
        if (t.contains(key) && t[key].is_string())
          t[key] = Cap(t[key].get_ref<const std::string&>(), options_.max_text_bytes);
  }
  turns_.push_back(std::move(record));
  while (turns_.size() > options_.max_turns) {
    turns_.pop_front();
    ++dropped_;
  }
}

Json TurnHistory::Turns() const {
  Json out = Json::array();
  for (const auto& t : turns_) out.push_back(t);
  return out;
}

}  // namespace vb::gateway
