// ToolRegistry (see tool_registry.h): routing, built-in tools, timeouts.
#include "actors/tools/tool_registry.h"

#include <nlohmann/json.hpp>

#include <time.h>

#include <algorithm>
#include <cctype>

#include "bus/text.h"

namespace vb::tools {
namespace {

using Json = nlohmann::json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

v1::ToolSpec Spec(const char* name, const char* description, const std::string& schema) {
  v1::ToolSpec s;
  s.set_name(name);
  s.set_description(description);
  s.set_parameters_json(schema);
  return s;
}

// The arguments as a JSON object; a call without arguments is an empty one.
bool ParseArgs(const std::string& text, Json* out) {
  if (text.empty()) {
    *out = Json::object();
    return true;
  }
  *out = Json::parse(text, nullptr, false);
  return !out->is_discarded() && out->is_object();
}

// An integer argument: a JSON number or a string of digits (agents send both).
std::optional<int64_t> IntArg(const Json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer() || it->is_number_unsigned()) return it->get<int64_t>();
  if (it->is_number_float()) {  // clamped first: casting 1e40 to int64 is undefined
    const double v = std::clamp(it->get<double>(), -1e15, 1e15);
    return int64_t(v + 0.5);
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > 9) return std::nullopt;
    size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
    if (i == s.size() || !std::all_of(s.begin() + i, s.end(), [](char c) { return std::isdigit(uint8_t(c)); }))
      return std::nullopt;
    return std::stoll(s);
  }
  return std::nullopt;
}

constexpr int64_t kMs = 1'000'000;

}  // namespace

std::vector<v1::ToolSpec> ToolRegistry::BuiltinSpecs() {
  const Json none = {{"type", "object"}, {"properties", Json::object()}, {"additionalProperties", false}};
  auto step = [](const char* what) {
    return Json{{"type", "object"},
                {"properties",
                 {{"step",
                   {{"type", "integer"},
                    {"minimum", 1},
                    {"maximum", 100},
                    {"description", std::string("percent to ") + what + " (default 10)"}}}}},
                {"additionalProperties", false}};
  };
  const Json level = {
      {"type", "object"},
      {"properties",
       {{"level", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100}, {"description", "volume in percent"}}}}},
      {"required", {"level"}},
      {"additionalProperties", false}};
  const Json mode = {{"type", "object"},
                     {"properties",
                      {{"mode",
                        {{"type", "string"},
                         {"enum", {"continuous", "wake_word", "push_to_talk"}},
                         {"description",
                          "continuous: always listening; wake_word: after the wake word; "
                          "push_to_talk: while the key is held"}}}}},
                     {"required", {"mode"}},
                     {"additionalProperties", false}};
  return {
      Spec("get_current_time", "the current local date, time, weekday and time zone of the device", Dump(none)),
      Spec("set_volume", "set the speaker volume, in percent", Dump(level)),
      Spec("volume_up", "make the speaker louder", Dump(step("add"))),
      Spec("volume_down", "make the speaker quieter", Dump(step("take away"))),
      Spec("stop", "stop speaking: the current reply is cancelled", Dump(none)),
      Spec("set_mode", "switch how the device listens", Dump(mode)),
  };
}

std::string FillTemplate(const std::string& tmpl, const std::string& arguments_json) {
  Json args;
  if (!ParseArgs(arguments_json, &args)) args = Json::object();
  std::string out;
  out.reserve(tmpl.size());
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t close = tmpl[i] == '{' ? tmpl.find('}', i + 1) : std::string::npos;
    if (close != std::string::npos) {
      std::string key = tmpl.substr(i + 1, close - i - 1);
      auto it = !key.empty() && key.size() <= 64 ? args.find(key) : args.end();
      if (it != args.end()) {
        out += it->is_string() ? it->get<std::string>() : Dump(*it);
        i = close + 1;
        continue;
      }
    }
    out += tmpl[i++];
  }
  return out;
}

