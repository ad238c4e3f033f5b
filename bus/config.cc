// Implementation of validated configuration sections (see config.h).
#include "bus/config.h"

#include "bus/devices.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>

namespace vb::config {
namespace {

// Levenshtein distance, for "did you mean" hints on unknown keys.
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Quote(const std::string& s) {
  if (s.empty()) return "\"\"";
  for (char c : s)
    if (c == ':' || c == '#' || c == ' ' || c == '{' || c == '[' || c == '"') return "\"" + s + "\"";
  return s;
}

}  // namespace

Section::Section(std::shared_ptr<Report> report, std::string path, YAML::Node node, int indent)
    : report_(std::move(report)), path_(std::move(path)), node_(node), indent_(indent) {
  if (report_->describe && indent_ == 0) report_->described += path_ + ":\n";
  if (!report_->describe && node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    report_->errors.push_back(Where(node_, "") + ": must be a mapping of keys to values");
    node_ = YAML::Node();
  }
}

Section& Section::operator=(const Section& o) {
  if (this == &o) return *this;
  report_ = o.report_;
  path_ = o.path_;
  node_.reset(o.node_);
  indent_ = o.indent_;
  declared_ = o.declared_;
  return *this;
}

std::string Section::Where(const YAML::Node& n, std::string_view key) const {
  std::ostringstream out;
  out << report_->file;
  if (n.IsDefined() && n.Mark().line >= 0) out << ":" << n.Mark().line + 1 << ":" << n.Mark().column + 1;
  out << ": " << path_;
  if (!key.empty()) out << "." << key;
  return out.str();
}

YAML::Node Section::Lookup(std::string_view key) {
  declared_.emplace_back(key);
  if (!node_.IsDefined() || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.Scalar() == key) return it->second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

void Section::Describe(std::string_view key, const std::string& value, std::string_view doc) {
  std::string pad(2 * (indent_ + 1), ' ');
  report_->described += pad + "# " + std::string(doc) + "\n";
  report_->described += pad + std::string(key) + ":" + (value.empty() ? "" : " " + value) + "\n";
}

std::string Section::FormatNumber(double v) {
  std::ostringstream out;
  if (std::floor(v) == v && std::fabs(v) < 1e15) out << static_cast<long long>(v);
  else out << v;
  return out.str();
}

bool Section::ReadNumber(std::string_view key, double* v, bool integral, Range range, std::string_view doc,
                         const std::string& def_text) {
  if (report_->describe) {
    std::string d(doc);
    if (std::isfinite(range.min) || std::isfinite(range.max))
      d += " [" + (std::isfinite(range.min) ? FormatNumber(range.min) : std::string("…")) + ", " +
           (std::isfinite(range.max) ? FormatNumber(range.max) : std::string("…")) + "]";
    Describe(key, def_text, d);
    return false;
  }
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return false;
  if (!n.IsScalar()) {
    report_->errors.push_back(Where(n, key) + ": expected a number");
    return false;
  }
  // A number may come from the environment too (`port: ${VB_GATEWAY_PORT:-5500}`).
  std::string s = n.Scalar();
  if (s.find("${") != std::string::npos && !Expand(n, key, &s)) return false;
  size_t used = 0;
  double parsed = 0;
  try {
    parsed = std::stod(s, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != s.size()) {
    report_->errors.push_back(Where(n, key) + ": expected a number, got '" + s + "'");
    return false;
  }
  if (integral && std::floor(parsed) != parsed) {
    report_->errors.push_back(Where(n, key) + ": expected an integer, got '" + s + "'");
    return false;
  }
  if (parsed < range.min || parsed > range.max) {
    report_->errors.push_back(Where(n, key) + ": " + s + " is out of range [" + FormatNumber(range.min) + ", " +
                              FormatNumber(range.max) + "]");
    return false;
  }
  *v = parsed;
  return true;
}

void Section::Key(std::string_view key, bool* out, bool def, std::string_view doc) {
  *out = def;
  if (report_->describe) return Describe(key, def ? "true" : "false", doc);
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return;
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true" || s == "yes" || s == "on") *out = true;
  else if (s == "false" || s == "no" || s == "off") *out = false;
  else report_->errors.push_back(Where(n, key) + ": expected true or false, got '" + s + "'");
}

bool Section::Expand(const YAML::Node& n, std::string_view key, std::string* value) {
  std::string out;
  size_t i = 0;
  while (i < value->size()) {
    size_t start = value->find("${", i);
    if (start == std::string::npos) break;
    size_t end = value->find('}', start);
    if (end == std::string::npos) break;
    out.append(*value, i, start - i);
    std::string name = value->substr(start + 2, end - start - 2);
    // ${NAME:-DEFAULT}: DEFAULT when NAME is unset or empty (as in sh).
    std::optional<std::string> fallback;
    if (size_t dash = name.find(":-"); dash != std::string::npos) {
      fallback = name.substr(dash + 2);
      name.resize(dash);
    }
    const char* env = std::getenv(name.c_str());
    if (fallback && (!env || !*env)) env = fallback->c_str();
    if (!env) {
      report_->errors.push_back(Where(n, key) + ": environment variable " + name + " is not set");
      return false;
    }
    out += env;
    i = end + 1;
  }
  out.append(*value, i, std::string::npos);
  *value = std::move(out);
  return true;
}

void Section::Key(std::string_view key, std::string* out, std::string def, std::string_view doc) {
  *out = def;
  if (report_->describe) return Describe(key, Quote(def), doc);
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsScalar()) {
    report_->errors.push_back(Where(n, key) + ": expected a string");
    return;
  }
  std::string v = n.Scalar();
  if (Expand(n, key, &v)) *out = std::move(v);
}

void Section::Choice(std::string_view key, std::string* out, std::string def, std::vector<std::string> allowed,
                     std::string_view doc) {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : "|") + a;
  if (report_->describe) {
    *out = def;
    return Describe(key, Quote(def), std::string(doc) + " (" + list + ")");
  }
  YAML::Node n = Lookup(key);
  Key(key, out, def, doc);
  declared_.pop_back();  // Key() declared it again
  if (!n.IsDefined() || n.IsNull()) return;
  for (const auto& a : allowed)
    if (*out == a) return;
  report_->errors.push_back(Where(n, key) + ": '" + *out + "' is not one of " + list);
  *out = def;
}

void Section::Key(std::string_view key, std::vector<std::string>* out, std::vector<std::string> def,
                  std::string_view doc) {
  *out = def;
  if (report_->describe) {
    std::string v = "[";
    for (size_t i = 0; i < def.size(); ++i) v += (i ? ", " : "") + Quote(def[i]);
    return Describe(key, v + "]", doc);
  }
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsSequence()) {
    report_->errors.push_back(Where(n, key) + ": expected a list of strings");
    return;
  }
  out->clear();
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      report_->errors.push_back(Where(item, key) + ": list items must be strings");
      continue;
    }
    std::string v = item.Scalar();
    if (Expand(item, key, &v)) out->push_back(std::move(v));
  }
}

