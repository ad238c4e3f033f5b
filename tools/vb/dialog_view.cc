// The live dialog view (see dialog_view.h).
#include "tools/vb/dialog_view.h"

namespace vb::cli {

const char* StateWord(v1::DialogStateKind s) {
  switch (s) {
    case v1::STATE_IDLE: return "idle";
    case v1::STATE_LISTENING: return "listening";
    case v1::STATE_THINKING: return "thinking";
    case v1::STATE_SPEAKING: return "speaking";
    case v1::STATE_OFFLINE: return "offline";
    default: return "?";
  }
}

DialogView::DialogView(bus::Node& node, bool show, Line line, std::function<void(const std::string&)> on_state)
    : show_(show), line_(std::move(line)), on_state_(std::move(on_state)) {
  node.Subscribe<v1::DialogState>(
      bus::topics::kDialogState,
      [this](const auto& m) {
        // Republished every heartbeat: only changes are news.
        const std::string reason = m.msg.deaf() ? m.msg.deaf_reason() : "";
        if (m.msg.state() == last_state_ && reason == last_reason_) return;
        const bool state_changed = m.msg.state() != last_state_;
        last_state_ = m.msg.state();
        last_reason_ = reason;
        std::string word = StateWord(m.msg.state());
        if (m.msg.deaf()) word += " (" + (reason.empty() ? std::string("not hearing") : reason) + ")";
        if (on_state_) on_state_(word + (m.msg.reason().empty() ? "" : ": " + m.msg.reason()));
        if (show_ && state_changed) line_(std::string("  [") + StateWord(m.msg.state()) + "] " + m.msg.reason());
      },
      "*");
  if (!show_) return;
  node.Subscribe<v1::SessionEvent>(
      bus::topics::kSessionEvent,
      [this](const auto& m) {
        const auto& e = m.msg;
        if (e.has_user_transcript() && e.user_transcript().final()) line_("you:   " + e.user_transcript().text());
        if (e.has_agent_text() && e.agent_text().final()) line_("agent: " + e.agent_text().text());
        if (e.has_tool_call())
          line_("agent calls " + e.tool_call().name() + "(" + e.tool_call().arguments_json() + ")");
        if (e.has_error()) line_("session error " + std::to_string(e.error().code()) + ": " + e.error().message());
        if (e.has_turn_ended() && e.turn_ended().outcome() == v1::TurnEnded::FAILED)
          line_("turn failed: " + e.turn_ended().error());
      },
      "*");
}

}  // namespace vb::cli
