// Implementation of agent.h, and the built-in script.
#include "tools/coze-sim/agent.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

namespace vb::cozesim {

const char* Agent::BuiltInScript() {
  return R"YAML(# voicebus simulator agent (built in). Regexes match the user text
# lowercased, without punctuation. Templates: {text} user text, {1}.. regex
# groups, {time} {date} now (UTC), {recall} the previous user turn of this
# conversation, {first} its first user turn, {output} a tool's output.
# `fail: {code, msg, after}` ends the chat conversation.chat.failed with
# last_error {code, msg} after `after` sentences of `reply` (default 0).
prologue: "Hello, I am the voicebus simulator. Ask me the time, the date, the weather, or for a story."
cities: [paris, london, tokyo, berlin, beijing, shanghai, madrid, rome, new york, san francisco]
fallback: "You said: {text}."
rules:
  - name: greeting
    match: ['^(hello|hi|hey)\b']
    grammar: ['(hello | hi | hey) [there]']
    reply: "Hello! I am the voicebus simulator. How can I help you?"
  - name: time
    match: ['\bwhat time\b', '\bthe time\b']
    grammar: ['what time is it', 'what is the time']
    reply: "It is {time}."
  - name: date
    match: ['\bdate\b', '\bwhat day\b']
    grammar: ['what is the date [today]', 'what day is it [today]']
    reply: "Today is {date}."
  - name: recall_first
    match: ['\bwhat did i (say|ask) first\b']
    grammar: ['what did i (say | ask) first']
    reply: "First you said: {first}."
  - name: recall
    match: ['\bwhat did i (say|ask)\b']
    grammar: ['what did i (say | ask) [before | earlier]']
    reply: "Before that you said: {recall}."
  - name: story
    match: ['\bstory\b']
    grammar: ['tell me a [long] story']
    reply: >-
      Once upon a time, in a small village by the sea, there lived an old
      lighthouse keeper named Tom. Every evening he climbed the one hundred and
      twelve steps of his tower to light the great lamp. The fishermen trusted
      that light to bring them home through fog and storm. One winter night the
      lamp went dark, because the oil had frozen in the cold. Tom wrapped the
      oil can in his own coat and held it against his chest until it flowed
      again. When the light came back, six small boats found their way into
      the harbour. The villagers never forgot that night. They say that on
      foggy evenings you can still see a warm light in the tower, and that is
      why the children of the village sleep so well. The end.
  - name: failure
    match: ['\bsimulate an? (failure|error)\b']
    grammar: ['simulate a failure']
    fail: {code: 4013, msg: "model error (scripted failure)"}
  - name: weather
    match: ['\bweather\b.*\bin ([a-z ]+)$', '\bweather\b']
    grammar: ['what is the weather [like] in <city>', 'how is the weather in <city>']
    tool:
      name: get_weather
      arguments: {location: "{1}"}
      resume: "The weather in {1}: {output}."
)YAML";
}

std::string Agent::Normalize(const std::string& text) {
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '\'') {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += char(std::tolower(c));
    } else {
      space = true;
    }
  }
  return out;
}

std::unique_ptr<Agent> Agent::FromYaml(const std::string& yaml_text, std::string* error) {
  auto agent = std::unique_ptr<Agent>(new Agent());
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (!root.IsMap()) {
      *error = "script: top level must be a map";
      return nullptr;
    }
    if (root["prologue"]) agent->prologue_ = root["prologue"].as<std::string>();
    if (root["fallback"]) agent->fallback_ = root["fallback"].as<std::string>();
    if (root["cities"]) agent->cities_ = root["cities"].as<std::vector<std::string>>();
    for (const auto& n : root["rules"]) {
      Rule r;
      r.name = n["name"].as<std::string>();
      for (const auto& m : n["match"]) {
        try {
          r.match.emplace_back(m.as<std::string>(), std::regex::ECMAScript | std::regex::icase);
        } catch (const std::regex_error& e) {
          *error = "script line " + std::to_string(m.Mark().line + 1) + ": bad regex in rule " + r.name;
          return nullptr;
        }
      }
      if (n["grammar"]) r.grammar = n["grammar"].as<std::vector<std::string>>();
      if (n["reply"]) r.reply = n["reply"].as<std::string>();
      if (n["tool"]) {
        ToolCall t;
        t.name = n["tool"]["name"].as<std::string>();
        nlohmann::json args = nlohmann::json::object();
        for (const auto& kv : n["tool"]["arguments"]) args[kv.first.as<std::string>()] = kv.second.as<std::string>();
        t.arguments_json = args.dump();
        t.resume_template = n["tool"]["resume"] ? n["tool"]["resume"].as<std::string>() : "{output}";
        r.tool = t;
      }
      if (n["fail"]) {
        const YAML::Node& f = n["fail"];
        TurnFault t;
        t.kind = TurnFault::kChatFailed;
        t.code = f["code"] ? f["code"].as<int>() : 5000;
        t.msg = f["msg"] ? f["msg"].as<std::string>() : CozeErrorMessage(t.code);
        t.after_sentences = f["after"] ? f["after"].as<int>() : 0;
        if (t.code <= 0 || t.after_sentences < 0 || (t.after_sentences > 0 && r.reply.empty())) {
          *error = "script line " + std::to_string(f.Mark().line + 1) + ": rule " + r.name +
                   ": fail needs a positive code, and a reply when after > 0";
          return nullptr;
        }
        r.failure = t;
      }
      if (r.match.empty() || (r.reply.empty() && !r.tool && !r.failure)) {
        *error = "script line " + std::to_string(n.Mark().line + 1) + ": rule " + r.name +
                 " needs match and reply, tool or fail";
        return nullptr;
      }
      agent->rules_.push_back(std::move(r));
    }
  } catch (const YAML::Exception& e) {
    *error = std::string("script: ") + e.what();
    return nullptr;
  }
  return agent;
}