void Section::Key(std::string_view key, std::vector<std::pair<std::string, std::string>>* out, std::string_view doc) {
  out->clear();
  if (report_->describe) return Describe(key, "{}", doc);
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) {
    report_->errors.push_back(Where(n, key) + ": expected a mapping of strings");
    return;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->second.IsScalar()) {
      report_->errors.push_back(Where(it->second, key) + ": values must be strings");
      continue;
    }
    out->emplace_back(it->first.Scalar(), it->second.Scalar());
  }
}

Section Section::Sub(std::string_view key, std::string_view doc) {
  if (report_->describe) {
    Describe(key, "", doc);
    return Section(report_, path_ + "." + std::string(key), YAML::Node(), indent_ + 1);
  }
  return Section(report_, path_ + "." + std::string(key), Lookup(key), indent_ + 1);
}

void Section::Finish() {
  if (report_->describe || !node_.IsDefined() || !node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string k = it->first.Scalar();
    bool known = false;
    std::string best;
    size_t best_d = 3;
    for (const auto& d : declared_) {
      if (d == k) known = true;
      size_t dist = Distance(k, d);
      if (dist < best_d) best_d = dist, best = d;
    }
    if (known) continue;
    std::string msg = Where(it->first, k) + ": unknown key";
    if (!best.empty()) msg += " (did you mean '" + best + "'?)";
    report_->errors.push_back(msg);
  }
}

