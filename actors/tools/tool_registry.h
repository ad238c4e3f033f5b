// ToolRegistry: vb-tools' logic, without the bus. Every tool call the agent
// makes (SessionEvent.tool_call) is answered, exactly once:
//   - by a tool a bus participant offers (ToolOffer → ToolInvocation →
//     ToolAnswer), within its timeout;
//   - else by a tool from the config (`answers:` name → output template);
//   - else by a built-in tool (time and date, volume, stop, mode);
//   - else at once with an error output ("no such tool"),
// and a call nobody answers in time is answered with an error output, so the
// agent can go on, while the person hears a short fallback prompt. A call
// whose turn ends first (cancelled, failed) is forgotten.
//
// Outputs go through RegistryPort (the actor publishes them; tests record
// them). Time is passed in: monotonic `now_ns` for deadlines, and a wall
// clock function for the time tool.
//
// Not thread-safe: one instance, used on the actor's loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vb/v1/dialog.pb.h"
#include "vb/v1/tools.pb.h"

namespace vb::tools {

class RegistryPort {
 public:
  virtual ~RegistryPort() = default;
  // DialogRequest.tool_output: the answer goes to the agent.
  virtual void SubmitOutput(const std::string& turn_id, const std::string& call_id, const std::string& output) = 0;
  // Ask a provider on the bus (tool.invoke).
  virtual void Invoke(const v1::ToolInvocation& inv) = 0;
  // Another dialog command (SetMode, Interrupt, PlayPrompt).
  virtual void Command(const v1::DialogRequest& cmd) = 0;
  // playback.volume.
  virtual void Volume(const v1::VolumeCommand& cmd) = 0;
  // Worth a (rate-limited) log line.
  virtual void Problem(const std::string& what) {}
};

struct RegistryOptions {
  int timeout_ms = 8000;                  // a call unanswered this long gets an error output
  std::string fallback_prompt = "error";  // PlayPrompt name when a call fails; "" = none
  int volume_step = 10;                   // volume_up/down without a step, percent
  // Config tools: name → output template; "{arg}" is replaced by that argument.
  std::vector<std::pair<std::string, std::string>> answers;
  uint32_t default_offer_ttl_ms = 5000;
};

struct RegistryCounters {
  uint64_t calls = 0;
  uint64_t answered_builtin = 0;
  uint64_t answered_config = 0;
  uint64_t answered_provider = 0;
  uint64_t failed = 0;   // error outputs (bad arguments, provider error)
  uint64_t unknown = 0;  // no tool of that name
  uint64_t timeouts = 0;
  uint64_t late_answers = 0;       // after the timeout, or for a call we do not know
  uint64_t dropped_with_turn = 0;  // the turn ended before the answer
  uint64_t bad_offers = 0;
  uint64_t duplicate_calls = 0;
};

class ToolRegistry {
 public:
  // `wall_now_s`: seconds since the epoch (the time tool); tests fix it.
  ToolRegistry(RegistryOptions options, RegistryPort* port, std::function<int64_t()> wall_now_s = nullptr);

  void OnToolCall(const v1::ToolCall& call, const std::string& turn_id, int64_t now_ns);
  // The turn is over (not REQUIRES_ACTION): its pending calls are dropped.
  void OnTurnEnded(const std::string& turn_id, v1::TurnEnded::Outcome outcome);
  void OnOffer(const v1::ToolOffer& offer, int64_t now_ns);
  void OnAnswer(const v1::ToolAnswer& answer, int64_t now_ns);
  void OnVolumeLevel(const v1::VolumeLevel& level);
  // Timeouts and expired offers.
  void Tick(int64_t now_ns);
  // When Tick() has work next (a call's deadline, an offer's expiry).
  std::optional<int64_t> NextDeadline() const;

  v1::ToolCatalog Catalog() const;
  // The built-in tools with their JSON schemas (documented in README.md).
  static std::vector<v1::ToolSpec> BuiltinSpecs();
  const RegistryCounters& counters() const { return counters_; }
  size_t pending() const { return pending_.size(); }
  size_t providers() const { return providers_.size(); }

 private:
  struct Pending {
    std::string turn_id, name, provider;  // provider "" = waiting for the playback's level
    int64_t deadline_ns = 0;
  };
  struct Provided {
    v1::ToolSpec spec;
    std::string provider;
  };
  struct Provider {
    std::vector<v1::ToolSpec> tools;
    int64_t expires_ns = 0;
  };
  std::optional<Provided> FindOffered(const std::string& name) const;
  bool RunBuiltin(const v1::ToolCall& call, const std::string& turn_id, int64_t now_ns);
  // By value: callers pass strings that live in pending_, which Answer erases.
  void Answer(std::string turn_id, std::string call_id, const std::string& output);
  void Fail(std::string turn_id, std::string call_id, const std::string& error, bool prompt);
  void Fallback();
  std::string TimeNow() const;
  // Calls of text chats (ToolCall.text_chat): their failures play no prompt.
  std::deque<std::string> quiet_calls_;

  RegistryOptions options_;
  RegistryPort* port_;
  std::function<int64_t()> wall_now_s_;
  std::map<std::string, Provider> providers_;  // by provider name
  std::map<std::string, Pending> pending_;     // by call id
  std::vector<std::string> answered_;          // recent call ids (a repeated ToolCall is not run twice)
  RegistryCounters counters_;
  static constexpr size_t kMaxProviders = 64;
  static constexpr size_t kMaxToolsPerOffer = 64;
  static constexpr size_t kMaxPending = 64;
  static constexpr size_t kAnsweredKept = 256;
};

// "{name}" in `tmpl` → the string value of that key of `arguments_json` (a
// JSON object; numbers and booleans as written); unknown names stay as they are.
std::string FillTemplate(const std::string& tmpl, const std::string& arguments_json);

}  // namespace vb::tools
