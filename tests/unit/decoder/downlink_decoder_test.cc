// DownlinkDecoder: Opus at every rate and frame size Coze may send, loss
// concealment, PCM/G.711 chunks, turn boundaries and cancelled turns.
#include "actors/decoder/downlink_decoder.h"

#include <gtest/gtest.h>
#include <opus/opus.h>

#include <cmath>

namespace vb::decoder {
namespace {

struct Out {
  std::string turn;
  DecodedFrame frame;
};

// Encodes a sine as a sequence of raw Opus packets.
std::vector<std::string> EncodeSine(int rate, double frame_ms, int packets, double hz = 440) {
  int err = 0;
  OpusEncoder* enc = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
  EXPECT_EQ(err, OPUS_OK);
  opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
  opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(20));
  int n = int(rate * frame_ms / 1000);
  std::vector<std::string> out;
  std::vector<int16_t> pcm(static_cast<size_t>(n));
  int64_t t = 0;
  for (int p = 0; p < packets; ++p) {
    for (int i = 0; i < n; ++i, ++t) pcm[size_t(i)] = int16_t(8000 * std::sin(2 * M_PI * hz * double(t) / rate));
    unsigned char buf[4000];
    int len = opus_encode(enc, pcm.data(), n, buf, sizeof buf);
    EXPECT_GT(len, 0);
    out.emplace_back(reinterpret_cast<char*>(buf), size_t(len));
  }
  opus_encoder_destroy(enc);
  return out;
}

v1::EncodedAudio Opus(const std::string& data, uint64_t index, int rate, double ms) {
  v1::EncodedAudio p;
  p.set_codec(v1::CODEC_OPUS);
  p.set_sample_rate(uint32_t(rate));
  p.set_channels(1);
  p.set_duration_us(uint32_t(ms * 1000));
  p.set_data(data);
  p.set_packet_index(index);
  return p;
}

double Rms(const std::vector<int16_t>& v, size_t from = 0) {
  double s = 0;
  for (size_t i = from; i < v.size(); ++i) s += double(v[i]) * v[i];
  return v.size() > from ? std::sqrt(s / double(v.size() - from)) : 0;
}

class DecoderTest : public ::testing::Test {
 protected:
  void Init(uint32_t rate = 16000) {
    DecoderConfig c;
    c.output_rate = rate;
    ASSERT_TRUE(dec_.Init(c, [this](const std::string& t, const DecodedFrame& f) { out_.push_back({t, f}); }).ok());
  }
  std::vector<int16_t> All(const std::string& turn) {
    std::vector<int16_t> v;
    for (auto& o : out_)
      if (o.turn == turn) v.insert(v.end(), o.frame.pcm.begin(), o.frame.pcm.end());
    return v;
  }
  DownlinkDecoder dec_;
  std::vector<Out> out_;
};

struct OpusCase {
  int rate;
  double ms;
};
class OpusRates : public DecoderTest, public ::testing::WithParamInterface<OpusCase> {};

TEST_P(OpusRates, DecodesToFixedFramesAtThePlaybackRate) {
  Init(16000);
  auto [rate, ms] = GetParam();
  int packets = int(std::ceil(600 / ms));  // ~0.6 s
  auto enc = EncodeSine(rate, ms, packets);
  for (int i = 0; i < packets; ++i)
    ASSERT_TRUE(dec_.OnPacket(Opus(enc[size_t(i)], uint64_t(i), rate, ms), "t1", 1000 + i).ok());
  dec_.EndTurn("t1");
  // Every sample comes out (rounded up to whole 20 ms frames), nothing invented.
  size_t expect = size_t(std::lround(packets * ms * 16));
  auto all = All("t1");
  EXPECT_GE(all.size(), expect);
  EXPECT_LT(all.size(), expect + 320 + 320);
  for (auto& o : out_) EXPECT_EQ(o.frame.pcm.size(), 320u);
  EXPECT_TRUE(out_.back().frame.end_of_turn);
  for (size_t i = 0; i + 1 < out_.size(); ++i) EXPECT_FALSE(out_[i].frame.end_of_turn);
  // It is the sine, not noise or silence: RMS of 8000 amplitude ≈ 5657.
  EXPECT_GT(Rms(all, 1600), 3000);
  EXPECT_EQ(dec_.counters().malformed, 0u);
  EXPECT_EQ(out_.front().frame.origin_ns, 1000);
}

INSTANTIATE_TEST_SUITE_P(Coze, OpusRates,
                         ::testing::Values(OpusCase{16000, 20}, OpusCase{16000, 60}, OpusCase{48000, 20},
                                           OpusCase{48000, 60}, OpusCase{8000, 2.5}, OpusCase{24000, 40},
                                           OpusCase{12000, 10}));

TEST_F(DecoderTest, ConcealsALostPacketWithoutLosingTime) {
  Init();
  auto enc = EncodeSine(16000, 20, 30);
  for (int i = 0; i < 30; ++i)
    if (i != 10 && i != 20 && i != 21) dec_.OnPacket(Opus(enc[size_t(i)], uint64_t(i), 16000, 20), "t", 0);
  dec_.EndTurn("t");
  EXPECT_EQ(dec_.counters().concealed_packets, 3u);
  EXPECT_EQ(dec_.counters().fec_decodes, 2u);
  // The stream keeps its length (30 × 20 ms) and no frame around the gaps is silent.
  auto all = All("t");
  EXPECT_EQ(all.size(), 30u * 320 + 320);  // + the end-of-turn frame
  for (size_t f = 5; f < 30; ++f) {
    std::vector<int16_t> frame(all.begin() + ptrdiff_t(f * 320), all.begin() + ptrdiff_t((f + 1) * 320));
    EXPECT_GT(Rms(frame), 1000) << "frame " << f;
  }
}

TEST_F(DecoderTest, SkipsGapsLongerThanTheConcealmentLimit) {
  Init();
  auto enc = EncodeSine(16000, 20, 40);
  dec_.OnPacket(Opus(enc[0], 0, 16000, 20), "t", 0);
  dec_.OnPacket(Opus(enc[30], 30, 16000, 20), "t", 0);  // 29 lost = 580 ms > 120 ms
  EXPECT_EQ(dec_.counters().skipped_gaps, 1u);
  EXPECT_EQ(dec_.counters().concealed_packets, 0u);
}

TEST_F(DecoderTest, DropsDuplicatesAndMalformedPackets) {
  Init();
  auto enc = EncodeSine(16000, 20, 3);
  dec_.OnPacket(Opus(enc[0], 0, 16000, 20), "t", 0);
  dec_.OnPacket(Opus(enc[0], 0, 16000, 20), "t", 0);
  EXPECT_EQ(dec_.counters().dropped_late, 1u);
  EXPECT_FALSE(dec_.OnPacket(Opus("", 1, 16000, 20), "t", 0).ok());
  EXPECT_FALSE(dec_.OnPacket(Opus(std::string("\xff\xff\xff", 3), 2, 16000, 20), "t", 0).ok());
  v1::EncodedAudio bad;
  bad.set_codec(v1::Codec(77));
  bad.set_packet_index(3);
  EXPECT_FALSE(dec_.OnPacket(bad, "t", 0).ok());
  EXPECT_EQ(dec_.counters().malformed, 3u);
}

TEST_F(DecoderTest, CancelledTurnIsDroppedWithItsPendingAudio) {
  Init();
  auto enc = EncodeSine(16000, 10, 20);
  dec_.OnPacket(Opus(enc[0], 0, 16000, 10), "a", 0);  // 10 ms pending, no frame yet
  dec_.CancelTurn("");                                // "" = the current turn
  for (int i = 1; i < 20; ++i) dec_.OnPacket(Opus(enc[size_t(i)], uint64_t(i), 16000, 10), "a", 0);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(dec_.counters().dropped_cancelled, 19u);
  // A cancel naming a turn not yet heard drops it when it comes.
  dec_.CancelTurn("b");
  dec_.OnPacket(Opus(enc[0], 0, 16000, 10), "b", 0);
  EXPECT_TRUE(out_.empty());
  // The next turn plays.
  for (int i = 0; i < 4; ++i) dec_.OnPacket(Opus(enc[size_t(i)], uint64_t(i), 16000, 10), "c", 0);
  EXPECT_EQ(All("c").size(), 640u);
}

TEST_F(DecoderTest, ANewTurnEndsThePreviousOne) {
  Init();
  auto enc = EncodeSine(16000, 10, 3);
  for (int i = 0; i < 3; ++i)
    dec_.OnPacket(Opus(enc[size_t(i)], uint64_t(i), 16000, 10), "a", 0);  // one frame + 160 pending
  for (int i = 0; i < 2; ++i) dec_.OnPacket(Opus(enc[size_t(i)], uint64_t(i), 16000, 10), "b", 0);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[1].turn, "a");
  EXPECT_TRUE(out_[1].frame.end_of_turn);
  EXPECT_EQ(out_[2].turn, "b");
  EXPECT_EQ(out_[2].frame.sample_index, 0u);
}

