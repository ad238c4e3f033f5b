// Audio formats at the edges of the simulator. Input: whatever a client may
// declare in `input_audio` (PCM 8/16/24-bit at any listed rate, mono or
// stereo, optional WAV header; raw Opus packets or Ogg/Opus; G.711 A/µ-law)
// decoded to 16 kHz mono s16, the one format VAD and recognition use. Output:
// synthesized speech re-encoded as `output_audio` asks (PCM chunks, one raw
// Opus packet per frame, or G.711), frame by frame so a paced sender encodes
// only what it is about to send. Not thread-safe; one instance per session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct OpusDecoder;
struct OpusEncoder;
struct SpeexResamplerState_;

namespace vb::cozesim {

constexpr int kInternalRate = 16000;  // VAD and recognition work at this rate

uint8_t LinearToAlaw(int16_t pcm);
int16_t AlawToLinear(uint8_t a);
uint8_t LinearToUlaw(int16_t pcm);
int16_t UlawToLinear(uint8_t u);

// Mono s16 sample-rate conversion with speexdsp; streaming.
class Resampler {
 public:
  Resampler(int in_rate, int out_rate);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;
  void Process(const int16_t* in, size_t n, std::vector<int16_t>* out);
  // Pushes the filter's tail out (call once at the end of a stream).
  void Flush(std::vector<int16_t>* out);
  // One-shot conversion of a whole buffer.
  static std::vector<int16_t> Convert(const std::vector<int16_t>& in, int in_rate, int out_rate);

 private:
  int in_rate_, out_rate_;
  SpeexResamplerState_* st_ = nullptr;
};

struct InputAudioConfig {
  std::string format = "wav";  // pcm, wav, ogg
  std::string codec = "pcm";   // pcm, opus, g711a, g711u
  int sample_rate = 24000;
  int channel = 1;
  int bit_depth = 16;
};

class InputDecoder {
 public:
  explicit InputDecoder(const InputAudioConfig& cfg);
  ~InputDecoder();
  InputDecoder(const InputDecoder&) = delete;
  InputDecoder& operator=(const InputDecoder&) = delete;
  // Decodes one `append` delta; appends 16 kHz mono samples. Returns false
  // (with *error set) when the data cannot be decoded; state stays usable.
  bool Feed(const std::string& bytes, std::vector<int16_t>* out, std::string* error);

 private:
  bool FeedPcm(const std::string& bytes, std::vector<int16_t>* out, std::string* error);
  bool FeedOpusPacket(const uint8_t* p, size_t n, std::vector<int16_t>* out, std::string* error);
  bool FeedOgg(const std::string& bytes, std::vector<int16_t>* out, std::string* error);
  void EmitAtRate(const std::vector<int16_t>& mono, int rate, std::vector<int16_t>* out);

  InputAudioConfig cfg_;
  bool first_chunk_ = true;
  bool ogg_ = false;
  std::string carry_;       // partial PCM sample or partial Ogg page
  std::string ogg_packet_;  // Ogg packet spanning pages
  int ogg_packets_seen_ = 0;
  OpusDecoder* opus_ = nullptr;
  std::unique_ptr<Resampler> resampler_;
};

struct OutputAudioConfig {
  std::string codec = "pcm";  // pcm, opus, g711a, g711u
  int sample_rate = 24000;
  double frame_size_ms = 0;  // 0 = codec default
  int bitrate = 48000;
  bool use_cbr = false;
  double EffectiveFrameMs() const;
};

// Turns a buffer of speech into a sequence of deltas. Feed whole sentences.
class OutputEncoder {
 public:
  explicit OutputEncoder(const OutputAudioConfig& cfg);
  ~OutputEncoder();
  OutputEncoder(const OutputEncoder&) = delete;
  OutputEncoder& operator=(const OutputEncoder&) = delete;
  bool ok() const { return ok_; }
  // Queues speech at `rate`; it is resampled to the output rate at once.
  void Append(const std::vector<int16_t>& pcm, int rate);
  bool HasFrame() const { return pos_ < buf_.size(); }
  // A whole frame is buffered (sentences are appended one by one; only the
  // last one may end with a short frame).
  bool HasFullFrame() const { return buf_.size() - pos_ >= size_t(frame_samples_); }
  // The next delta payload (raw bytes, not base64). Last frame is padded for
  // Opus (fixed frame size) and short for PCM/G.711.
  std::string NextFrame();
  size_t PendingSamples() const { return buf_.size() - pos_; }
  void Clear();
  int frame_samples() const { return frame_samples_; }
  int rate() const { return rate_; }

 private:
  OutputAudioConfig cfg_;
  int rate_;
  int frame_samples_;
  bool ok_ = true;
  OpusEncoder* opus_ = nullptr;
  std::vector<int16_t> buf_;
  size_t pos_ = 0;
};

}  // namespace vb::cozesim
