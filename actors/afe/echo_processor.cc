// The backend registry: validation shared by every backend, the bypass, and
// the factory the actor, tests and bench go through.
#include "actors/afe/echo_processor.h"

#include <algorithm>
#include <cstring>

#include "actors/afe/speex_processor.h"
#include "actors/afe/webrtc_processor.h"

namespace vb::afe {
namespace {

// Passes the microphone through untouched: for A/B listening, and for setups
// where the hardware already cancels its echo.
class BypassProcessor : public EchoProcessor {
 public:
  explicit BypassProcessor(const ProcessorConfig& c) : block_(size_t(c.sample_rate * c.block_ms / 1000)) {}
  const char* name() const override { return "bypass"; }
  size_t block_samples() const override { return block_; }
  void Process(const int16_t* mic, const int16_t*, int16_t* out) override {
    if (out != mic) std::memcpy(out, mic, block_ * sizeof(int16_t));
  }
  void Reset() override {}

 private:
  size_t block_;
};

bool OneOf(const std::string& v, std::initializer_list<const char*> allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; });
}

}  // namespace

const std::vector<std::string>& BackendNames() {
  static const std::vector<std::string> kNames = {"speex", "webrtc", "bypass"};
  return kNames;
}

Status ValidateProcessorConfig(const ProcessorConfig& c) {
  // Both libraries are built for these rates; the bus carries 16 kHz.
  if (c.sample_rate != 8000 && c.sample_rate != 16000 && c.sample_rate != 32000)
    return Status::Invalid("sample_rate must be 8000, 16000 or 32000");
  if (c.tail_ms < 20 || c.tail_ms > 1000) return Status::Invalid("tail_ms must be in [20, 1000]");
  if (c.block_ms != 10 && c.block_ms != 20) return Status::Invalid("block_ms must be 10 or 20");
  if (!OneOf(c.echo_suppression, {"low", "moderate", "high"}))
    return Status::Invalid("echo_suppression must be low, moderate or high");
  if (!OneOf(c.ns_level, {"low", "moderate", "high", "very_high"}))
    return Status::Invalid("ns_level must be low, moderate, high or very_high");
  if (c.agc_target_dbfs < -31 || c.agc_target_dbfs > 0) return Status::Invalid("agc_target_dbfs must be in [-31, 0]");
  if (c.agc_max_gain_db < 0 || c.agc_max_gain_db > 90) return Status::Invalid("agc_max_gain_db must be in [0, 90]");
  return Status::Ok();
}

Status MakeProcessor(const std::string& backend, const ProcessorConfig& config, std::unique_ptr<EchoProcessor>* out) {
  if (Status s = ValidateProcessorConfig(config); !s.ok()) return s;
  if (backend == "speex") {
    *out = std::make_unique<SpeexProcessor>(config);
    return Status::Ok();
  }
  if (backend == "webrtc") return WebrtcProcessor::Create(config, out);
  if (backend == "bypass") {
    *out = std::make_unique<BypassProcessor>(config);
    return Status::Ok();
  }
  return Status::Invalid("unknown backend '" + backend + "' (speex, webrtc or bypass)");
}

}  // namespace vb::afe
