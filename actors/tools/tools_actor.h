// ToolsActor: vb-tools' bus adapter. It feeds ToolRegistry the agent's tool
// calls (session.event), providers' offers and answers (tool.offer,
// tool.answer) and the playback's volume (playback.level), and publishes
// what the registry decides: tool outputs and other commands on
// dialog.request, invocations on tool.invoke, volume commands on
// playback.volume, and the catalog on tool.catalog (on change and every
// heartbeat). One timer, set to the registry's next deadline.
#pragma once

#include <memory>
#include <string>

#include "actors/tools/tool_registry.h"
#include "bus/actor.h"
#include "bus/log.h"

namespace vb::tools {

class ToolsActor : public bus::Actor, private RegistryPort {
 public:
  void DeclareConfig(config::Section& s) override;
  Status Configure(bus::Context& ctx) override;
  void Deactivate(bus::Context& ctx) override;
  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override;

 private:
  // RegistryPort
  void SubmitOutput(const std::string& turn_id, const std::string& call_id, const std::string& output) override;
  void Invoke(const v1::ToolInvocation& inv) override;
  void Command(const v1::DialogRequest& cmd) override;
  void Volume(const v1::VolumeCommand& cmd) override;
  void Problem(const std::string& what) override;

  // After every event: publish a changed catalog, re-arm the deadline timer.
  void Reschedule();
  void PublishCatalog(bool always);

  RegistryOptions options_;
  bus::Context* ctx_ = nullptr;
  std::unique_ptr<ToolRegistry> registry_;
  bus::Publisher<v1::DialogRequest> commands_;
  bus::Publisher<v1::ToolInvocation> invocations_;
  bus::Publisher<v1::ToolCatalog> catalog_;
  bus::Publisher<v1::VolumeCommand> volume_;
  std::string last_catalog_;
  bus::Loop::TimerId timer_ = 0;
  int64_t timer_at_ = 0;
  uint64_t next_command_ = 0;
  RateLimit problem_log_;
};

}  // namespace vb::tools
