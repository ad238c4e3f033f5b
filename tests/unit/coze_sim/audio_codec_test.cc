// Audio formats: G.711 round trips, every listed PCM input rate and layout
// decoded to 16 kHz mono, WAV headers skipped, Opus and Ogg/Opus input.
#include "tools/coze-sim/audio_codec.h"

#include <gtest/gtest.h>
#include <opus/opus.h>

#include <cmath>

#include "tests/unit/coze_sim/test_util.h"

namespace vb::cozesim {
namespace {

double Rms(const std::vector<int16_t>& v) {
  double s = 0;
  for (auto x : v) s += double(x) * x;
  return v.empty() ? 0 : std::sqrt(s / double(v.size()));
}

TEST(G711, RoundTripsWithinQuantisation) {
  for (int v = -32768; v <= 32767; v += 97) {
    int16_t a = AlawToLinear(LinearToAlaw(int16_t(v)));
    int16_t u = UlawToLinear(LinearToUlaw(int16_t(v)));
    double tol = std::max(64.0, std::abs(v) / 12.0);
    EXPECT_NEAR(a, v, tol) << v;
    EXPECT_NEAR(u, v, tol) << v;
  }
}

TEST(InputDecoder, EveryListedPcmRateMonoAndStereoTo16k) {
  for (int rate : {8000, 16000, 22050, 24000, 32000, 44100, 48000}) {
    for (int ch : {1, 2}) {
      InputAudioConfig cfg;
      cfg.format = "pcm";
      cfg.sample_rate = rate;
      cfg.channel = ch;
      InputDecoder dec(cfg);
      auto tone = testing::Tone(rate, 1000, 8000, 300);
      std::vector<int16_t> inter;
      for (auto s : tone)
        for (int c = 0; c < ch; ++c) inter.push_back(s);
      std::string bytes = testing::Bytes(inter);
      std::vector<int16_t> out;
      std::string err;
      // Odd-sized chunks: samples split across appends must survive.
      for (size_t i = 0; i < bytes.size(); i += 1001) ASSERT_TRUE(dec.Feed(bytes.substr(i, 1001), &out, &err)) << err;
      EXPECT_NEAR(double(out.size()), 16000, 200) << rate << "/" << ch;
      EXPECT_NEAR(Rms(out), 8000 / std::sqrt(2.0), 400) << rate << "/" << ch;
    }
  }
}

TEST(InputDecoder, SkipsWavHeader) {
  InputAudioConfig cfg;  // default format wav, 24 kHz
  InputDecoder dec(cfg);
  auto tone = testing::Tone(24000, 100);
  std::string wav =
      "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + std::string(16, '\x01') + "data" + std::string(4, '\0');
  wav += testing::Bytes(tone);
  std::vector<int16_t> out;
  std::string err;
  ASSERT_TRUE(dec.Feed(wav, &out, &err)) << err;
  EXPECT_NEAR(double(out.size()), 1600, 40);
}

// Found by fuzz_audio_input: a chunk length near 4 GiB wrapped the chunk
// walk to the same place and the simulator spun for ever on 92 bytes.
TEST(InputDecoder, WavChunkLengthNear4GiBIsAnErrorNotAHang) {
  InputAudioConfig cfg;
  InputDecoder dec(cfg);
  std::string wav =
      std::string("RIFF\x24\x00\x00\x00WAVEfmt ", 16) + std::string("\xf8\xff\xff\xff", 4) + std::string(16, '\x01');
  std::vector<int16_t> out;
  std::string err;
  EXPECT_FALSE(dec.Feed(wav, &out, &err));
  EXPECT_NE(err.find("data chunk"), std::string::npos) << err;
}

TEST(InputDecoder, G711AtEightKilohertz) {
  for (const char* codec : {"g711a", "g711u"}) {
    InputAudioConfig cfg;
    cfg.codec = codec;
    InputDecoder dec(cfg);
    auto tone = testing::Tone(8000, 500);
    std::string bytes;
    for (auto s : tone) bytes += char(std::string(codec) == "g711a" ? LinearToAlaw(s) : LinearToUlaw(s));
    std::vector<int16_t> out;
    std::string err;
    ASSERT_TRUE(dec.Feed(bytes, &out, &err));
    EXPECT_NEAR(double(out.size()), 8000, 100) << codec;
    EXPECT_NEAR(Rms(out), 8000 / std::sqrt(2.0), 500) << codec;
  }
}

std::vector<std::string> OpusPackets(int rate, int frame_ms, int n) {
  int err = 0;
  OpusEncoder* enc = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
  std::vector<std::string> out;
  auto tone = testing::Tone(rate, frame_ms * n);
  int fs = rate * frame_ms / 1000;
  for (int i = 0; i < n; ++i) {
    unsigned char pkt[1500];
    int len = opus_encode(enc, tone.data() + i * fs, fs, pkt, sizeof pkt);
    out.emplace_back(reinterpret_cast<char*>(pkt), size_t(len));
  }
  opus_encoder_destroy(enc);
  return out;
}

TEST(InputDecoder, RawOpusPacketsAndBadPackets) {
  InputAudioConfig cfg;
  cfg.codec = "opus";
  cfg.sample_rate = 48000;
  InputDecoder dec(cfg);
  std::vector<int16_t> out;
  std::string err;
  for (auto& p : OpusPackets(48000, 20, 50)) ASSERT_TRUE(dec.Feed(p, &out, &err)) << err;
  EXPECT_EQ(out.size(), 16000u);
  EXPECT_FALSE(dec.Feed(std::string("\xff\xff\xff", 3), &out, &err));
  EXPECT_FALSE(err.empty());
}

TEST(InputDecoder, OggOpusPages) {
  // A minimal Ogg stream: OpusHead, OpusTags, then one page of 10 packets.
  auto page = [](const std::vector<std::string>& packets) {
    std::string segs, body;
    for (auto& p : packets) {
      size_t n = p.size();
      while (n >= 255) {
        segs += char(255);
        n -= 255;
      }
      segs += char(n);
      body += p;
    }
    std::string h = "OggS";
    h += std::string(22, '\0');
    h += char(segs.size());
    return h + segs + body;
  };
  auto pk = OpusPackets(16000, 20, 10);
  std::string stream = page({"OpusHead-dummy"}) + page({"OpusTags-dummy"}) + page(pk);
  InputAudioConfig cfg;
  cfg.format = "ogg";
  cfg.codec = "opus";
  InputDecoder dec(cfg);
  std::vector<int16_t> out;
  std::string err;
  for (size_t i = 0; i < stream.size(); i += 100) ASSERT_TRUE(dec.Feed(stream.substr(i, 100), &out, &err)) << err;
  EXPECT_EQ(out.size(), 3200u);
}

TEST(OutputEncoder, FramesOfTheRequestedSize) {
  OutputAudioConfig cfg;
  cfg.codec = "pcm";
  cfg.sample_rate = 24000;
  cfg.frame_size_ms = 40;
  OutputEncoder enc(cfg);
  enc.Append(testing::Tone(22050, 1000), 22050);
  size_t total = 0;
  int n = 0;
  while (enc.HasFrame()) {
    std::string f = enc.NextFrame();
    if (enc.HasFrame()) EXPECT_EQ(f.size(), 24000u * 2 * 40 / 1000);
    total += f.size();
    ++n;
  }
  EXPECT_NEAR(double(total) / 2, 24000, 100);
  EXPECT_EQ(n, 25);
}

}  // namespace
}  // namespace vb::cozesim