ToolRegistry::ToolRegistry(RegistryOptions options, RegistryPort* port, std::function<int64_t()> wall_now_s)
    : options_(std::move(options)), port_(port), wall_now_s_(std::move(wall_now_s)) {
  if (!wall_now_s_) wall_now_s_ = [] { return int64_t(::time(nullptr)); };
}

std::optional<ToolRegistry::Provided> ToolRegistry::FindOffered(const std::string& name) const {
  // A provider's offer wins over config and built-in tools of the same
  // name: it is the live, specific one (e.g. a real weather service).
  for (const auto& [who, p] : providers_)
    for (const auto& t : p.tools)
      if (t.name() == name) return Provided{t, who};
  return std::nullopt;
}

void ToolRegistry::OnToolCall(const v1::ToolCall& call, const std::string& turn_id, int64_t now_ns) {
  const std::string& id = call.call_id();
  if (id.empty()) {
    port_->Problem("tool call without a call id: ignored");
    return;
  }
  if (pending_.count(id) || std::find(answered_.begin(), answered_.end(), id) != answered_.end()) {
    ++counters_.duplicate_calls;
    return;
  }
  ++counters_.calls;
  if (call.text_chat()) {
    if (quiet_calls_.size() >= kAnsweredKept) quiet_calls_.pop_front();
    quiet_calls_.push_back(id);
  }
  if (pending_.size() >= kMaxPending) {
    Fail(turn_id, id, "too many tool calls under way", true);
    return;
  }
  if (auto p = FindOffered(call.name())) {
    uint32_t timeout =
        p->spec.timeout_ms() ? std::min<uint32_t>(p->spec.timeout_ms(), 60000) : uint32_t(options_.timeout_ms);
    pending_[id] = {turn_id, call.name(), p->provider, now_ns + int64_t(timeout) * kMs};
    v1::ToolInvocation inv;
    inv.set_call_id(id);
    inv.set_turn_id(turn_id);
    inv.set_name(call.name());
    inv.set_arguments_json(call.arguments_json());
    inv.set_provider(p->provider);
    inv.set_timeout_ms(timeout);
    port_->Invoke(inv);
    return;
  }
  for (const auto& [name, tmpl] : options_.answers) {
    if (name != call.name()) continue;
    ++counters_.answered_config;
    Answer(turn_id, id, FillTemplate(tmpl, call.arguments_json()));
    return;
  }
  if (RunBuiltin(call, turn_id, now_ns)) return;
  ++counters_.unknown;
  Fail(turn_id, id, "no tool named '" + Utf8Prefix(call.name(), 64) + "' is available on this device", true);
}

bool ToolRegistry::RunBuiltin(const v1::ToolCall& call, const std::string& turn_id, int64_t now_ns) {
  const std::string& name = call.name();
  const std::string& id = call.call_id();
  bool known = false;
  for (const auto& s : BuiltinSpecs()) known = known || s.name() == name;
  if (!known) return false;
  Json args;
  if (!ParseArgs(call.arguments_json(), &args)) {
    ++counters_.failed;
    Fail(turn_id, id, "arguments of " + name + " are not a JSON object", false);
    return true;
  }
  if (name == "get_current_time") {
    ++counters_.answered_builtin;
    Answer(turn_id, id, TimeNow());
  } else if (name == "set_volume" || name == "volume_up" || name == "volume_down") {
    v1::VolumeCommand v;
    v.set_command_id(id);
    if (name == "set_volume") {
      auto level = IntArg(args, "level");
      if (!level || *level < 0 || *level > 100) {
        ++counters_.failed;
        Fail(turn_id, id, "set_volume needs level, an integer from 0 to 100", false);
        return true;
      }
      v.set_set_percent(uint32_t(*level));
    } else {
      auto step = IntArg(args, "step");
      if (step && (*step < 1 || *step > 100)) {
        ++counters_.failed;
        Fail(turn_id, id, name + ": step must be an integer from 1 to 100", false);
        return true;
      }
      int32_t s = int32_t(step.value_or(options_.volume_step));
      v.set_step_percent(name == "volume_up" ? s : -s);
    }
    // Answered when the playback reports the new level.
    pending_[id] = {turn_id, name, "", now_ns + int64_t(options_.timeout_ms) * kMs};
    port_->Volume(v);
  } else if (name == "stop") {
    ++counters_.answered_builtin;
    // The answer first (the conversation keeps a complete record), then the
    // reply is cancelled: the playback flushes, the session cancels the chat.
    Answer(turn_id, id, R"({"stopped":true})");
    v1::DialogRequest c;
    c.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
    c.mutable_interrupt()->set_turn_id(turn_id);
    port_->Command(c);
  } else if (name == "set_mode") {
    auto it = args.find("mode");
    std::string mode = it != args.end() && it->is_string() ? it->get<std::string>() : "";
    v1::DialogMode m = mode == "continuous"     ? v1::MODE_CONTINUOUS
                       : mode == "wake_word"    ? v1::MODE_WAKE_WORD
                       : mode == "push_to_talk" ? v1::MODE_PUSH_TO_TALK
                                                : v1::MODE_UNSPECIFIED;
    if (m == v1::MODE_UNSPECIFIED) {
      ++counters_.failed;
      Fail(turn_id, id, "set_mode needs mode: continuous, wake_word or push_to_talk", false);
      return true;
    }
    ++counters_.answered_builtin;
    Answer(turn_id, id, Dump({{"mode", mode}}));
    v1::DialogRequest c;
    c.mutable_set_mode()->set_mode(m);
    port_->Command(c);
  }
  return true;
}