// Issue 12: the bus reused one header for incoming and outgoing messages,
// and the decoder passed the incoming turn id by reference; publishing the
// previous turn's last frame overwrote it, so every later frame carried the
// dead turn's id. The emitter here reuses the caller's string the same way.
TEST(DecoderAliasing, ANewTurnKeepsItsIdWhenEmittingOverwritesTheCallersString) {
  std::string shared;  // plays the bus's one header
  std::vector<Out> out;
  DownlinkDecoder dec;
  DecoderConfig c;
  ASSERT_TRUE(dec.Init(c,
                       [&](const std::string& t, const DecodedFrame& f) {
                         out.push_back({t, f});
                         shared = t;  // an outgoing publish writes its turn id into the shared header
                       })
                  .ok());
  auto enc = EncodeSine(16000, 10, 6);
  for (int i = 0; i < 3; ++i) {
    shared = "dead";
    dec.OnPacket(Opus(enc[size_t(i)], uint64_t(i), 16000, 10), shared, 0);
  }
  for (int i = 0; i < 3; ++i) {
    shared = "next";
    dec.OnPacket(Opus(enc[size_t(3 + i)], uint64_t(i), 16000, 10), shared, 0);
  }
  EXPECT_EQ(dec.current_turn(), "next");
  EXPECT_EQ(dec.counters().turns, 2u);  // not a new turn per packet
  int ends = 0;
  for (const auto& o : out) ends += o.frame.end_of_turn;
  EXPECT_EQ(ends, 1);  // only "dead" ended
  EXPECT_EQ(out.back().turn, "next");
}

