// The contract as data (issue 15): what an actor kind subscribes to and
// publishes (topic base, payload type, plane), its config section, and the
// duties every actor has (heartbeat, stop, counting). Built from what the
// actor declares when it runs (Node::Declarations after Configure/Activate)
// and from the topic table, so it cannot drift from the code:
// `vb-KIND --contract [--json]`, collected by `vb contract`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bus/node.h"

namespace vb::bus {

struct TopicInfo {
  std::string_view base;
  std::string type;  // full protobuf name, e.g. "vb.v1.AudioFrame"
  Plane plane;
};
// Every topic of bus/topics.h with its payload type and plane.
const std::vector<TopicInfo>& TopicTable();
const TopicInfo* FindTopic(std::string_view base);
const char* PlaneName(Plane p);

// One kind's contract. `declared`: Node::Declarations() of a configured
// actor; `section`: its documented default section (YAML with comments).
std::string ContractText(const std::string& kind, const std::vector<Node::Declared>& declared,
                         const std::string& section, bool json);

}  // namespace vb::bus
