// The contract as data (see contract.h).
#include "bus/contract.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <sstream>

namespace vb::bus {

namespace {
template <class M>
TopicInfo Info(const Topic<M>& t) {
  return {t.base, std::string(M::descriptor()->full_name()), t.plane};
}
}  // namespace

const std::vector<TopicInfo>& TopicTable() {
  using namespace topics;
  static const std::vector<TopicInfo> table = {
      Info(kAudioMic),       Info(kAudioClean),    Info(kAudioRef),    Info(kAudioOut),    Info(kSessionAudio),
      Info(kSessionEvent),   Info(kVoiceVad),      Info(kVoiceWake),   Info(kDialogState), Info(kDialogRequest),
      Info(kDialogOrder),    Info(kPlaybackEvent), Info(kHeartbeat),   Info(kDialogAck),   Info(kSessionBackfill),
      Info(kAudioBackfill),  Info(kToolOffer),     Info(kToolInvoke),  Info(kToolAnswer),  Info(kToolCatalog),
      Info(kPlaybackVolume), Info(kPlaybackLevel), Info(kChatRequest), Info(kChatEvent)};
  return table;
}

static_assert(topics::kAllBases.size() == 24,
              "a topic was added to bus/topics.h: add it to TopicTable() in bus/contract.cc too");

const TopicInfo* FindTopic(std::string_view base) {
  for (const auto& t : TopicTable())
    if (t.base == base) return &t;
  return nullptr;
}

const char* PlaneName(Plane p) { return p == Plane::kStream ? "stream" : "control"; }

std::vector<Node::Declared> Node::Declarations() const {
  std::vector<Declared> out;
  for (const auto& a : topics_) {
    std::string base = a->topic.substr(0, a->topic.find('/'));
    const TopicInfo* t = FindTopic(base);
    out.push_back({base, t ? t->type : "", a->plane, false});
  }
  for (const auto& s : subs_) out.push_back({s->base, s->type, s->plane, true});
  return out;
}

std::string ContractText(const std::string& kind, const std::vector<Node::Declared>& declared,
                         const std::string& section, bool json) {
  // Sorted and unique by direction and base (an actor may advertise one base per device).
  std::set<std::tuple<bool, std::string, std::string, int>> rows;
  for (const auto& d : declared) rows.insert({d.in, d.base, d.type, int(d.plane)});
  nlohmann::ordered_json j;
  j["kind"] = kind;
  j["binary"] = "vb-" + kind;
  j["in"] = nlohmann::json::array();
  j["out"] = nlohmann::json::array();
  for (const auto& [in, base, type, plane] : rows)
    j[in ? "in" : "out"].push_back({{"topic", base}, {"type", type}, {"plane", PlaneName(Plane(plane))}});
  j["config_section"] = section;
  j["heartbeat"] = {{"topic", "actor.heartbeat/<device>"},
                    {"type", "vb.v1.Heartbeat"},
                    {"every", "bus.heartbeat_ms (1000)"},
                    {"first", "at once when active, and again when a heartbeat subscriber appears"},
                    {"fields",
                     "actor, kind, state (ACTIVE; STOPPING last), pid, uptime_ms, counters "
                     "{msgs_in, msgs_out, drops, malformed, errors, dropped_inactive}, "
                     "drops[] per (source, topic), extra: malformed_<reason> and the actor's own"},
                    {"silence", "3 s without one while the bus works: killed and restarted by vb run"}};
  j["stop"] = {{"signals", {"SIGTERM", "SIGINT"}}, {"within_ms", 2000}, {"exit", 0}};
  j["counting"] =
      "seq gaps per (Header.source, topic) are drops; frames failing the checks of "
      "docs/wire.md are malformed, counted per reason, dropped, and the actor keeps serving";
  j["exit_codes"] = {{"0", "stopped"},
                     {"1", "failed at start"},
                     {"64", "bad command line"},
                     {"78", "config error (file:line:key on stderr; not restarted)"}};
  j["command_line"] = "--config FILE --name NAME | --print-default-config | --help";
  if (json) return j.dump(2) + "\n";
  std::ostringstream o;
  o << "kind " << kind << " (vb-" << kind << ")\n";
  for (const char* dir : {"in", "out"}) {
    for (const auto& r : j[dir])
      o << "  " << (dir[0] == 'i' ? "in " : "out") << "  " << r["topic"].get<std::string>() << "/<device>  "
        << r["type"].get<std::string>() << "  " << r["plane"].get<std::string>() << "\n";
  }
  o << "  heartbeat  actor.heartbeat every bus.heartbeat_ms; STOPPING last; silent 3 s = restarted\n"
    << "  stop       SIGTERM/SIGINT: exit 0 within 2 s\n"
    << "  counting   seq gaps = drops, bad frames = malformed (per reason), keep serving\n"
    << "  config section:\n";
  std::istringstream lines(section);
  for (std::string l; std::getline(lines, l);)
    if (!l.empty() && l[0] != '#') o << "    " << l << "\n";
  return o.str();
}

}  // namespace vb::bus