TEST_F(DecoderTest, EndOfTurnAudioFlagEndsTheTurn) {
  Init();
  auto enc = EncodeSine(16000, 20, 2);
  dec_.OnPacket(Opus(enc[0], 0, 16000, 20), "a", 0);
  auto last = Opus(enc[1], 1, 16000, 20);
  last.set_end_of_turn_audio(true);
  dec_.OnPacket(last, "a", 0);
  ASSERT_FALSE(out_.empty());
  EXPECT_TRUE(out_.back().frame.end_of_turn);
}

TEST_F(DecoderTest, PcmChunksAreMixedDownAndResampled) {
  Init(16000);
  v1::EncodedAudio p;
  p.set_codec(v1::CODEC_PCM_S16LE);
  p.set_sample_rate(24000);
  p.set_channels(2);
  std::vector<int16_t> pcm(24000 * 2);  // 1 s stereo
  for (size_t i = 0; i < 24000; ++i) {
    pcm[2 * i] = int16_t(8000 * std::sin(2 * M_PI * 300 * double(i) / 24000));
    pcm[2 * i + 1] = pcm[2 * i];
  }
  p.set_data(std::string(reinterpret_cast<char*>(pcm.data()), pcm.size() * 2));
  ASSERT_TRUE(dec_.OnPacket(p, "t", 7).ok());
  dec_.EndTurn("t");
  auto all = All("t");
  EXPECT_NEAR(double(all.size()), 16000, 400);
  EXPECT_GT(Rms(all, 800), 5000);
  // Half a sample frame is malformed.
  p.set_data("abc");
  p.set_packet_index(1);
  EXPECT_FALSE(dec_.OnPacket(p, "t", 7).ok());
}

TEST_F(DecoderTest, G711IsDecoded) {
  Init(16000);
  v1::EncodedAudio p;
  p.set_codec(v1::CODEC_G711U);
  p.set_sample_rate(8000);
  std::string data(1600, '\0');                                                         // 200 ms of μ-law
  for (size_t i = 0; i < data.size(); ++i) data[i] = char((i % 16) < 8 ? 0x10 : 0x90);  // loud square wave
  p.set_data(data);
  ASSERT_TRUE(dec_.OnPacket(p, "t", 0).ok());
  dec_.EndTurn("t");
  EXPECT_NEAR(double(All("t").size()), 3200, 400);
  EXPECT_GT(Rms(All("t"), 200), 1000);
}

}  // namespace
}  // namespace vb::decoder
