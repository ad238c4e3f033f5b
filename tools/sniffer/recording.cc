// Recording the bus to MCAP (see recording.h).
#include "tools/sniffer/recording.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <time.h>

#include <set>

namespace vb::sniff {
namespace pb = google::protobuf;

namespace {

void AddWithDependencies(const pb::FileDescriptor* f, std::set<std::string>* seen, pb::FileDescriptorSet* set) {
  if (!seen->insert(f->name()).second) return;
  for (int i = 0; i < f->dependency_count(); ++i) AddWithDependencies(f->dependency(i), seen, set);
  f->CopyTo(set->add_file());  // dependencies first, as protoc writes sets
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(char(v | 0x80));
    v >>= 7;
  }
  out->push_back(char(v));
}

bool GetVarint(std::string_view s, size_t* at, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *at < s.size(); shift += 7) {
    uint8_t b = uint8_t(s[(*at)++]);
    *v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace

bool RecordedSchema(const std::string& type, std::string* name, std::string* descriptor_set) {
  const pb::Descriptor* payload = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
  const pb::Descriptor* header = v1::Header::descriptor();
  if (!payload) return false;
  // The wrapper lives in its own file, generated here: vb.recorded.<Type>
  // (the package's dots folded into the name if the payload is not vb.v1).
  std::string simple = payload->file()->package() == "vb.v1" ? payload->name() : payload->full_name();
  for (char& c : simple)
    if (c == '.') c = '_';
  pb::FileDescriptorProto wrapper;
  wrapper.set_name("vb/recorded/" + simple + ".proto");
  wrapper.set_package("vb.recorded");
  wrapper.set_syntax("proto3");
  wrapper.add_dependency(header->file()->name());
  if (payload->file() != header->file()) wrapper.add_dependency(payload->file()->name());
  auto* m = wrapper.add_message_type();
  m->set_name(simple);
  auto field = [&](const char* n, int number, const pb::Descriptor* d) {
    auto* f = m->add_field();
    f->set_name(n);
    f->set_number(number);
    f->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
    f->set_type(pb::FieldDescriptorProto::TYPE_MESSAGE);
    f->set_type_name("." + d->full_name());
    f->set_json_name(n);
  };
  field("header", 1, header);
  field("payload", 2, payload);
  pb::FileDescriptorSet set;
  std::set<std::string> seen;
  AddWithDependencies(header->file(), &seen, &set);
  AddWithDependencies(payload->file(), &seen, &set);
  *set.add_file() = wrapper;
  *name = "vb.recorded." + simple;
  return set.SerializeToString(descriptor_set);
}

void EncodeRecorded(std::string_view header, std::string_view payload, std::string* out) {
  out->clear();
  out->push_back(char(0x0a));  // field 1, length-delimited
  PutVarint(header.size(), out);
  out->append(header);
  out->push_back(char(0x12));  // field 2, length-delimited
  PutVarint(payload.size(), out);
  out->append(payload);
}

bool DecodeRecorded(std::string_view data, std::string_view* header, std::string_view* payload) {
  size_t at = 0;
  bool have_header = false;
  *header = *payload = {};
  while (at < data.size()) {
    uint64_t tag = 0, len = 0;
    if (!GetVarint(data, &at, &tag) || (tag & 7) != 2 || !GetVarint(data, &at, &len) || len > data.size() - at)
      return false;
    if (tag >> 3 == 1) *header = data.substr(at, len), have_header = true;
    else if (tag >> 3 == 2) *payload = data.substr(at, len);
    at += len;
  }
  return have_header;
}

int64_t WallOffsetNs() {
  timespec wall{}, mono{};
  clock_gettime(CLOCK_REALTIME, &wall);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (int64_t(wall.tv_sec) - int64_t(mono.tv_sec)) * 1'000'000'000 + (wall.tv_nsec - mono.tv_nsec);
}

Status Recorder::Open(const std::string& path) {
  wall_offset_ns_ = WallOffsetNs();
  base_path_ = path;
  return OpenFile(path);
}

Status Recorder::OpenFile(const std::string& path) {
  writer_ = std::make_unique<McapWriter>(options_.mcap);
  schema_ids_.clear();
  channel_ids_.clear();
  files_.push_back(path);
  return writer_->Open(path);
}

std::string Recorder::NextPath() const {
  std::string stem = base_path_;
  if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".mcap") == 0) stem.resize(stem.size() - 5);
  char n[16];
  snprintf(n, sizeof n, "-%03zu", files_.size());
  return stem + n + ".mcap";
}

uint64_t Recorder::bytes_written() const { return closed_bytes_ + (writer_ ? writer_->file_bytes() : 0); }

Status Recorder::Record(bus::Plane plane, const bus::RawMessage& m, int64_t receive_mono_ns) {
  if (!writer_) return Status::Invalid("the recording is not open");
  if (m.frames != 3 || !m.header) {
    ++malformed_;
    return Status::Ok();
  }
  auto ch = channel_ids_.find(m.topic);
  if (ch == channel_ids_.end()) {
    if (channel_ids_.size() >= kMaxChannels) {
      ++too_many_topics_;
      return Status::Ok();
    }
    const std::string& type = m.header->type();
    auto sc = schema_ids_.find(type);
    if (sc == schema_ids_.end()) {
      std::string name, set;
      if (!RecordedSchema(type, &name, &set)) {
        ++unknown_type_;
        return Status::Ok();
      }
      sc = schema_ids_.emplace(type, writer_->AddSchema(name, "protobuf", std::move(set))).first;
    }
    uint16_t id =
        writer_->AddChannel(sc->second, std::string(m.topic), "protobuf",
                            {{"plane", plane == bus::Plane::kStream ? "stream" : "control"}, {"payload_type", type}});
    ch = channel_ids_.emplace(std::string(m.topic), ChannelRef{id, type}).first;
  } else if (m.header->type() != ch->second.type) {
    // A topic has one payload type (DESIGN.md); a publisher breaking that
    // would make its messages undecodable with the channel's schema.
    ++unknown_type_;
    return Status::Ok();
  }
  EncodeRecorded(m.header_bytes, m.payload, &data_);
  Status s = writer_->Write(ch->second.id, uint32_t(m.header->seq()), WallNs(receive_mono_ns),
                            m.header->mono_ns() > 0 ? WallNs(m.header->mono_ns()) : WallNs(receive_mono_ns), data_);
  if (!s.ok()) return s;
  ++messages_;
  auto pt = per_topic_.find(m.topic);
  if (pt != per_topic_.end()) ++pt->second;
  else if (per_topic_.size() < kMaxChannels) per_topic_.emplace(std::string(m.topic), 1);
  if (options_.split_bytes && writer_->file_bytes() >= options_.split_bytes) {
    if (Status c = writer_->Close(); !c.ok()) return c;
    closed_bytes_ += writer_->file_bytes();
    return OpenFile(NextPath());
  }
  return Status::Ok();
}

Status Recorder::Tick() {
  if (!writer_) return Status::Ok();
  return writer_->CloseChunkIfOlder(bus::MonoNs() - options_.chunk_interval_ns);
}

Status Recorder::Close() {
  if (!writer_) return Status::Ok();
  Status s = writer_->Close();
  closed_bytes_ += writer_->file_bytes();
  writer_.reset();
  return s;
}

}  // namespace vb::sniff
