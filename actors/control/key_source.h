// KeySource: a push-to-talk key. EvdevKeySource reads a Linux input device
// (/dev/input/eventN, struct input_event records) and reports presses and
// releases of one key code; auto-repeat is ignored. When the device vanishes
// (unplugged) it says so once and reopens it later.
#pragma once

#include <optional>
#include <string>

#include "bus/status.h"

namespace vb::control {

class EvdevKeySource {
 public:
  EvdevKeySource(std::string path, int key_code) : path_(std::move(path)), key_(key_code) {}
  ~EvdevKeySource();
  Status Open();
  void Close();
  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  // Reads what is available. Returns press (true) / release (false) of the
  // last key transition seen, if any. Sets *lost if the device went away.
  std::optional<bool> Read(bool* lost);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int key_;
  int fd_ = -1;
};

// "KEY_SPACE", "space", or a number → Linux key code; -1 if unknown.
int KeyCodeFromName(const std::string& name);

}  // namespace vb::control
