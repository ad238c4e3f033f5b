// Reflection printers (see printer.h).
#include "tools/sniffer/printer.h"

#include <google/protobuf/descriptor.h>

#include <cstdio>

namespace vb::sniff {
namespace pb = google::protobuf;

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(char(c));
        }
    }
  }
  out->push_back('"');
}

namespace {

void AppendNumber(double v, std::string* out) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", v);
  *out += buf;
}

void AppendScalar(const pb::Message& m, const pb::FieldDescriptor* f, int index, bool json, std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      *out += std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      *out += std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      *out += std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      *out += std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      AppendNumber(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f), out);
      break;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      AppendNumber(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f), out);
      break;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      *out += (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
      break;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* e = rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
      if (json) AppendJsonString(e->name(), out);
      else *out += e->name();
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s =
          rep ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
      if (f->type() == pb::FieldDescriptor::TYPE_BYTES) {
        if (json) *out += "{\"bytes\":" + std::to_string(s.size()) + "}";
        else *out += "<" + std::to_string(s.size()) + " bytes>";
      } else {
        AppendJsonString(s, out);
      }
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      const pb::Message& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
      if (json) AppendJson(sub, out);
      else {
        *out += "{";
        AppendText(sub, out);
        *out += "}";
      }
      break;
    }
  }
}

}  // namespace

void AppendText(const pb::Message& msg, std::string* out) {
  std::vector<const pb::FieldDescriptor*> fields;
  msg.GetReflection()->ListFields(msg, &fields);
  bool first = true;
  for (const auto* f : fields) {
    if (!first) *out += ", ";
    first = false;
    *out += f->name();
    if (f->is_repeated()) {
      *out += ": [";
      int n = msg.GetReflection()->FieldSize(msg, f);
      for (int i = 0; i < n; ++i) {
        if (i) *out += ", ";
        AppendScalar(msg, f, i, false, out);
      }
      *out += "]";
    } else {
      *out += f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE ? " " : ": ";
      AppendScalar(msg, f, 0, false, out);
    }
  }
}

void AppendJson(const pb::Message& msg, std::string* out) {
  std::vector<const pb::FieldDescriptor*> fields;
  msg.GetReflection()->ListFields(msg, &fields);
  *out += "{";
  bool first = true;
  for (const auto* f : fields) {
    if (!first) *out += ",";
    first = false;
    AppendJsonString(f->name(), out);
    *out += ":";
    if (f->is_repeated()) {
      *out += "[";
      int n = msg.GetReflection()->FieldSize(msg, f);
      for (int i = 0; i < n; ++i) {
        if (i) *out += ",";
        AppendScalar(msg, f, i, true, out);
      }
      *out += "]";
    } else {
      AppendScalar(msg, f, 0, true, out);
    }
  }
  *out += "}";
}

}  // namespace vb::sniff
