// StateStore (see state_store.h).
#include "actors/session/state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vb::session {
namespace {

// mkdir -p, mode 0700: the file names a private conversation.
bool MakeDirs(const std::string& dir) {
  if (dir.empty()) return true;
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  return true;
}

}  // namespace

std::string StateStore::DefaultDir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/voicebus";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/voicebus";
}

Status StateStore::Load(SessionState* out) const {
  *out = {};
  std::ifstream in(path_);
  if (!in) return errno == ENOENT ? Status::Ok() : Status::Io(path_ + ": " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  auto j = nlohmann::json::parse(buf.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Invalid(path_ + ": not a JSON object");
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out->conversation_id = str("conversation_id");
  out->bot_id = str("bot_id");
  out->service = str("service");
  out->turn_id = str("turn_id");
  out->mode = str("mode");
  out->device = str("device");
  auto flag = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  };
  out->listening = flag("listening");
  out->streaming = flag("streaming");
  out->has_samples = flag("has_samples");
  if (auto it = j.find("resend_from"); it != j.end() && it->is_number_unsigned())
    out->resend_from = it->get<uint64_t>();
  if (auto it = j.find("saved_at_ms"); it != j.end() && it->is_number_integer()) out->saved_at_ms = it->get<int64_t>();
  if (auto it = j.find("texts"); it != j.end() && it->is_array()) {
    for (const auto& t : *it) {
      if (!t.is_object()) continue;
      auto tstr = [&](const char* k) {
        auto f = t.find(k);
        return f != t.end() && f->is_string() ? f->get<std::string>() : std::string();
      };
      SavedText s;
      s.text = tstr("text");
      s.request_id = tstr("request_id");
      s.command_id = tstr("command_id");
      if (auto f = t.find("queued_at_ms"); f != t.end() && f->is_number_integer()) s.queued_at_ms = f->get<int64_t>();
      if (!s.text.empty() && out->texts.size() < 64) out->texts.push_back(std::move(s));
    }
  }
  return Status::Ok();
}

Status StateStore::Save(const SessionState& s, bool durable) const {
  // The directory is made by the first save, and again only if it vanished
  // (the temporary file cannot be opened): not three mkdir calls per save.
  auto make_dir = [&] {
    size_t slash = path_.rfind('/');
    dir_made_ = slash == std::string::npos || MakeDirs(path_.substr(0, slash));
    return dir_made_;
  };
  if (!dir_made_ && !make_dir()) return Status::Io(path_ + ": cannot create its directory: " + std::strerror(errno));
  nlohmann::json texts = nlohmann::json::array();
  for (const auto& t : s.texts)
    texts.push_back({{"text", t.text},
                     {"request_id", t.request_id},
                     {"command_id", t.command_id},
                     {"queued_at_ms", t.queued_at_ms}});
  std::string text = nlohmann::json{{"conversation_id", s.conversation_id},
                                    {"bot_id", s.bot_id},
                                    {"service", s.service},
                                    {"turn_id", s.turn_id},
                                    {"mode", s.mode},
                                    {"device", s.device},
                                    {"listening", s.listening},
                                    {"streaming", s.streaming},
                                    {"has_samples", s.has_samples},
                                    {"resend_from", s.resend_from},
                                    {"saved_at_ms", s.saved_at_ms},
                                    {"texts", texts}}
                         .dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
                     "\n";
  std::string tmp = path_ + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT && make_dir()) fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Io(tmp + ": " + std::strerror(errno));
  bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size()) && (!durable || fsync(fd) == 0);
  int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path_.c_str()) != 0) {
    unlink(tmp.c_str());
    return Status::Io(path_ + ": " + std::strerror(ok ? errno : err));
  }
  return Status::Ok();
}

}  // namespace vb::session