std::string Section::Located(std::string_view key, std::string_view message, int item) const {
  YAML::Node n = key.empty() ? node_ : YAML::Node(YAML::NodeType::Undefined);
  if (!key.empty() && node_.IsDefined() && node_.IsMap())
    for (auto it = node_.begin(); it != node_.end(); ++it)
      if (it->first.Scalar() == key) n = it->second;
  std::string k(key);
  if (item >= 0) {
    if (n.IsSequence() && size_t(item) < n.size()) n = n[size_t(item)];
    k += "[" + std::to_string(item) + "]";
  }
  return Where(n, k) + ": " + std::string(message);
}

void Section::Error(std::string_view key, std::string_view message, int item) {
  report_->errors.push_back(Located(key, message, item));
}

Status Section::ErrorAt(std::string_view key, std::string_view message, int item) const {
  return Status::Config(Located(key, message, item));
}

Status File::Load(const std::string& path) {
  path_ = path;
  try {
    root_ = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return Status::Config(path + ": cannot read config file");
  } catch (const YAML::ParserException& e) {
    return Status::Config(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": YAML syntax error: " + e.msg);
  }
  return Check(path);
}

Status File::LoadString(const std::string& text, const std::string& name) {
  path_ = name;
  try {
    root_ = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Status::Config(name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": YAML syntax error: " + e.msg);
  }
  return Check(name);
}

namespace {

// yaml-cpp keeps every pair of a mapping, duplicates included, and lookups
// then see only one of them: walk the whole tree and name each repeat with
// the line of its first occurrence. `path` is the dotted key path so far.
void FindDuplicates(const std::string& file, const YAML::Node& n, const std::string& path,
                    std::vector<std::string>* errors) {
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) FindDuplicates(file, n[i], path + "[" + std::to_string(i) + "]", errors);
    return;
  }
  if (!n.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string k = it->first.IsScalar() ? it->first.Scalar() : "";
    const std::string here = path.empty() ? k : path + "." + k;
    const YAML::Mark m = it->first.Mark();
    if (auto first = seen.find(k); first != seen.end())
      errors->push_back(file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " + here +
                        ": duplicate " + (path.empty() ? "section" : "key") + " (first at line " +
                        std::to_string(first->second.line + 1) + ")");
    else seen.emplace(k, m);
    FindDuplicates(file, it->second, here, errors);
  }
}

}  // namespace

