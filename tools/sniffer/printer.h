// Printing any bus payload by reflection: one line of text, or one JSON
// object. The type comes from Header.type, so the sniffer needs no knowledge
// of a topic to decode it. Bytes fields print as their size (audio is not
// text), which also keeps echo cheap at high rates.
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace vb::sniff {

// Appends a compact one-line rendering: `field: value, nested {…}`.
void AppendText(const google::protobuf::Message& msg, std::string* out);
// Appends a JSON object (bytes fields as {"bytes": N}).
void AppendJson(const google::protobuf::Message& msg, std::string* out);
// JSON string escaping.
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace vb::sniff