std::unique_ptr<Agent> Agent::BuiltIn() {
  std::string error;
  return FromYaml(BuiltInScript(), &error);
}

std::string Agent::Expand(const std::string& tmpl, const std::string& text, const std::smatch* m,
                          const std::vector<std::string>& earlier) const {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '{') {
      out += tmpl[i];
      continue;
    }
    size_t end = tmpl.find('}', i);
    if (end == std::string::npos) {
      out += tmpl.substr(i);
      break;
    }
    std::string key = tmpl.substr(i + 1, end - i - 1);
    i = end;
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    if (key == "text") {
      out += text;
    } else if (key == "time") {
      std::strftime(buf, sizeof buf, "%H:%M UTC", &tm);
      out += buf;
    } else if (key == "date") {
      std::strftime(buf, sizeof buf, "%A, %B %d, %Y", &tm);
      out += buf;
    } else if (key == "recall") {
      out += earlier.empty() ? std::string("nothing yet") : earlier.back();
    } else if (key == "first") {
      out += earlier.empty() ? std::string("nothing yet") : earlier.front();
    } else if (!key.empty() && std::isdigit(uint8_t(key[0])) && m) {
      size_t g = size_t(std::stoi(key));
      if (g < m->size()) out += (*m)[g].str();
    } else {
      out += "{" + key + "}";  // unknown placeholders stay visible
    }
  }
  return out;
}

AgentReply Agent::Respond(const std::string& user_text, const std::vector<std::string>& earlier) const {
  std::string norm = Normalize(user_text);
  for (const auto& r : rules_) {
    for (const auto& re : r.match) {
      std::smatch m;
      if (!std::regex_search(norm, m, re)) continue;
      AgentReply reply;
      reply.rule = r.name;
      if (r.tool) {
        ToolCall t = *r.tool;
        // Expand the values, not the JSON text (its braces are not placeholders).
        nlohmann::json args = nlohmann::json::parse(t.arguments_json, nullptr, false);
        if (args.is_object())
          for (auto& [k, v] : args.items())
            if (v.is_string()) v = Expand(v.get<std::string>(), norm, &m, earlier);
        t.arguments_json = args.is_object() ? args.dump() : "{}";
        t.resume_template = Expand(t.resume_template, norm, &m, earlier);
        reply.tool = t;
      } else {
        reply.text = Expand(r.reply, user_text, &m, earlier);
        reply.failure = r.failure;
      }
      return reply;
    }
  }
  return {"echo", Expand(fallback_, user_text, nullptr, earlier), std::nullopt};
}

std::string Agent::ResumeAfterTool(const ToolCall& call, const std::string& output) const {
  std::string out;
  const std::string& t = call.resume_template;
  size_t pos = t.find("{output}");
  if (pos == std::string::npos) return t;
  return t.substr(0, pos) + output + t.substr(pos + 8);
}

std::string Agent::Grammar() const {
  std::string g = "#JSGF V1.0;\ngrammar sim;\npublic <utt> = ";
  std::string body;
  int n = 0;
  for (const auto& r : rules_) {
    for (const auto& p : r.grammar) {
      if (!body.empty()) body += " | ";
      body += "(" + p + ")";
      ++n;
    }
  }
  if (n == 0) return {};
  g += body + ";\n<city> = ";
  if (cities_.empty()) {
    g += "paris";
  } else {
    for (size_t i = 0; i < cities_.size(); ++i) g += (i ? " | " : "") + cities_[i];
  }
  g += ";\n";
  return g;
}

}  // namespace vb::cozesim
