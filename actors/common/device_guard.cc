// Device open/lost/reopen cycle (see device_guard.h).
#include "actors/common/device_guard.h"

#include <algorithm>

#include "bus/log.h"

namespace vb::audio {

void DeviceGuard::Start(bus::Context& ctx, Hooks hooks) {
  ctx_ = &ctx;
  hooks_ = std::move(hooks);
  TryOpen();
}

void DeviceGuard::MarkLost(const std::string& line, const std::string& why) {
  lost_ = true;
  lost_since_ns_ = bus::MonoNs();
  ctx_->Count("device_lost");
  ctx_->Degraded(what_ + " lost");
  VB_LOG(kWarn) << line << "; reopening with back-off up to " << max_ms_ << " ms";
  if (hooks_.on_lost) hooks_.on_lost(why);
}

void DeviceGuard::Lost(const Status& why) {
  if (lost_) return;
  MarkLost(what_ + " lost: " + why.message(), why.message());
  next_ms_ = min_ms_;
  if (!retry_pending_) {
    retry_pending_ = true;
    ctx_->loop().AddOneShot(std::chrono::milliseconds(next_ms_), [this] { TryOpen(); });
  }
}

void DeviceGuard::TryOpen() {
  retry_pending_ = false;
  Status st = hooks_.open();
  if (!st.ok()) {
    if (!lost_) MarkLost(what_ + " unavailable: " + st.message(), st.message());
    retry_pending_ = true;
    ctx_->loop().AddOneShot(std::chrono::milliseconds(next_ms_), [this] { TryOpen(); });
    next_ms_ = std::min(next_ms_ * 2, max_ms_);
    return;
  }
  if (lost_) {
    int64_t ms = (bus::MonoNs() - lost_since_ns_) / 1'000'000;
    VB_LOG(kInfo) << what_ << " back after " << ms << " ms";
    ctx_->Count("device_back");
    ctx_->Healthy();
    lost_ = false;
    if (hooks_.on_back) hooks_.on_back(ms);
  }
  next_ms_ = min_ms_;
  if (hooks_.on_open) hooks_.on_open();
}

}  // namespace vb::audio