std::string ToolRegistry::TimeNow() const {
  time_t t = time_t(wall_now_s_());
  tm local{};
  localtime_r(&t, &local);
  char date[16], clock[16], weekday[16], zone[16], offset[8];
  strftime(date, sizeof date, "%Y-%m-%d", &local);
  strftime(clock, sizeof clock, "%H:%M:%S", &local);
  strftime(weekday, sizeof weekday, "%A", &local);
  strftime(zone, sizeof zone, "%Z", &local);
  strftime(offset, sizeof offset, "%z", &local);
  std::string off = offset;
  if (off.size() == 5) off.insert(3, ":");
  return Dump({{"date", date},
               {"time", clock},
               {"weekday", weekday},
               {"timezone", zone},
               {"utc_offset", off},
               {"iso8601", std::string(date) + "T" + clock + off}});
}

void ToolRegistry::Answer(std::string turn_id, std::string call_id, const std::string& output) {
  pending_.erase(call_id);
  if (answered_.size() >= kAnsweredKept) answered_.erase(answered_.begin());
  answered_.push_back(call_id);
  port_->SubmitOutput(turn_id, call_id, output);
}

void ToolRegistry::Fallback() {
  if (options_.fallback_prompt.empty()) return;
  v1::DialogRequest c;
  c.mutable_play_prompt()->set_name(options_.fallback_prompt);
  port_->Command(c);
}

void ToolRegistry::Fail(std::string turn_id, std::string call_id, const std::string& error, bool prompt) {
  port_->Problem("tool call " + call_id + ": " + error);
  Answer(turn_id, call_id, Dump({{"error", error}}));
  if (prompt && std::find(quiet_calls_.begin(), quiet_calls_.end(), call_id) == quiet_calls_.end()) Fallback();
}

