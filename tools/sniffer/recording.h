// Recording the bus to MCAP, and reading it back for replay.
//
// What a recording holds (the contract for any reader):
// - one channel per bus topic as it appears on the wire ("audio.mic/local"),
//   message encoding "protobuf", metadata {"plane": "stream"|"control",
//   "payload_type": "vb.v1.AudioFrame"};
// - one schema per payload type, encoding "protobuf", named
//   "vb.recorded.<Type>" (e.g. vb.recorded.AudioFrame): a message
//   `{ vb.v1.Header header = 1; <payload type> payload = 2; }`, its data the
//   serialized google.protobuf.FileDescriptorSet of that wrapper's file and
//   every file it depends on (header.proto, the payload's file, …). The bus
//   header and payload are kept byte for byte: a message's data is the
//   header frame and the payload frame as fields 1 and 2, so nothing the
//   live bus carried (source, seq, origin_ns, turn_id) is lost and Foxglove
//   shows both;
// - log_time: when vb-sniff received the message, publish_time: the
//   publisher's Header.mono_ns, both as wall-clock ns (CLOCK_REALTIME at the
//   recorder's start + monotonic elapsed, so they never go backwards);
//   sequence: Header.seq (low 32 bits).
//
// Messages whose payload type this build does not know are counted and not
// recorded (no schema could describe them).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bus/node.h"
#include "tools/sniffer/mcap_writer.h"

namespace vb::sniff {

// The schema of recorded messages of payload type `type`: name and the
// serialized FileDescriptorSet. False if `type` is not a known message.
bool RecordedSchema(const std::string& type, std::string* name, std::string* descriptor_set);

// CLOCK_REALTIME − CLOCK_MONOTONIC now: bus stamps (mono) as wall-clock time.
int64_t WallOffsetNs();

// A recorded message's data: [field 1: header bytes][field 2: payload bytes].
void EncodeRecorded(std::string_view header, std::string_view payload, std::string* out);
// Splits it again; false if the bytes are not such a message.
bool DecodeRecorded(std::string_view data, std::string_view* header, std::string_view* payload);

struct RecorderOptions {
  uint64_t split_bytes = 0;  // 0 = one file
  McapOptions mcap;
  int64_t chunk_interval_ns = 1'000'000'000;  // a chunk is closed at least this often
};

class Recorder {
 public:
  explicit Recorder(RecorderOptions options) : options_(std::move(options)) {}
  // Starts the first file at `path`. With split_bytes, when a file reaches
  // that size it is closed and the next is "<stem>-001.mcap", "-002", ….
  Status Open(const std::string& path);
  // Records one bus message (raw frames as the sniffer gets them).
  Status Record(bus::Plane plane, const bus::RawMessage& m, int64_t receive_mono_ns);
  // Closes a chunk open for chunk_interval_ns or more (call often, e.g. every 100 ms).
  Status Tick();
  Status Close();

  const std::vector<std::string>& files() const { return files_; }
  uint64_t messages() const { return messages_; }
  uint64_t bytes_written() const;  // all files, so far
  uint64_t unknown_type() const { return unknown_type_; }
  uint64_t malformed() const { return malformed_; }
  const std::map<std::string, uint64_t, std::less<>>& per_topic() const { return per_topic_; }
  uint64_t too_many_topics() const { return too_many_topics_; }
  // Channels per file at most (a publisher inventing topic names must not
  // grow a recording's summary without bound).
  static constexpr size_t kMaxChannels = 4096;

  // Wall-clock ns for a monotonic stamp (the recorder's fixed offset).
  uint64_t WallNs(int64_t mono_ns) const { return uint64_t(mono_ns + wall_offset_ns_); }

 private:
  Status OpenFile(const std::string& path);
  std::string NextPath() const;

  RecorderOptions options_;
  std::unique_ptr<McapWriter> writer_;
  std::string base_path_;
  std::vector<std::string> files_;
  uint64_t closed_bytes_ = 0;
  int64_t wall_offset_ns_ = 0;
  std::map<std::string, uint16_t> schema_ids_;  // type → id (this file)
  struct ChannelRef {
    uint16_t id;
    std::string type;
  };
  std::map<std::string, ChannelRef, std::less<>> channel_ids_;  // topic → channel (this file)
  std::map<std::string, uint64_t, std::less<>> per_topic_;
  uint64_t messages_ = 0, unknown_type_ = 0, malformed_ = 0, too_many_topics_ = 0;
  std::string data_;
};

}  // namespace vb::sniff
