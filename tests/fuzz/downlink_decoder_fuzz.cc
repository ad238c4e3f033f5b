// Fuzzes vb-decoder's DownlinkDecoder (actors/decoder/downlink_decoder.h):
// the agent's audio as Coze sends it — Opus packets, PCM chunks, G.711, with
// whatever rate, channel count, duration and packet index they claim — and
// the turn moves around them (a new turn, a cancel, the end of a turn).
// Input: byte 0 picks the output rate and frame length; then packets, each
//   [codec][rate][channels][index step][flags][duration][length] data…
// (flags: bit 0 end_of_turn_audio, bit 1 next turn, bit 2 cancel the turn
// first, bit 3 EndTurn after). Whatever comes in: no crash, and every frame
// out has exactly frame_samples() samples.
#include <cstdlib>
#include <string>

#include "actors/decoder/downlink_decoder.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint32_t kRates[] = {8000, 12000, 16000, 24000, 48000, 44100, 0, 7, 96000, 1u << 31};
  static const uint32_t kDurations[] = {0, 2500, 5000, 10000, 20000, 40000, 60000, 120000, 1, 1u << 31};
  std::string_view in = vb::fuzz::AsView(data, size);
  const uint8_t setup = vb::fuzz::TakeByte(&in);
  vb::decoder::DecoderConfig config;
  config.output_rate = (setup & 1) ? 24000 : 16000;
  config.frame_ms = (setup & 2) ? 10 : 20;
  config.max_conceal_ms = (setup & 4) ? 0 : 120;
  config.remember_cancelled = 2;
  vb::decoder::DownlinkDecoder dec;
  size_t expected = 0;
  auto emit = [&](const std::string&, const vb::decoder::DecodedFrame& f) {
    if (f.pcm.size() != expected) std::abort();
  };
  if (!dec.Init(config, emit).ok()) std::abort();
  expected = dec.frame_samples();

  int turn = 0;
  uint64_t index = 0;
  while (!in.empty()) {
    vb::v1::EncodedAudio p;
    p.set_codec(vb::v1::Codec(vb::fuzz::TakeByte(&in) % 6));
    p.set_sample_rate(kRates[vb::fuzz::TakeByte(&in) % std::size(kRates)]);
    p.set_channels(vb::fuzz::TakeByte(&in) % 4);
    const uint8_t step = vb::fuzz::TakeByte(&in);
    index = step == 255 ? (index > 3 ? index - 3 : 0) : index + step;
    p.set_packet_index(index);
    const uint8_t flags = vb::fuzz::TakeByte(&in);
    p.set_end_of_turn_audio(flags & 1);
    p.set_duration_us(kDurations[vb::fuzz::TakeByte(&in) % std::size(kDurations)]);
    const size_t n = std::min<size_t>(vb::fuzz::TakeByte(&in), in.size());
    p.set_data(std::string(in.substr(0, n)));
    in.remove_prefix(n);
    if (flags & 2) {
      ++turn;
      index = 0;
    }
    const std::string id = "t" + std::to_string(turn);
    if (flags & 4) dec.CancelTurn(id);
    (void)dec.OnPacket(p, id, int64_t(index) * 20'000'000);
    if (flags & 8) dec.EndTurn(id);
  }
  dec.EndTurn("");
  return 0;
}
