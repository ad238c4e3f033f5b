// Actor lifecycle, context and heartbeat (see actor.h).
#include "bus/actor.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "bus/text.h"

namespace vb::bus {
namespace {

int64_t CpuNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t RssKb() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, resident = 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

}  // namespace

Context::Context(std::string kind, std::string name, Loop& loop, Node& node)
    : kind_(std::move(kind)), name_(std::move(name)), loop_(loop), node_(node), start_ns_(MonoNs()) {
  last_cpu_ns_ = CpuNs();
  last_wall_ns_ = start_ns_;
}

int64_t Context::Get(const std::string& counter) const {
  auto it = extra_.find(counter);
  return it == extra_.end() ? 0 : it->second;
}

void Context::Stop(int code) {
  exit_code_ = code;
  loop_.Stop();
}

void Context::FillHeartbeat(v1::Heartbeat* hb, v1::Heartbeat::State state) {
  hb->Clear();
  hb->set_actor(name_);
  hb->set_kind(kind_);
  hb->set_state(state == v1::Heartbeat::ACTIVE && !detail_.empty() ? v1::Heartbeat::DEGRADED : state);
  // The liveness signal must parse everywhere: a detail cut inside a
  // character would make every subscriber drop the beat (and the launcher
  // restart a healthy actor).
  hb->set_detail(Utf8Prefix(detail_, 1024));
  hb->set_pid(getpid());
  int64_t now = MonoNs();
  hb->set_uptime_ms((now - start_ns_) / 1'000'000);
  const auto& c = node_.counters();
  auto* counters = hb->mutable_counters();
  counters->set_msgs_in(c.msgs_in);
  counters->set_msgs_out(c.msgs_out);
  counters->set_drops(node_.seq_tracker().total_lost());
  counters->set_malformed(c.malformed.total());
  counters->set_errors(errors_ + c.handler_errors);
  counters->set_dropped_inactive(c.dropped_inactive);
  // At most kMaxDropRows publishers with losses, most recently seen first:
  // the heartbeat stays small however many (fake) publishers there are.
  constexpr int kMaxDropRows = 32;
  const auto& seq = node_.seq_tracker();
  for (const auto& row : seq.Rows()) {
    if (row.entry.lost == 0) continue;
    if (hb->drops_size() >= kMaxDropRows) break;
    auto* d = hb->add_drops();
    d->set_source(row.source);
    d->set_topic(row.topic);
    d->set_lost(row.entry.lost);
  }
  auto& h = node_.handler_us();
  auto* t = hb->mutable_handler_us();
  t->set_p50(h.Percentile(50));
  t->set_p99(h.Percentile(99));
  t->set_max(h.max());
  t->set_count(h.count());
  h.Reset();
  for (size_t i = 0; i < c.malformed.by_reason.size(); ++i)
    if (c.malformed.by_reason[i])
      (*hb->mutable_extra())[std::string("malformed_") + MalformedName(Malformed(i))] =
          int64_t(c.malformed.by_reason[i]);
  auto& extra = *hb->mutable_extra();
  extra["seq_publishers"] = int64_t(seq.size());
  extra["seq_evicted"] = int64_t(seq.evictions());
  extra["seq_restarts"] = int64_t(seq.total_restarts());
  if (uint64_t n = LogLinesSuppressed()) extra["log_suppressed"] = int64_t(n);
  if (const LocalPlane* lp = node_.local()) {
    // The same-host stream plane (local_plane.h): what went that way.
    const auto& l = lp->counters();
    extra["local_peers"] = int64_t(lp->peers());
    extra["local_sent"] = int64_t(l.sent);
    extra["local_received"] = int64_t(l.received);
    if (l.dropped) extra["local_dropped"] = int64_t(l.dropped);
    if (l.oversized) extra["local_oversized"] = int64_t(l.oversized);
    if (l.duplicates) extra["local_duplicates"] = int64_t(l.duplicates);
    if (l.bad_packets) extra["local_bad_packets"] = int64_t(l.bad_packets);
  }
  for (const auto& [k, v] : extra_) extra[k] = v;
  hb->set_loop_wakeups(loop_.wakeups());
  int64_t cpu = CpuNs();
  if (now > last_wall_ns_) hb->set_cpu_percent(100.0 * double(cpu - last_cpu_ns_) / double(now - last_wall_ns_));
  last_cpu_ns_ = cpu;
  last_wall_ns_ = now;
  heap_.AfterBurst();
  if (heap_.trims()) extra["heap_trims"] = int64_t(heap_.trims());
  hb->set_rss_kb(RssKb());
}

ActorHost::ActorHost(zmq::context_t& zctx, std::unique_ptr<Actor> actor, std::string kind, std::string name,
                     std::string device, BusConfig bus)
    : node_(zctx, loop_, name, std::move(device), bus),
      ctx_(std::move(kind), std::move(name), loop_, node_),
      actor_(std::move(actor)),
      heartbeat_ms_(bus.heartbeat_ms) {}

Status ActorHost::Start(config::Section& section) {
  if (Status st = node_.Connect(); !st.ok()) return st;
  heartbeat_ = node_.Advertise(topics::kHeartbeat);
  if (Status st = actor_->Configure(ctx_); !st.ok()) return st;
  node_.SetActive(true);
  if (Status st = actor_->Activate(ctx_); !st.ok()) {
    node_.SetActive(false);
    return st;
  }
  // First heartbeat at once, and again the moment a heartbeat subscriber
  // shows up (the first one is usually lost while the connection to the
  // broker forms), so the launcher sees the actor up immediately.
  Heartbeat(v1::Heartbeat::ACTIVE);
  node_.OnNewSubscriber([this](const std::string& prefix) {
    if (heartbeat_.topic().rfind(prefix, 0) == 0) Heartbeat(v1::Heartbeat::ACTIVE);
  });
  loop_.AddTimer(std::chrono::milliseconds(heartbeat_ms_), [this] { Heartbeat(v1::Heartbeat::ACTIVE); });
  return Status::Ok();
}

void ActorHost::Heartbeat(v1::Heartbeat::State state) {
  v1::Heartbeat hb;
  actor_->OnHeartbeat(ctx_, hb);  // may update counters (ctx.Set) and add extras
  v1::Heartbeat extras = hb;
  ctx_.FillHeartbeat(&hb, state);
  for (const auto& [k, v] : extras.extra()) (*hb.mutable_extra())[k] = v;
  if (!extras.detail().empty()) hb.set_detail(Utf8Prefix(extras.detail(), 1024));
  heartbeat_.Publish(hb);
}

int ActorHost::Run() {
  loop_.Run();
  Heartbeat(v1::Heartbeat::STOPPING);
  actor_->Deactivate(ctx_);
  node_.SetActive(false);
  return ctx_.exit_code();
}

}  // namespace vb::bus
