// The simulator's built-in agent: deterministic rules read from a YAML script
// (a default script is compiled in; `--script FILE` replaces it). Each rule
// has regexes matched against the normalized user text, optional grammar
// phrases (JSGF) that teach the recognizer how users say it, and either a
// reply template or a tool call whose output resumes the reply. Thread-safe
// after construction (read-only).
#pragma once

#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "tools/coze-sim/faults.h"

namespace vb::cozesim {

struct ToolCall {
  std::string name;             // e.g. get_weather
  std::string arguments_json;   // JSON object as a string, as Coze sends it
  std::string resume_template;  // reply once the output is known ({output})
};

struct AgentReply {
  std::string rule;  // which rule answered
  std::string text;  // empty when `tool` is set
  std::optional<ToolCall> tool;
  // A rule with `fail`: the chat ends conversation.chat.failed (kChatFailed)
  // after `after_sentences` sentences of `text`.
  std::optional<TurnFault> failure;
};

class Agent {
 public:
  // Parses a script; nullptr with *error ("line N: …") when invalid.
  static std::unique_ptr<Agent> FromYaml(const std::string& yaml_text, std::string* error);
  static std::unique_ptr<Agent> BuiltIn();
  static const char* BuiltInScript();

  // `earlier` holds the conversation's earlier user texts, oldest first.
  AgentReply Respond(const std::string& user_text, const std::vector<std::string>& earlier) const;
  std::string ResumeAfterTool(const ToolCall& call, const std::string& output) const;
  // The JSGF grammar for the recognizer, built from every rule's phrases.
  std::string Grammar() const;
  const std::string& prologue() const { return prologue_; }

  // Lowercase, punctuation removed, single spaces.
  static std::string Normalize(const std::string& text);

 private:
  struct Rule {
    std::string name;
    std::vector<std::regex> match;
    std::vector<std::string> grammar;
    std::string reply;
    std::optional<ToolCall> tool;
    std::optional<TurnFault> failure;
  };
  std::string Expand(const std::string& tmpl, const std::string& text, const std::smatch* m,
                     const std::vector<std::string>& earlier) const;

  std::vector<Rule> rules_;
  std::vector<std::string> cities_;
  std::string prologue_;
  std::string fallback_ = "You said: {text}.";
};

}  // namespace vb::cozesim
