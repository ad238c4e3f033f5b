// Identifiers, clocks and base64 shared by every part of the simulator.
// Coze uses uuid v4 for event ids, 19-digit decimal strings for chat,
// conversation, message and section ids, and epoch milliseconds as strings in
// `respond_at`; the simulator reproduces those shapes so a client cannot tell.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vb::cozesim {

// Random uuid v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"). Thread-safe.
std::string NewUuid();
// A fresh 19-digit numeric id, unique within the process. Thread-safe.
std::string NewNumericId();
// A Coze-looking log id (timestamp + hex), e.g. "20261124223400ABCDEF0123456789AB".
std::string NewLogId();

int64_t NowEpochMs();
int64_t NowEpochSeconds();
// Monotonic milliseconds, for pacing and timeouts.
int64_t NowMonoMs();

std::string Base64Encode(std::string_view bytes);
// Returns nullopt on characters outside the alphabet; accepts missing padding.
std::optional<std::string> Base64Decode(std::string_view text);

// Percent-decoding of a query value ('+' becomes a space).
std::string UrlDecode(std::string_view s);
// Splits "a=1&b=2" into the value of one key, if present.
std::optional<std::string> QueryValue(std::string_view query, std::string_view key);

}  // namespace vb::cozesim
