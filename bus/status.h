// Status: the result of an operation that can fail, in the leveldb style.
// The core returns Status instead of throwing; exceptions from third-party
// libraries (yaml-cpp, protobuf, cppzmq) are caught at the boundary.
#pragma once

#include <string>
#include <utility>

namespace vb {

class Status {
 public:
  enum class Code { kOk, kInvalid, kConfig, kIo, kUnavailable, kInternal };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status Invalid(std::string msg) { return Status(Code::kInvalid, std::move(msg)); }
  static Status Config(std::string msg) { return Status(Code::kConfig, std::move(msg)); }
  static Status Io(std::string msg) { return Status(Code::kIo, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : message_; }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Exit code for configuration errors (EX_CONFIG): the launcher does not
// restart an actor that exits with it.
inline constexpr int kExitConfig = 78;

}  // namespace vb
