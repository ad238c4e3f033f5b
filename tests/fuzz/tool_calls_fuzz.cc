// Fuzzes vb-tools' ToolRegistry (actors/tools/tool_registry.h): the agent's
// tool calls as Coze delivers them — any name, any arguments text (the
// model's JSON, or not JSON) — and the offers and answers of tool providers
// on the bus. One input is one run of the actor, one event per line:
//   CALL NAME ARGS          the agent calls NAME (turn "chat1"); ARGS is the rest
//   !offer PROVIDER TOOL    a provider offers TOOL
//   !answer CALL PROVIDER OUTPUT   a provider answers
//   !error CALL PROVIDER WHY       a provider fails
//   !end TURN               the turn ends (its calls are dropped)
//   !level PERCENT          playback says the volume
//   !tick MS                time goes on
// Fields that come off the bus are made ASCII (protobuf refuses invalid UTF-8).
// Whatever comes in: no crash, no call answered twice, and once the
// deadlines have passed nothing is left pending (every call is answered or
// dropped with its turn).
#include <cstdlib>
#include <map>
#include <string>

#include "actors/tools/tool_registry.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

struct Port : vb::tools::RegistryPort {
  std::map<std::string, int> outputs;
  void SubmitOutput(const std::string&, const std::string& call_id, const std::string&) override { ++outputs[call_id]; }
  void Invoke(const vb::v1::ToolInvocation& inv) override {
    std::string wire;
    inv.SerializeToString(&wire);
  }
  void Command(const vb::v1::DialogRequest& cmd) override {
    std::string wire;
    cmd.SerializeToString(&wire);
  }
  void Volume(const vb::v1::VolumeCommand& cmd) override {
    std::string wire;
    cmd.SerializeToString(&wire);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Port port;
  vb::tools::RegistryOptions options;
  options.answers = {{"weather", "It is sunny in {city}, {unit} {missing}"}, {"echo", "{}{"}};
  vb::tools::ToolRegistry reg(options, &port, [] { return int64_t(1'700'000'000); });
  int64_t now = 0;
  for (std::string_view line : vb::fuzz::Lines(vb::fuzz::AsView(data, size), 128)) {
    std::string_view rest = line;
    if (line.starts_with("!offer ")) {
      vb::fuzz::Word(&rest);
      vb::v1::ToolOffer offer;
      offer.set_provider(vb::fuzz::Word(&rest));
      auto* spec = offer.add_tools();
      spec->set_name(vb::fuzz::Word(&rest));
      spec->set_parameters_json(vb::fuzz::Ascii(rest));
      spec->set_timeout_ms(uint32_t(vb::fuzz::Number(rest)));
      reg.OnOffer(offer, now);
    } else if (line.starts_with("!answer ") || line.starts_with("!error ")) {
      const bool error = line[1] == 'e';
      vb::fuzz::Word(&rest);
      vb::v1::ToolAnswer answer;
      answer.set_call_id(vb::fuzz::Word(&rest));
      answer.set_provider(vb::fuzz::Word(&rest));
      (error ? answer.mutable_error() : answer.mutable_output())->assign(vb::fuzz::Ascii(rest));
      reg.OnAnswer(answer, now);
    } else if (line.starts_with("!end ")) {
      reg.OnTurnEnded(vb::fuzz::Ascii(line.substr(5)), vb::v1::TurnEnded::CANCELLED);
    } else if (line.starts_with("!level ")) {
      vb::v1::VolumeLevel level;
      level.set_percent(uint32_t(vb::fuzz::Number(line.substr(7))));
      reg.OnVolumeLevel(level);
    } else if (line.starts_with("!tick ")) {
      now += vb::fuzz::Number(line.substr(6)) * 1'000'000;
      reg.Tick(now);
    } else {
      vb::v1::ToolCall call;
      call.set_call_id(vb::fuzz::Word(&rest));
      call.set_name(vb::fuzz::Word(&rest));
      call.set_arguments_json(vb::fuzz::Ascii(rest));
      reg.OnToolCall(call, "chat1", now);
    }
  }
  (void)reg.Catalog();
  for (int round = 0; round < 4 && reg.pending() > 0; ++round) {
    now += 3'600'000'000'000;
    reg.Tick(now);
  }
  if (reg.pending() != 0) std::abort();
  for (const auto& [id, n] : port.outputs)
    if (n > 1) std::abort();
  return 0;
}