namespace {

constexpr int kMaxMergeDepth = 64;

std::string At(const std::string& file, const YAML::Mark& m) {
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

// Resolves YAML merge keys (`<<`) in place, depth first so a merged mapping
// has its own merges resolved before it is merged. Explicit keys win; of
// several sources the first wins (YAML 1.1 merge key type). Merged values
// are shared, not copied: they keep their file:line.
void ResolveMerges(const std::string& file, YAML::Node n, int depth, std::vector<std::string>* errors) {
  if (depth > kMaxMergeDepth) {
    errors->push_back(At(file, n.Mark()) + ": nesting too deep (an alias inside itself?)");
    return;
  }
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) ResolveMerges(file, n[i], depth + 1, errors);
    return;
  }
  if (!n.IsMap()) return;
  std::vector<YAML::Node> sources;
  bool has_merge = false;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "<<" && it->first.Tag() != "!") {
      has_merge = true;
      YAML::Node v = it->second;
      if (v.IsMap()) sources.push_back(v);
      else if (v.IsSequence()) {
        for (size_t i = 0; i < v.size(); ++i) {
          if (v[i].IsMap()) sources.push_back(v[i]);
          else
            errors->push_back(At(file, v[i].Mark()) + ": `<<` merges mappings only (an alias like *name of a mapping)");
        }
      } else {
        errors->push_back(At(file, v.Mark()) + ": `<<` merges a mapping or a list of mappings (e.g. <<: *defaults)");
      }
    } else {
      ResolveMerges(file, it->second, depth + 1, errors);
    }
  }
  if (!has_merge) return;
  for (auto& src : sources) ResolveMerges(file, src, depth + 1, errors);
  n.remove("<<");
  for (auto& src : sources)
    for (auto it = src.begin(); it != src.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      const std::string k = it->first.Scalar();
      bool present = false;
      for (auto mine = n.begin(); mine != n.end() && !present; ++mine)
        present = mine->first.IsScalar() && mine->first.Scalar() == k;
      if (!present) n[k] = it->second;
    }
}

}  // namespace

Status File::Check(const std::string& name) {
  if (root_.IsNull()) root_ = YAML::Node(YAML::NodeType::Map);
  if (!root_.IsMap()) return Status::Config(name + ": the config must be a mapping of sections");
  Report report;
  FindDuplicates(name, root_, "", &report.errors);
  ResolveMerges(name, root_, 0, &report.errors);
  expanded_.clear();
  if (report.errors.empty()) bus::ExpandDeviceSections(root_, &expanded_);
  return ToStatus(report);
}

std::vector<std::string> Section::Keys() const {
  std::vector<std::string> keys;
  if (!node_.IsDefined() || !node_.IsMap()) return keys;
  for (auto it = node_.begin(); it != node_.end(); ++it)
    if (it->first.IsScalar()) keys.push_back(it->first.Scalar());
  return keys;
}

std::shared_ptr<Report> File::NewReport() const {
  auto r = std::make_shared<Report>();
  r->file = path_;
  return r;
}

Section File::Get(const std::string& key, std::shared_ptr<Report> report) const {
  if (auto e = expanded_.find(key); e != expanded_.end()) return Section(std::move(report), key, e->second);
  YAML::Node n(YAML::NodeType::Undefined);
  for (auto it = root_.begin(); it != root_.end(); ++it)
    if (it->first.Scalar() == key) n = it->second;
  return Section(std::move(report), key, n);
}

std::vector<std::string> File::TopLevelKeys() const {
  std::vector<std::string> keys;
  for (auto it = root_.begin(); it != root_.end(); ++it) keys.push_back(it->first.Scalar());
  return keys;
}

void File::CheckTopLevel(const std::vector<std::string>& known, Report* report) const {
  for (auto it = root_.begin(); it != root_.end(); ++it) {
    const std::string k = it->first.Scalar();
    bool ok = k.rfind("x-", 0) == 0;  // a place for YAML anchors (`x-room: &room {…}`), read by nobody
    for (const auto& s : known) ok = ok || s == k;
    if (!ok)
      report->errors.push_back(
          path_ + ":" + std::to_string(it->first.Mark().line + 1) + ":" + std::to_string(it->first.Mark().column + 1) +
          ": " + k +
          ": unknown section (not an actor listed in launcher.actors or devices.actors, nor bus, devices, "
          "launcher, nor x-… for anchors)");
  }
}

std::shared_ptr<Report> DescribeReport() {
  auto r = std::make_shared<Report>();
  r->describe = true;
  return r;
}

Status ToStatus(const Report& report) {
  if (report.errors.empty()) return Status::Ok();
  std::string msg;
  for (const auto& e : report.errors) msg += (msg.empty() ? "" : "\n") + e;
  return Status::Config(msg);
}

}  // namespace vb::config
