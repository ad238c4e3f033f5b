// Fuzzes the WAV reader (actors/common/wav.h) with any file a user may name
// as capture input or a test fixture. ReadWav takes a path, so the input is
// written to one in-memory file (memfd) read through /proc/self/fd. A file
// it accepts must describe itself consistently.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "actors/common/wav.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz.wav", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0) std::abort();
  if (size && pwrite(fd, data, size, 0) != ssize_t(size)) std::abort();
  vb::audio::PcmBuffer pcm;
  vb::Status st = vb::audio::ReadWav(path, &pcm);
  if (st.ok()) {
    if (pcm.channels == 0 || pcm.sample_rate == 0) std::abort();
    if (pcm.samples.size() % pcm.channels) std::abort();
  } else if (st.message().empty()) {
    std::abort();
  }
  return 0;
}
