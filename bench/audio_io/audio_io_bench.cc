// vb-audio-io-bench: what decoding the agent's downlink costs. For Opus
// packets of 20 and 60 ms encoded at 16 and 48 kHz (VOIP, 24 kbit/s, speech-
// like signal), the time to decode one packet with bare libopus at the
// playback rate, and through DownlinkDecoder (decode + framing into 20 ms
// audio.out frames, plus resampling where Opus cannot decode natively).
// Medians over repetitions; the machine is shared, so compare the rows of
// one run. Prints one JSON document on stdout.
//
//   vb-audio-io-bench [--packets N] [--reps R] [--out-rate HZ]
#include <opus/opus.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "actors/decoder/downlink_decoder.h"

namespace {

using Clock = std::chrono::steady_clock;

// A voiced, speech-like signal: a gliding harmonic series with a syllable
// envelope and a little noise, so the encoder does real work.
std::vector<int16_t> SpeechLike(int rate, size_t n) {
  std::vector<int16_t> v(n);
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 300);
  double phase = 0;
  for (size_t i = 0; i < n; ++i) {
    double t = double(i) / rate;
    double f0 = 140 + 40 * std::sin(2 * M_PI * 0.7 * t);
    phase += 2 * M_PI * f0 / rate;
    double s = 0;
    for (int h = 1; h <= 12; ++h) s += std::sin(h * phase) / h;
    double env = 0.5 + 0.5 * std::sin(2 * M_PI * 3.5 * t);
    v[i] = int16_t(std::clamp(6000 * env * s + noise(rng), -32768.0, 32767.0));
  }
  return v;
}

std::vector<std::string> Encode(int rate, int frame_ms, int packets) {
  int err = 0;
  OpusEncoder* enc = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(24000));
  const int n = rate * frame_ms / 1000;
  auto pcm = SpeechLike(rate, size_t(n) * size_t(packets));
  std::vector<std::string> out;
  for (int p = 0; p < packets; ++p) {
    unsigned char buf[4000];
    int len = opus_encode(enc, pcm.data() + size_t(p) * size_t(n), n, buf, sizeof buf);
    out.emplace_back(reinterpret_cast<char*>(buf), size_t(std::max(len, 0)));
  }
  opus_encoder_destroy(enc);
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int packets = 500, reps = 7, out_rate = 16000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--packets") packets = std::stoi(argv[i + 1]);
    else if (a == "--reps") reps = std::stoi(argv[i + 1]);
    else if (a == "--out-rate") out_rate = std::stoi(argv[i + 1]);
  }
  nlohmann::json doc;
  doc["bench"] = "audio_io.opus_decode";
  doc["opus_version"] = opus_get_version_string();
  doc["packets_per_rep"] = packets;
  doc["reps"] = reps;
  doc["output_rate"] = out_rate;
  doc["unit"] = "microseconds per packet (median of reps)";
  for (int rate : {16000, 48000}) {
    for (int ms : {20, 60}) {
      auto enc = Encode(rate, ms, packets);
      size_t bytes = 0;
      for (auto& p : enc) bytes += p.size();
      std::vector<double> bare, full;
      std::vector<int16_t> pcm(size_t(out_rate) * 120 / 1000);
      for (int r = 0; r < reps; ++r) {
        int err = 0;
        OpusDecoder* dec = opus_decoder_create(out_rate, 1, &err);
        auto t0 = Clock::now();
        int bad = 0;
        for (auto& p : enc)
          bad += opus_decode(dec, reinterpret_cast<const unsigned char*>(p.data()), int(p.size()), pcm.data(),
                             int(pcm.size()), 0) < 0;
        bare.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / packets);
        opus_decoder_destroy(dec);
        if (bad) {
          std::cerr << bad << " packets failed to decode\n";
          return 1;
        }

        vb::decoder::DownlinkDecoder d;
        size_t frames = 0;
        vb::decoder::DecoderConfig c;
        c.output_rate = uint32_t(out_rate);
        d.Init(c, [&](const std::string&, const vb::decoder::DecodedFrame&) { ++frames; });
        vb::v1::EncodedAudio msg;
        msg.set_codec(vb::v1::CODEC_OPUS);
        msg.set_sample_rate(uint32_t(rate));
        msg.set_duration_us(uint32_t(ms) * 1000);
        t0 = Clock::now();
        for (int i = 0; i < packets; ++i) {
          msg.set_packet_index(uint64_t(i));
          msg.set_data(enc[size_t(i)]);
          d.OnPacket(msg, "bench", 0);
        }
        full.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / packets);
        if (frames == 0) {
          std::cerr << "decoder produced nothing\n";
          return 1;
        }
      }
      double us = Median(bare), us_full = Median(full);
      doc["results"].push_back({{"encoded_rate", rate},
                                {"frame_ms", ms},
                                {"mean_packet_bytes", double(bytes) / packets},
                                {"libopus_us_per_packet", us},
                                {"downlink_decoder_us_per_packet", us_full},
                                {"realtime_factor", ms * 1000.0 / us_full},
                                {"cpu_percent_of_one_core", 100.0 * us_full / (ms * 1000.0)}});
    }
  }
  std::cout << doc.dump(2) << "\n";
  return 0;
}
