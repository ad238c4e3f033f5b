// Fuzzes the Coze downlink mapping (actors/session/coze_protocol.h): every
// text frame a Coze server — or anything that answers on its address — may
// send. One input is a connection: one frame per line through one
// CozeDownlink, with the client's own moves between frames (lines starting
// with '!': cancel, abandon, expect a text turn, mark a chat cancelled), so
// the per-chat state (running chat, cancelled chats, tool calls) is reached.
// Whatever comes in, Feed must not crash and must not output from a frame it
// counted as malformed. The client's turn ids come from bus messages
// (proto3 strings, so UTF-8): the harness gives it UTF-8 too.
#include <cstdlib>
#include <string>
#include <vector>

#include "actors/session/coze_protocol.h"
#include "bus/text.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vb::session::CozeDownlink down;
  down.SetOutputFormat("opus", 16000, 60);
  std::vector<vb::session::DownlinkOutput> out;
  std::string problem;
  for (std::string_view line : vb::fuzz::Lines(vb::fuzz::AsView(data, size))) {
    out.clear();
    if (line.starts_with("!cancel ")) {
      down.CancelByClient(vb::Utf8Prefix(line.substr(8), 256), &out);
    } else if (line.starts_with("!mark ")) {
      down.MarkCancelled(vb::Utf8Prefix(line.substr(6), 256));
    } else if (line.starts_with("!text ")) {
      down.ExpectTextTurn(vb::Utf8Prefix(line.substr(6), 256));
    } else if (line == "!abandon") {
      down.AbandonRunning(&out);
    } else if (line.starts_with("!format ")) {
      down.SetOutputFormat(line.substr(8, 4) == "opus" ? "opus" : "pcm", 24000, 20);
    } else {
      uint64_t malformed = down.counters().malformed;
      down.Feed(line, &out, &problem);
      // A frame counted as malformed publishes nothing.
      if (down.counters().malformed != malformed && !out.empty()) std::abort();
    }
    for (const auto& o : out) {
      // What the adapter would publish must serialize.
      std::string wire;
      if (o.kind == vb::session::DownlinkOutput::Kind::kAudio) o.audio.SerializeToString(&wire);
      else o.event.SerializeToString(&wire);
    }
  }
  (void)down.IsCancelled(down.running_chat());
  return 0;
}