void ToolRegistry::OnTurnEnded(const std::string& turn_id, v1::TurnEnded::Outcome outcome) {
  if (outcome == v1::TurnEnded::REQUIRES_ACTION || turn_id.empty()) return;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.turn_id == turn_id) {
      ++counters_.dropped_with_turn;
      if (answered_.size() >= kAnsweredKept) answered_.erase(answered_.begin());
      answered_.push_back(it->first);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void ToolRegistry::OnOffer(const v1::ToolOffer& offer, int64_t now_ns) {
  const std::string& who = offer.provider();
  if (who.empty() || who.size() > 128 || offer.tools_size() > int(kMaxToolsPerOffer)) {
    ++counters_.bad_offers;
    port_->Problem("tool offer without a provider name or with too many tools: ignored");
    return;
  }
  if (offer.tools_size() == 0) {
    providers_.erase(who);
    return;
  }
  if (!providers_.count(who) && providers_.size() >= kMaxProviders) {
    ++counters_.bad_offers;
    port_->Problem("tool offer from " + Utf8Prefix(who, 64) + ": already " + std::to_string(kMaxProviders) +
                   " providers; ignored");
    return;
  }
  std::vector<v1::ToolSpec> tools;
  for (const auto& t : offer.tools()) {
    if (t.name().empty() || t.name().size() > 64) {
      ++counters_.bad_offers;
      port_->Problem("tool offer from " + Utf8Prefix(who, 64) + ": a tool without a usable name; skipped");
      continue;
    }
    tools.push_back(t);
  }
  uint32_t ttl = offer.ttl_ms() ? std::clamp<uint32_t>(offer.ttl_ms(), 500, 600000) : options_.default_offer_ttl_ms;
  providers_[who] = {std::move(tools), now_ns + int64_t(ttl) * kMs};
}

void ToolRegistry::OnAnswer(const v1::ToolAnswer& answer, int64_t now_ns) {
  auto it = pending_.find(answer.call_id());
  // Only the provider asked may answer (others may offer the same name).
  if (it == pending_.end() || it->second.provider.empty() || it->second.provider != answer.provider()) {
    ++counters_.late_answers;
    return;
  }
  const std::string turn = it->second.turn_id;
  if (!answer.error().empty()) {
    ++counters_.failed;
    Fail(turn, answer.call_id(), answer.error(), true);
    return;
  }
  ++counters_.answered_provider;
  Answer(turn, answer.call_id(), answer.output());
}

void ToolRegistry::OnVolumeLevel(const v1::VolumeLevel& level) {
  auto it = pending_.find(level.command_id());
  if (level.command_id().empty() || it == pending_.end() || !it->second.provider.empty()) return;
  ++counters_.answered_builtin;
  Answer(it->second.turn_id, level.command_id(), Dump({{"volume", level.percent()}}));
}

void ToolRegistry::Tick(int64_t now_ns) {
  for (auto it = providers_.begin(); it != providers_.end();) {
    if (now_ns >= it->second.expires_ns) {
      port_->Problem("tool provider " + Utf8Prefix(it->first, 64) + " did not renew its offer: its tools are gone");
      it = providers_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<std::pair<std::string, Pending>> due;
  for (const auto& [id, p] : pending_)
    if (now_ns >= p.deadline_ns) due.emplace_back(id, p);
  for (const auto& [id, p] : due) {
    ++counters_.timeouts;
    const std::string who = p.provider.empty() ? "the speaker (vb-playback)" : "its provider " + p.provider;
    Fail(p.turn_id, id, "the tool " + p.name + " did not answer in time (" + who + ")", true);
  }
}

std::optional<int64_t> ToolRegistry::NextDeadline() const {
  std::optional<int64_t> next;
  for (const auto& [id, p] : pending_)
    if (!next || p.deadline_ns < *next) next = p.deadline_ns;
  for (const auto& [who, p] : providers_)
    if (!next || p.expires_ns < *next) next = p.expires_ns;
  return next;
}

v1::ToolCatalog ToolRegistry::Catalog() const {
  v1::ToolCatalog c;
  c.set_timeout_ms(uint32_t(options_.timeout_ms));
  for (const auto& [who, p] : providers_)
    for (const auto& t : p.tools) {
      auto& e = *c.add_tools();
      *e.mutable_spec() = t;
      e.set_provider(who);
    }
  for (const auto& [name, tmpl] : options_.answers) {
    auto& e = *c.add_tools();
    e.mutable_spec()->set_name(name);
    e.mutable_spec()->set_description("answered from the config");
    e.set_provider("config");
  }
  for (const auto& s : BuiltinSpecs()) {
    auto& e = *c.add_tools();
    *e.mutable_spec() = s;
    e.set_provider("builtin");
  }
  return c;
}

}  // namespace vb::tools
