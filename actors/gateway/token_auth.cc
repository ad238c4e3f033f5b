// TokenSet: loading and constant-time checking of client tokens.
#include "actors/gateway/token_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

namespace vb::gateway {
namespace {

std::string_view Strip(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

void TokenSet::AddList(std::string_view list) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view t = Strip(list.substr(0, comma));
    if (!t.empty()) tokens_.emplace_back(t);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

Status TokenSet::AddFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Io("cannot read token file " + path + ": " + std::strerror(errno));
  std::string line;
  while (std::getline(in, line)) {
    std::string_view t = Strip(line);
    if (t.empty() || t.front() == '#') continue;
    tokens_.emplace_back(t);
  }
  return Status::Ok();
}

Status TokenSet::Generate(const std::string& path) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::string token;
  for (int i = 0; i < 32; ++i) token += kAlphabet[rd() % (sizeof kAlphabet - 1)];
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Io("cannot create token file " + path + ": " + std::strerror(errno));
  std::string text = token + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  ::close(fd);
  if (!ok) return Status::Io("cannot write token file " + path);
  tokens_.push_back(std::move(token));
  return Status::Ok();
}

bool TokenSet::Check(std::string_view candidate) const {
  unsigned match = 0;
  for (const auto& token : tokens_) {
    // Differences accumulate over the token's whole length; a candidate of
    // another length is read cyclically so no branch depends on its bytes.
    unsigned diff = static_cast<unsigned>(token.size() ^ candidate.size());
    size_t n = candidate.size();
    for (size_t i = 0; i < token.size(); ++i) {
      unsigned char c = n ? static_cast<unsigned char>(candidate[i % n]) : 0;
      diff |= static_cast<unsigned>(static_cast<unsigned char>(token[i]) ^ c);
    }
    match |= static_cast<unsigned>(diff == 0);
  }
  return match != 0 && !candidate.empty();
}

}  // namespace vb::gateway
