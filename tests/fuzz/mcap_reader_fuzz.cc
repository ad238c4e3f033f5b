// Fuzzes the MCAP reader (tools/sniffer/mcap_reader.h) with any file a user
// may hand to `vb sniff info|replay|recover` or `vb tune`: cut, damaged or
// not MCAP at all. McapReader::Open takes a path, so the input is written to
// one in-memory file (memfd) read through /proc/self/fd. Whatever it reads
// must be consistent: every message on a channel it knows, its data inside
// the file, the count it reports the count it delivered.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tools/sniffer/mcap_reader.h"
#include "tools/sniffer/recording.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz.mcap", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0) std::abort();
  if (size && pwrite(fd, data, size, 0) != ssize_t(size)) std::abort();
  vb::sniff::McapReader reader;
  if (!reader.Open(path).ok()) return 0;
  vb::sniff::McapReadReport report;
  uint64_t delivered = 0;
  vb::Status st = reader.Read(
      [&](const vb::sniff::McapMessage& m) {
        if (!reader.channels().count(m.channel_id)) std::abort();
        // Chunks decompress to at most kMaxChunkBytes; a message lies inside one.
        if (m.data.size() > vb::sniff::McapReader::kMaxChunkBytes) std::abort();
        std::string_view header, payload;
        if (vb::sniff::DecodeRecorded(m.data, &header, &payload) && header.size() + payload.size() > m.data.size())
          std::abort();
        ++delivered;
        return true;
      },
      &report);
  if (!st.ok()) std::abort();  // Open succeeded: problems go into the report
  if (report.messages != delivered) std::abort();
  if (report.bad_chunks > report.chunks || report.truncated_bytes > report.bytes) std::abort();
  return 0;
}
