// Fuzzes the gateway's client-message parser (actors/gateway/protocol.h):
// every text frame a local WebSocket client may send. A frame that does not
// parse must come back as a 4xx error whose message serializes (it may
// quote the client's bytes, so invalid UTF-8 must not make Serialize throw);
// one that parses must have a recognised type.
#include <cstdlib>

#include "actors/gateway/protocol.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vb::gateway::ClientMessage msg;
  vb::gateway::ProtocolError e = vb::gateway::ParseClientMessage(vb::fuzz::AsView(data, size), &msg);
  if (e.ok()) {
    if (!msg.typed) std::abort();
    // The server echoes the id as reply_to.
    vb::gateway::Serialize(vb::gateway::ErrorMessage(200, "ok", msg.id));
    return 0;
  }
  if (e.code < 400 || e.code >= 600 || e.message.empty()) std::abort();
  vb::gateway::Frame f = vb::gateway::Serialize(vb::gateway::ErrorMessage(e.code, e.message, msg.id));
  if (!f || f->empty()) std::abort();
  return 0;
}
