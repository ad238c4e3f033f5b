// Fuzzes the simulator's input-audio decoder (tools/coze-sim/audio_codec.h):
// the bytes of `input_audio_buffer.append` deltas in every format a client
// may declare and the simulator accepts — raw PCM and WAV (8/16/24-bit, mono
// or stereo, any listed rate), raw Opus packets, Ogg/Opus pages (the Ogg
// reader), G.711 A/µ-law. The first byte picks the declared format, the
// second the chunk size the stream is cut into. Undecodable data must give
// an error and leave the decoder usable.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "tools/coze-sim/audio_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kFormats[] = {"pcm", "wav", "ogg"};
  static const char* kCodecs[] = {"pcm", "opus", "g711a", "g711u"};
  static const int kRates[] = {8000, 16000, 22050, 24000, 32000, 44100, 48000};
  std::string_view in = vb::fuzz::AsView(data, size);
  uint8_t pick = vb::fuzz::TakeByte(&in);
  vb::cozesim::InputAudioConfig cfg;
  cfg.format = kFormats[pick % 3];
  cfg.codec = kCodecs[(pick / 3) % 4];
  cfg.sample_rate = kRates[(pick / 12) % 7];
  cfg.channel = 1 + (pick / 84) % 2;
  cfg.bit_depth = 8 * (1 + vb::fuzz::TakeByte(&in) % 3);
  if (cfg.codec == "g711a" || cfg.codec == "g711u") {  // as the session sets it
    cfg.format = "pcm";
    cfg.sample_rate = 8000;
  }
  size_t chunk = 1 + vb::fuzz::TakeByte(&in) * 4;
  vb::cozesim::InputDecoder decoder(cfg);
  std::vector<int16_t> out;
  std::string error;
  while (!in.empty()) {
    size_t n = std::min(chunk, in.size());
    if (!decoder.Feed(std::string(in.substr(0, n)), &out, &error) && error.empty()) std::abort();
    in.remove_prefix(n);
  }
  return 0;
}
