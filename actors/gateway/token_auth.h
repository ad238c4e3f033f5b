// TokenSet: the tokens that authorize a client, and a comparison whose time
// does not depend on where (or whether) a guess differs from a token.
//
// Tokens come from the environment (VB_GATEWAY_TOKENS, comma-separated) and/or
// a token file (one per line, '#' comments). They are never logged.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bus/status.h"

namespace vb::gateway {

class TokenSet {
 public:
  // Adds comma-separated tokens (blank entries ignored).
  void AddList(std::string_view comma_separated);
  // Adds the tokens of a file; Io error if it cannot be read.
  Status AddFile(const std::string& path);
  // Writes a new random token to `path` (mode 0600) and adds it.
  Status Generate(const std::string& path);

  // True if `candidate` equals one of the tokens. Every token is compared
  // over its whole length, whatever the candidate, so timing reveals nothing
  // beyond the number of tokens.
  bool Check(std::string_view candidate) const;

  bool empty() const { return tokens_.empty(); }
  size_t size() const { return tokens_.size(); }

 private:
  std::vector<std::string> tokens_;
};

}  // namespace vb::gateway
