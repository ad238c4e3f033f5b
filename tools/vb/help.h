// The help of `vb`: one text per topic (each subcommand, and config, modes,
// files, systemd, exit-codes). `vb CMD --help`, `vb help CMD` and the man
// page (`vb help --man`, run by the build: cmake/man_pages.cmake) all print
// the same text, so they cannot drift apart.
//
// Arguments: ParseArgs() is the one parser of every subcommand. An argument
// that looks like an option is an option or an error, never a file name or a
// value (`vb keygen --help` once wrote a secret key to a file named --help).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vb::cli {

using Args = std::vector<std::string>;

struct HelpTopic {
  const char* name;
  const char* summary;  // one line, for the topic list
  const char* text;     // starts with the usage lines, then a blank line
};

const std::vector<HelpTopic>& HelpTopics();
const HelpTopic* FindHelp(std::string_view name);

// vb help [TOPIC | --all | --man]: 0, or 64 for an unknown topic.
int Help(const Args& args);
// Prints the topic's text to stdout; returns 0.
int PrintHelp(std::string_view topic);
// "vb: TOPIC: message" and the topic's usage lines to stderr; returns 64.
int UsageError(std::string_view topic, const std::string& message);

// True if args ask for help (-h or --help before a "--").
bool WantsHelp(const Args& args);

struct OptionSpec {
  std::string name;  // "--config"
  bool takes_value;
};
// Splits `in` into options (name → value, "" for flags) and positionals.
// "--" ends the options. An unknown option, an option without its value, or
// a value that itself looks like an option ("--config --help") is an error:
// false with *error set.
bool ParseArgs(const Args& in, const std::vector<OptionSpec>& spec, std::map<std::string, std::string>* options,
               Args* positionals, std::string* error);

}  // namespace vb::cli
