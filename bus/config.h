// Validated configuration. A config file is one YAML document with one
// section per actor plus `bus`, `devices` and `launcher`. Each part declares
// its keys on a config::Section (name, default, allowed values, one line of
// documentation); the same declarations fill the values, reject unknown keys,
// wrong types and out-of-range values naming file, line and key, and print
// the documented default (`--print-default-config`).
//
// String and number values may name environment variables as ${NAME}; an
// unset one is an error (${NAME:-DEFAULT} takes DEFAULT instead). The launcher uses this to hand actors run-time facts
// (the simulator's port, the run directory). Secrets are read by the parts that need them straight from the
// environment, never through the YAML.
//
// Not thread-safe; used once at start-up.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bus/status.h"

namespace vb::config {

struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
};

// Errors and the describe output are shared by a section and its children.
struct Report {
  std::string file;
  std::vector<std::string> errors;
  bool describe = false;  // collecting documentation instead of reading
  std::string described;  // YAML text with comments
};

class Section {
 public:
  // `node` may be undefined (section absent: every key takes its default).
  Section(std::shared_ptr<Report> report, std::string path, YAML::Node node, int indent = 0);
  Section(const Section&) = default;
  // Rebinds to o's node: YAML::Node's own operator= would overwrite the
  // document's value instead (keeping a Section for ErrorAt must not edit it).
  Section& operator=(const Section& o);

  // Arithmetic keys (int, unsigned, int64, double …), range-checked.
  template <class T>
  requires std::is_arithmetic_v<T> &&
      (!std::is_same_v<T, bool>)void Key(std::string_view key, T* out, T def, Range range, std::string_view doc) {
    double v = static_cast<double>(def);
    if constexpr (std::is_integral_v<T>) {
      // A value T cannot hold is a range error, not undefined behaviour in
      // the cast below (found by tests/fuzz/config_yaml_fuzz: `big: -5e21`).
      range.min = std::max(range.min, static_cast<double>(std::numeric_limits<T>::lowest()));
      range.max = std::min(range.max, std::nextafter(static_cast<double>(std::numeric_limits<T>::max()), 0.0));
    }
    if (ReadNumber(key, &v, std::is_integral_v<T>, range, doc, FormatNumber(static_cast<double>(def))))
      *out = static_cast<T>(v);
    else *out = def;
  }
  void Key(std::string_view key, bool* out, bool def, std::string_view doc);
  void Key(std::string_view key, std::string* out, std::string def, std::string_view doc);
  // A string that must be one of `allowed`.
  void Choice(std::string_view key, std::string* out, std::string def, std::vector<std::string> allowed,
              std::string_view doc);
  void Key(std::string_view key, std::vector<std::string>* out, std::vector<std::string> def, std::string_view doc);
  // A free-form map of string → string (e.g. meta_data), not validated further.
  void Key(std::string_view key, std::vector<std::pair<std::string, std::string>>* out, std::string_view doc);

  // A nested mapping. Finish() the child before the parent.
  Section Sub(std::string_view key, std::string_view doc);

  // Reports keys present in the file that nobody declared. Call once, after
  // every Key() of this section.
  void Finish();

  // Adds an error located at `key` (or at the section if key is empty; at
  // item `item` of a list key if item ≥ 0), for checks across keys done by
  // the part itself.
  void Error(std::string_view key, std::string_view message, int item = -1);

  // The same located error (file:line:col: section.key: message), returned
  // as a config Status instead of added to the report: for what a part can
  // only find once it runs, e.g. a file named by `key` that does not open.
  // Keep a copy of the Section from DeclareConfig and return this from
  // Configure(); the actor exits 78 with the message. Sections are cheap to
  // copy (the document is shared).
  Status ErrorAt(std::string_view key, std::string_view message, int item = -1) const;

  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  // The keys of this mapping present in the file, in file order (for
  // sections whose keys are names, e.g. devices.list).
  std::vector<std::string> Keys() const;
  const std::string& path() const { return path_; }
  std::shared_ptr<Report> report() const { return report_; }

 private:
  // Expands ${NAME} from the environment; false (and an error) if unset.
  bool Expand(const YAML::Node& n, std::string_view key, std::string* value);
  bool ReadNumber(std::string_view key, double* v, bool integral, Range range, std::string_view doc,
                  const std::string& def_text);
  static std::string FormatNumber(double v);
  void Describe(std::string_view key, const std::string& value, std::string_view doc);
  YAML::Node Lookup(std::string_view key);
  std::string Where(const YAML::Node& n, std::string_view key) const;
  // Where(key's value, or its item) + ": " + message.
  std::string Located(std::string_view key, std::string_view message, int item) const;

  std::shared_ptr<Report> report_;
  std::string path_;
  YAML::Node node_;
  int indent_;
  std::vector<std::string> declared_;
};

// A loaded config file. Load() reports YAML syntax errors with line numbers,
// and duplicate keys (a section or a key written twice in one mapping) with
// the line of each: yaml-cpp would silently keep one of them.
//
// YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`) are resolved at load:
// the mapping gets the merged mapping's keys it does not write itself (the
// first listed source wins). Values keep their own file:line.
//
// Devices (bus/devices.h): for every device of `devices.list` and every
// kind of `devices.actors`, Get("KIND@DEVICE") is the section KIND with the
// device's own `KIND:` settings laid over it (mappings merged key by key)
// and `device: DEVICE`: per-device actor sections without copies.
class File {
 public:
  Status Load(const std::string& path);
  // An in-memory document (tests); `name` stands for the file name in errors.
  Status LoadString(const std::string& text, const std::string& name);
  // The section for `key` (may be absent), reporting into `report`.
  Section Get(const std::string& key, std::shared_ptr<Report> report) const;
  std::shared_ptr<Report> NewReport() const;
  // Top-level keys, in file order.
  std::vector<std::string> TopLevelKeys() const;
  // Errors for top-level sections not in `known`.
  void CheckTopLevel(const std::vector<std::string>& known, Report* report) const;
  const std::string& path() const { return path_; }

 private:
  // Loaded root → ok, or a config Status naming every duplicate key.
  Status Check(const std::string& name);

  std::string path_;
  YAML::Node root_;
  std::map<std::string, YAML::Node> expanded_;  // KIND@DEVICE → its section
};

// A report in describe mode: declare keys on Section(report, name, {}) and read
// report->described.
std::shared_ptr<Report> DescribeReport();

// Joins errors one per line; ok if none.
Status ToStatus(const Report& report);

}  // namespace vb::config
