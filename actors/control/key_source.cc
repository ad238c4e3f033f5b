// evdev push-to-talk key (see key_source.h).
#include "actors/control/key_source.h"

#include <fcntl.h>
#include <linux/input.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

namespace vb::control {

EvdevKeySource::~EvdevKeySource() { Close(); }

Status EvdevKeySource::Open() {
  Close();
  fd_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) return Status::Io(path_ + ": " + strerror(errno));
  return Status::Ok();
}

void EvdevKeySource::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::optional<bool> EvdevKeySource::Read(bool* lost) {
  *lost = false;
  std::optional<bool> last;
  input_event ev[32];
  while (fd_ >= 0) {
    ssize_t n = read(fd_, ev, sizeof ev);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      *lost = true;  // ENODEV: unplugged
      Close();
      break;
    }
    if (n == 0) break;  // end of a file (tests feed recorded events)
    for (size_t i = 0; i < size_t(n) / sizeof(input_event); ++i) {
      if (ev[i].type == EV_KEY && ev[i].code == key_ && ev[i].value != 2) last = ev[i].value == 1;
    }
  }
  return last;
}

int KeyCodeFromName(const std::string& name) {
  static const std::map<std::string, int> kKeys = {{"space", KEY_SPACE},
                                                   {"enter", KEY_ENTER},
                                                   {"f12", KEY_F12},
                                                   {"f11", KEY_F11},
                                                   {"f10", KEY_F10},
                                                   {"rightctrl", KEY_RIGHTCTRL},
                                                   {"leftctrl", KEY_LEFTCTRL},
                                                   {"record", KEY_RECORD},
                                                   {"playpause", KEY_PLAYPAUSE},
                                                   {"mute", KEY_MUTE},
                                                   {"micmute", KEY_MICMUTE},
                                                   {"btn_0", BTN_0},
                                                   {"btn_left", BTN_LEFT},
                                                   {"a", KEY_A},
                                                   {"t", KEY_T}};
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) return std::atoi(name.c_str());
  std::string n = name;
  for (auto& c : n) c = char(std::tolower(c));
  if (n.rfind("key_", 0) == 0) n = n.substr(4);
  auto it = kKeys.find(n);
  return it == kKeys.end() ? -1 : it->second;
}

}  // namespace vb::control
