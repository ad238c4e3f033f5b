// The recording format: what McapWriter writes McapReader reads back whole;
// a file cut anywhere (as by kill -9) still yields every complete chunk; a
// damaged chunk is skipped and counted; recover makes a cut file complete;
// the recorded schema decodes a recorded bus message by reflection from
// the embedded FileDescriptorSet alone (as Foxglove does).
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "bus/topics.h"
#include "tests/support/process.h"
#include "tools/sniffer/mcap_format.h"
#include "tools/sniffer/mcap_reader.h"
#include "tools/sniffer/mcap_writer.h"
#include "tools/sniffer/offline.h"
#include "tools/sniffer/recording.h"

namespace vb::sniff {
namespace {
namespace pb = google::protobuf;

struct Read {
  std::vector<McapMessage> messages;  // data copied below
  std::vector<std::string> data;
  McapReadReport report;
  std::map<uint16_t, McapChannel> channels;
};

Read ReadAll(const std::string& path) {
  Read r;
  McapReader reader;
  EXPECT_TRUE(reader.Open(path).ok());
  reader.Read(
      [&](const McapMessage& m) {
        r.messages.push_back(m);
        r.data.emplace_back(m.data);
        return true;
      },
      &r.report);
  r.channels = reader.channels();
  return r;
}

// Writes n messages on two channels, a chunk every `per_chunk` messages.
// close=false: the file as a recorder killed after its last chunk leaves it
// (copied to `path` + ".killed" before the writer finishes it).
void WriteFile(const std::string& path, int n, int per_chunk, bool close = true) {
  McapWriter w(McapOptions{.chunk_bytes = size_t(1) << 30});
  ASSERT_TRUE(w.Open(path).ok());
  uint16_t s = w.AddSchema("test.Blob", "protobuf", "descriptor");
  uint16_t a = w.AddChannel(s, "audio.mic/local", "protobuf", {{"plane", "stream"}});
  uint16_t b = w.AddChannel(s, "dialog.state/local", "protobuf", {});
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(w.Write(i % 3 ? a : b, uint32_t(i + 1), 1000 + i, 900 + i, "payload-" + std::to_string(i)).ok());
    if ((i + 1) % per_chunk == 0) ASSERT_TRUE(w.CloseChunk().ok());
  }
  if (close) ASSERT_TRUE(w.Close().ok());
  else ASSERT_TRUE(w.CloseChunk().ok());
  if (!close) std::ofstream(path + ".killed", std::ios::binary) << testing::ReadFile(path);
}

std::string Slurp(const std::string& path) { return testing::ReadFile(path); }

// (start, end) of each top-level Chunk record of an MCAP file's bytes.
std::vector<std::pair<size_t, size_t>> ChunkSpans(const std::string& bytes) {
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t at = 8; at + 9 <= bytes.size();) {
    uint64_t len = 0;
    for (int i = 0; i < 8; ++i) len |= uint64_t(uint8_t(bytes[at + 1 + i])) << (8 * i);
    if (uint8_t(bytes[at]) == mcap::kChunk) spans.emplace_back(at, at + 9 + len);
    at += 9 + len;
  }
  return spans;
}
void Spit(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

TEST(Mcap, RoundTripKeepsEveryMessageInOrder) {
  testing::TempDir dir;
  WriteFile(dir.File("a.mcap"), 250, 40);
  Read r = ReadAll(dir.File("a.mcap"));
  EXPECT_TRUE(r.report.has_footer);
  EXPECT_EQ(r.report.truncated_bytes, 0u);
  EXPECT_EQ(r.report.chunks, 7u);  // 6 full + the rest
  ASSERT_EQ(r.messages.size(), 250u);
  for (int i = 0; i < 250; ++i) {
    EXPECT_EQ(r.messages[i].sequence, uint32_t(i + 1));
    EXPECT_EQ(r.messages[i].log_time, uint64_t(1000 + i));
    EXPECT_EQ(r.messages[i].publish_time, uint64_t(900 + i));
    EXPECT_EQ(r.data[i], "payload-" + std::to_string(i));
  }
  EXPECT_EQ(r.channels.at(1).topic, "audio.mic/local");
  EXPECT_EQ(r.channels.at(1).metadata.at("plane"), "stream");
  // The file ends with the footer and the magic; starts with the magic.
  std::string bytes = Slurp(dir.File("a.mcap"));
  EXPECT_EQ(bytes.substr(0, 8), std::string(mcap::kMagic));
  EXPECT_EQ(bytes.substr(bytes.size() - 8), std::string(mcap::kMagic));
}

TEST(Mcap, ChunksAreZstdAndCloseBySize) {
  testing::TempDir dir;
  McapWriter w(McapOptions{.chunk_bytes = 4096});
  ASSERT_TRUE(w.Open(dir.File("s.mcap")).ok());
  uint16_t c = w.AddChannel(w.AddSchema("x", "protobuf", ""), "t", "protobuf", {});
  std::string silence(640, '\0');  // compresses well
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(w.Write(c, i, i, i, silence).ok());
  EXPECT_GE(w.stats().chunks, 13u) << "a chunk closes when it reaches chunk_bytes (~7 frames)";
  ASSERT_TRUE(w.Close().ok());
  EXPECT_LT(w.file_bytes(), 100u * 640 / 4) << "zstd did not compress";
  EXPECT_EQ(ReadAll(dir.File("s.mcap")).messages.size(), 100u);
}

TEST(Mcap, ChunkClosesByAgeOnly) {
  testing::TempDir dir;
  McapWriter w;
  ASSERT_TRUE(w.Open(dir.File("t.mcap")).ok());
  uint16_t c = w.AddChannel(w.AddSchema("x", "protobuf", ""), "t", "protobuf", {});
  int64_t before = bus::MonoNs();
  ASSERT_TRUE(w.Write(c, 1, 1, 1, "a").ok());
  uint64_t size = w.file_bytes();
  ASSERT_TRUE(w.CloseChunkIfOlder(before - 1).ok());  // opened after that: stays open
  EXPECT_EQ(w.file_bytes(), size);
  ASSERT_TRUE(w.CloseChunkIfOlder(bus::MonoNs()).ok());  // opened before now: written
  EXPECT_GT(w.file_bytes(), size);
  EXPECT_EQ(w.stats().chunks, 1u);
  // Written to the file at once (no user-space buffer): a reader sees it
  // while the writer still has the file open.
  Read r = ReadAll(dir.File("t.mcap"));
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_FALSE(r.report.has_footer);
}

// A recorder killed with -9 leaves a file cut anywhere: inside a chunk, or
// with no summary. Every complete chunk is read; the cut is reported.
TEST(Mcap, CutAnywhereYieldsEveryCompleteChunk) {
  testing::TempDir dir;
  WriteFile(dir.File("full.mcap"), 100, 10, /*close=*/false);  // 10 chunks, no summary: as killed
  std::string bytes = Slurp(dir.File("full.mcap.killed"));
  Read whole = ReadAll(dir.File("full.mcap.killed"));
  ASSERT_EQ(whole.messages.size(), 100u);
  EXPECT_FALSE(whole.report.has_footer);
  EXPECT_EQ(whole.report.truncated_bytes, 0u);
  auto spans = ChunkSpans(bytes);
  ASSERT_EQ(spans.size(), 10u);
  for (size_t cut = 8; cut < bytes.size(); cut += 37) {
    Spit(dir.File("cut.mcap"), bytes.substr(0, cut));
    Read r = ReadAll(dir.File("cut.mcap"));
    size_t complete = 0;  // chunks wholly before the cut
    for (auto [begin, end] : spans) complete += end <= cut;
    ASSERT_EQ(r.messages.size(), complete * 10) << "cut at " << cut << ": only the cut chunk is lost";
    for (size_t i = 0; i < r.messages.size(); ++i) EXPECT_EQ(r.data[i], "payload-" + std::to_string(i));
    bool inside = false;
    for (auto [begin, end] : spans) inside |= begin < cut && cut < end;
    if (inside) EXPECT_GT(r.report.truncated_bytes, 0u) << "a cut chunk is reported, cut at " << cut;
  }
}

TEST(Mcap, DamagedChunkIsSkippedAndCounted) {
  testing::TempDir dir;
  WriteFile(dir.File("d.mcap"), 30, 10);
  std::string bytes = Slurp(dir.File("d.mcap"));
  Read clean = ReadAll(dir.File("d.mcap"));
  ASSERT_EQ(clean.messages.size(), 30u);
  // Flip a byte in the middle of the first chunk's compressed data (after its header).
  size_t first_chunk = bytes.find(char(mcap::kChunk), 8);
  ASSERT_NE(first_chunk, std::string::npos);
  bytes[first_chunk + 80] ^= 0x55;
  Spit(dir.File("d.mcap"), bytes);
  Read r = ReadAll(dir.File("d.mcap"));
  EXPECT_EQ(r.report.bad_chunks, 1u);
  EXPECT_NE(r.report.problems.find("chunk"), std::string::npos);
  // The later chunks are still read (their channels were defined in the
  // damaged one, so they are orphans unless defined again: counted).
  EXPECT_EQ(r.messages.size() + r.report.orphan_messages, 20u);
}

// Hostile or damaged files: any single corrupted byte, anywhere, is read
// without a crash or a hang, and never yields more messages than were written.
TEST(Mcap, EveryCorruptedByteIsSurvived) {
  testing::TempDir dir;
  WriteFile(dir.File("c.mcap"), 12, 4);
  std::string bytes = Slurp(dir.File("c.mcap"));
  for (size_t i = 8; i < bytes.size(); ++i) {
    for (uint8_t flip : {uint8_t(0x01), uint8_t(0xff)}) {
      std::string bad = bytes;
      bad[i] = char(uint8_t(bad[i]) ^ flip);
      Spit(dir.File("bad.mcap"), bad);
      Read r = ReadAll(dir.File("bad.mcap"));
      ASSERT_LE(r.messages.size(), 12u) << "byte " << i;
    }
  }
}

TEST(Mcap, NotMcapIsAClearError) {
  testing::TempDir dir;
  Spit(dir.File("x.mcap"), "hello, not a recording");
  McapReader reader;
  Status s = reader.Open(dir.File("x.mcap"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not an MCAP file"), std::string::npos) << s.message();
  EXPECT_FALSE(reader.Open(dir.File("missing.mcap")).ok());
}

TEST(Mcap, RecoverMakesACutFileComplete) {
  testing::TempDir dir;
  WriteFile(dir.File("full.mcap"), 100, 10, /*close=*/false);
  std::string bytes = Slurp(dir.File("full.mcap.killed"));
  Spit(dir.File("cut.mcap"), bytes.substr(0, ChunkSpans(bytes).back().first + 30));  // the last chunk cut
  std::string report;
  ASSERT_TRUE(RecoverRecording(dir.File("cut.mcap"), dir.File("fixed.mcap"), &report).ok());
  EXPECT_NE(report.find("recovered 90 messages on 2 topics"), std::string::npos) << report;
  Read r = ReadAll(dir.File("fixed.mcap"));
  EXPECT_TRUE(r.report.has_footer);
  EXPECT_EQ(r.report.truncated_bytes, 0u);
  EXPECT_EQ(r.messages.size(), 90u);
  RecordingSummary s;
  ASSERT_TRUE(SummarizeRecording(dir.File("fixed.mcap"), &s).ok());
  EXPECT_EQ(s.messages, 90u);
  std::map<std::string, uint64_t> per_topic;
  for (const auto& [id, c] : s.channels) per_topic[c.topic] = c.messages;
  EXPECT_EQ(per_topic["audio.mic/local"], 60u);  // i % 3 != 0 of 0..89
  EXPECT_EQ(per_topic["dialog.state/local"], 30u);
  std::string text = FormatSummary("fixed.mcap", s, false);
  EXPECT_NE(text.find("audio.mic/local"), std::string::npos) << text;
  EXPECT_NE(FormatSummary("f", s, true).find("\"complete\":true"), std::string::npos);
}

TEST(Recording, EnvelopeKeepsHeaderAndPayloadBytes) {
  std::string data;
  std::string header(300, 'h'), payload(70000, 'p');  // multi-byte varint lengths
  EncodeRecorded(header, payload, &data);
  std::string_view h, p;
  ASSERT_TRUE(DecodeRecorded(data, &h, &p));
  EXPECT_EQ(h, header);
  EXPECT_EQ(p, payload);
  EncodeRecorded("", "", &data);
  ASSERT_TRUE(DecodeRecorded(data, &h, &p));
  EXPECT_TRUE(h.empty() && p.empty());
  EXPECT_FALSE(
      DecodeRecorded("\x0a\x05"
                     "ab",
                     &h, &p))
      << "length beyond the data";
  EXPECT_FALSE(DecodeRecorded("\x08\x01", &h, &p)) << "a varint field is not the envelope";
}

// The schema alone decodes a recorded message: a fresh DescriptorPool built
// from the embedded FileDescriptorSet, as a reader without our code would.
TEST(Recording, SchemaDecodesARecordedMessageWithoutGeneratedCode) {
  std::string name, set_bytes;
  ASSERT_TRUE(RecordedSchema("vb.v1.AudioFrame", &name, &set_bytes));
  EXPECT_EQ(name, "vb.recorded.AudioFrame");
  EXPECT_FALSE(RecordedSchema("vb.v1.NoSuchType", &name, &set_bytes));
  ASSERT_TRUE(RecordedSchema("vb.v1.AudioFrame", &name, &set_bytes));
  pb::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(set_bytes));
  pb::DescriptorPool pool;  // not the generated pool
  for (const auto& f : set.file()) ASSERT_NE(pool.BuildFile(f), nullptr) << f.name();
  const pb::Descriptor* d = pool.FindMessageTypeByName(name);
  ASSERT_NE(d, nullptr);

  v1::Header header;
  header.set_type("vb.v1.AudioFrame");
  header.set_seq(42);
  header.set_source("capture");
  header.set_turn_id("chat-7");
  v1::AudioFrame frame;
  frame.set_sample_rate(16000);
  frame.set_pcm(std::string(640, '\x01'));
  std::string data;
  EncodeRecorded(header.SerializeAsString(), frame.SerializeAsString(), &data);
  pb::DynamicMessageFactory factory(&pool);
  std::unique_ptr<pb::Message> m(factory.GetPrototype(d)->New());
  ASSERT_TRUE(m->ParseFromString(data));
  const auto* refl = m->GetReflection();
  const pb::Message& h = refl->GetMessage(*m, d->FindFieldByName("header"));
  const pb::Message& p = refl->GetMessage(*m, d->FindFieldByName("payload"));
  EXPECT_EQ(h.GetReflection()->GetUInt64(h, h.GetDescriptor()->FindFieldByName("seq")), 42u);
  EXPECT_EQ(h.GetReflection()->GetString(h, h.GetDescriptor()->FindFieldByName("turn_id")), "chat-7");
  EXPECT_EQ(p.GetReflection()->GetString(p, p.GetDescriptor()->FindFieldByName("pcm")).size(), 640u);
}

TEST(Recording, SplitsIntoNumberedFilesBySize) {
  testing::TempDir dir;
  RecorderOptions o;
  o.split_bytes = 20000;
  o.mcap.chunk_bytes = 4096;
  Recorder rec(o);
  ASSERT_TRUE(rec.Open(dir.File("r.mcap")).ok());
  v1::Header h;
  h.set_type("vb.v1.AudioFrame");
  h.set_source("capture");
  v1::AudioFrame f;
  std::string payload;
  std::string header_bytes;
  for (int i = 1; i <= 200; ++i) {
    h.set_seq(i);
    h.set_mono_ns(1'000'000'000 + i * 20'000'000ll);
    f.set_pcm(std::string(640, char(i)));  // incompressible enough across frames
    for (auto& c : *f.mutable_pcm()) c = char(rand());
    header_bytes = h.SerializeAsString();
    payload = f.SerializeAsString();
    bus::RawMessage m{"audio.mic/local", &h, header_bytes, payload, 3};
    ASSERT_TRUE(rec.Record(bus::Plane::kStream, m, h.mono_ns()).ok());
  }
  // A malformed message and an unknown type are counted, not recorded.
  bus::RawMessage bad{"audio.mic/local", nullptr, "", "", 2};
  ASSERT_TRUE(rec.Record(bus::Plane::kStream, bad, 0).ok());
  v1::Header odd;
  odd.set_type("vb.v1.Invented");
  bus::RawMessage unknown{"odd.topic", &odd, "", "", 3};
  ASSERT_TRUE(rec.Record(bus::Plane::kControl, unknown, 0).ok());
  ASSERT_TRUE(rec.Close().ok());
  EXPECT_EQ(rec.malformed(), 1u);
  EXPECT_EQ(rec.unknown_type(), 1u);
  ASSERT_GE(rec.files().size(), 3u);
  EXPECT_EQ(rec.files()[1], dir.File("r-001.mcap"));
  size_t total = 0;
  uint32_t next_seq = 1;
  for (const auto& path : rec.files()) {
    Read r = ReadAll(path);
    EXPECT_TRUE(r.report.has_footer) << path;
    for (size_t i = 0; i < r.messages.size(); ++i) EXPECT_EQ(r.messages[i].sequence, next_seq++);
    total += r.messages.size();
  }
  EXPECT_EQ(total, 200u);
  EXPECT_EQ(rec.messages(), 200u);
}

}  // namespace
}  // namespace vb::sniff
