// ToolsActor (see tools_actor.h).
#include "actors/tools/tools_actor.h"

#include "bus/topics.h"

namespace vb::tools {

void ToolsActor::DeclareConfig(config::Section& s) {
  s.Key("timeout_ms", &options_.timeout_ms, 8000, {100, 60000},
        "a tool call not answered within this long is answered with an error output (the agent goes on) "
        "and the fallback prompt plays");
  s.Key("fallback_prompt", &options_.fallback_prompt, std::string("error"),
        "prompt sound (vb-playback's name) when a tool call fails or times out; \"\" = none");
  s.Key("volume_step", &options_.volume_step, 10, {1, 100}, "volume_up / volume_down without a step, percent");
  s.Key("answers", &options_.answers,
        "tools answered from this file: name → output; {arg} in the output is replaced by that argument "
        "(demo and test tools; a provider on the bus with the same name wins)");
  if (s.report() && s.report()->describe) return;
  for (size_t i = 0; i < options_.answers.size(); ++i)
    if (options_.answers[i].first.empty() || options_.answers[i].first.size() > 64)
      s.Error("answers", "a tool name must have 1 to 64 characters", int(i));
}

Status ToolsActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  registry_ = std::make_unique<ToolRegistry>(options_, static_cast<RegistryPort*>(this));
  commands_ = ctx.bus().Advertise(bus::topics::kDialogRequest);
  invocations_ = ctx.bus().Advertise(bus::topics::kToolInvoke);
  catalog_ = ctx.bus().Advertise(bus::topics::kToolCatalog);
  volume_ = ctx.bus().Advertise(bus::topics::kPlaybackVolume);

  ctx.bus().Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
    const std::string turn = m.header.turn_id();  // a copy: answering publishes
    if (m.msg.has_tool_call()) {
      const v1::ToolCall call = m.msg.tool_call();
      VB_LOG(kInfo) << "tool call " << call.call_id() << ": " << call.name() << "("
                    << call.arguments_json().substr(0, 200) << ") in turn " << turn;
      registry_->OnToolCall(call, turn, bus::MonoNs());
    } else if (m.msg.has_turn_ended()) {
      registry_->OnTurnEnded(turn, m.msg.turn_ended().outcome());
    }
    Reschedule();
  });
  ctx.bus().Subscribe<v1::ToolOffer>(bus::topics::kToolOffer, [this](const auto& m) {
    const v1::ToolOffer o = m.msg;
    registry_->OnOffer(o, bus::MonoNs());
    Reschedule();
  });
  ctx.bus().Subscribe<v1::ToolAnswer>(bus::topics::kToolAnswer, [this](const auto& m) {
    const v1::ToolAnswer a = m.msg;
    registry_->OnAnswer(a, bus::MonoNs());
    Reschedule();
  });
  ctx.bus().Subscribe<v1::VolumeLevel>(bus::topics::kPlaybackLevel, [this](const auto& m) {
    const v1::VolumeLevel l = m.msg;
    registry_->OnVolumeLevel(l);
    Reschedule();
  });
  ctx.bus().Subscribe<v1::CommandAck>(bus::topics::kDialogAck, [this](const auto& m) {
    // Our tool outputs are answered by the session: a refusal is worth a line.
    if (m.msg.command_id().rfind(ctx_->name() + "-", 0) != 0 || m.msg.result() != v1::CommandAck::REFUSED) return;
    ctx_->Count("outputs_refused");
    Problem("the session refused a tool output: " + m.msg.reason());
  });
  return Status::Ok();
}

void ToolsActor::Deactivate(bus::Context& ctx) {
  if (timer_) ctx.loop().CancelTimer(timer_);
  timer_ = 0;
}

void ToolsActor::Reschedule() {
  PublishCatalog(false);
  auto next = registry_->NextDeadline();
  if (next && timer_ && *next == timer_at_) return;
  if (timer_) ctx_->loop().CancelTimer(timer_);
  timer_ = 0;
  if (!next) return;
  timer_at_ = *next;
  const int64_t delay = std::max<int64_t>(0, *next - bus::MonoNs());
  timer_ = ctx_->loop().AddOneShot(std::chrono::nanoseconds(delay), [this] {
    timer_ = 0;
    registry_->Tick(bus::MonoNs());
    Reschedule();
  });
}

void ToolsActor::PublishCatalog(bool always) {
  v1::ToolCatalog c = registry_->Catalog();
  std::string bytes = c.SerializeAsString();
  if (!always && bytes == last_catalog_) return;
  last_catalog_ = std::move(bytes);
  catalog_.Publish(c);
}

void ToolsActor::SubmitOutput(const std::string& turn_id, const std::string& call_id, const std::string& output) {
  VB_LOG(kInfo) << "tool output for " << call_id << ": " << output.substr(0, 200);
  v1::DialogRequest c;
  c.mutable_tool_output()->set_turn_id(turn_id);
  c.mutable_tool_output()->set_call_id(call_id);
  c.mutable_tool_output()->set_output(output);
  c.set_command_id(ctx_->name() + "-" + std::to_string(++next_command_));
  commands_.Publish(c, {.turn_id = turn_id});
}

void ToolsActor::Invoke(const v1::ToolInvocation& inv) {
  ctx_->Count("invocations");
  invocations_.Publish(inv, {.turn_id = inv.turn_id()});
}

void ToolsActor::Command(const v1::DialogRequest& cmd) { commands_.Publish(cmd); }

void ToolsActor::Volume(const v1::VolumeCommand& cmd) { volume_.Publish(cmd); }

void ToolsActor::Problem(const std::string& what) {
  uint64_t suppressed = 0;
  if (problem_log_.Allow(bus::MonoNs(), &suppressed))
    VB_LOG(kWarn) << what.substr(0, 300) << (suppressed ? " (+" + std::to_string(suppressed) + " suppressed)" : "");
}

void ToolsActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  PublishCatalog(true);  // late joiners
  auto& x = *hb.mutable_extra();
  const auto& c = registry_->counters();
  x["calls"] = int64_t(c.calls);
  x["answered_builtin"] = int64_t(c.answered_builtin);
  x["answered_config"] = int64_t(c.answered_config);
  x["answered_provider"] = int64_t(c.answered_provider);
  x["failed"] = int64_t(c.failed);
  x["unknown"] = int64_t(c.unknown);
  x["timeouts"] = int64_t(c.timeouts);
  x["late_answers"] = int64_t(c.late_answers);
  x["dropped_with_turn"] = int64_t(c.dropped_with_turn);
  x["bad_offers"] = int64_t(c.bad_offers);
  x["pending"] = int64_t(registry_->pending());
  x["providers"] = int64_t(registry_->providers());
}

}  // namespace vb::tools
