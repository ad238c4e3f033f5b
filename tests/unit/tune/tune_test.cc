// vb tune's core: the same recording and config give bit-identical
// audio.clean and the same VAD/wake events; another config gives other
// figures; --set keys are checked by the actors' own declarations.
#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/unit/tune/scene_recording.h"
#include "tools/tune/tune.h"
#include "tools/tune/tune_config.h"

namespace vb::tune {
namespace {

class TuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("dialog.mcap");
    ASSERT_TRUE(testing::WriteDialogRecording(path_).ok());
  }
  TuneResult Run(const std::vector<std::string>& sets) {
    TuneConfig config;
    Status st = LoadTuneConfig("", sets, &config);
    EXPECT_TRUE(st.ok()) << st.message();
    RecordedAudio audio;  // read afresh: nothing carried over between runs
    st = ReadRecordedAudio(path_, "", &audio);
    EXPECT_TRUE(st.ok()) << st.message();
    TuneResult r;
    st = RunTune(audio, config, &r);
    EXPECT_TRUE(st.ok()) << st.message();
    return r;
  }
  vb::testing::TempDir dir_;
  std::string path_;
};

TEST_F(TuneTest, SameRecordingAndConfigGiveBitIdenticalCleanAudioAndEvents) {
  TuneResult a = Run({}), b = Run({});
  ASSERT_EQ(a.mic_frames, 300u);
  EXPECT_EQ(a.ref_frames, 150u);
  EXPECT_EQ(a.bad_frames, 0u);
  EXPECT_EQ(a.clean_samples, 300u * 320);
  EXPECT_EQ(a.clean_hash, b.clean_hash);
  EXPECT_TRUE(a.clean == b.clean);
  EXPECT_EQ(a.gated_blocks, b.gated_blocks);
  EXPECT_EQ(a.erle_db, b.erle_db);
  ASSERT_EQ(a.vad.size(), b.vad.size());
  for (size_t i = 0; i < a.vad.size(); ++i) {
    EXPECT_EQ(a.vad[i].start_s, b.vad[i].start_s);
    EXPECT_EQ(a.vad[i].end_s, b.vad[i].end_s);
  }
  ASSERT_EQ(a.wakes.size(), b.wakes.size());
  for (size_t i = 0; i < a.wakes.size(); ++i) EXPECT_EQ(a.wakes[i].score, b.wakes[i].score);
}

TEST_F(TuneTest, DefaultFrontEndCancelsTheEchoAndTheVadFindsTheUser) {
  TuneResult r = Run({});
  EXPECT_EQ(r.backend, std::string("speex"));
  EXPECT_GT(r.ref_frames_playing, 60u);  // 3 s of babble with pauses: 97 frames above -55 dBFS
  EXPECT_GT(r.erle_db, 6) << "the agent's echo should be cancelled (measured: 10.0 dB)";
  // The user speaks 4.0-5.2 s, after the agent stopped at 3.5 s.
  bool user_found = false;
  for (const auto& v : r.vad) user_found = user_found || (v.start_s > 3.8 && v.start_s < 4.3);
  EXPECT_TRUE(user_found) << "no VAD segment starting near 4.0 s (" << r.vad.size() << " segments)";
  EXPECT_GT(r.clean_speaking.frames, 20u);
  EXPECT_GT(r.clean_speaking.p95, -35);  // the user at about -26 dBFS (measured p95: -25.0)
}

TEST_F(TuneTest, AnotherConfigGivesOtherFigures) {
  TuneResult speex = Run({}), bypass = Run({"afe.backend=bypass"});
  EXPECT_EQ(bypass.backend, std::string("bypass"));
  EXPECT_NE(speex.clean_hash, bypass.clean_hash);
  EXPECT_LT(bypass.erle_db, 3) << "bypass passes the echo through";
  EXPECT_GT(speex.erle_db, bypass.erle_db + 6);
  // The echo left in by bypass is heard as speech while the agent plays.
  bool echo_heard = false;
  for (const auto& v : bypass.vad) echo_heard = echo_heard || v.start_s < 3.5;
  EXPECT_TRUE(echo_heard);
}

TEST(TuneLiveTest, TheRecordedCleanAudioIsJudgedLikeAnOfflineRun) {
  vb::testing::TempDir dir;
  ASSERT_TRUE(testing::WriteDialogRecording(dir.File("d.mcap"), 6.0, /*with_clean=*/true).ok());
  RecordedAudio audio;
  ASSERT_TRUE(ReadRecordedAudio(dir.File("d.mcap"), "", &audio).ok());
  EXPECT_EQ(audio.live_clean.size(), 300u);
  TuneConfig bypass;
  ASSERT_TRUE(LoadTuneConfig("", {"afe.backend=bypass"}, &bypass).ok());
  TuneResult live, offline;
  ASSERT_TRUE(RunTune(audio, bypass, &live, CleanSource::kLive).ok());
  ASSERT_TRUE(RunTune(audio, bypass, &offline).ok());
  EXPECT_TRUE(live.live);
  EXPECT_EQ(live.live_missing, 0u);
  // The recording's audio.clean is what bypass makes: the same hash and events.
  EXPECT_EQ(live.clean_hash, offline.clean_hash);
  EXPECT_EQ(live.vad.size(), offline.vad.size());
  EXPECT_EQ(live.erle_db, offline.erle_db);
  TuneConfig speex;
  ASSERT_TRUE(LoadTuneConfig("", {}, &speex).ok());
  TuneResult live_speex;
  ASSERT_TRUE(RunTune(audio, speex, &live_speex, CleanSource::kLive).ok());
  EXPECT_EQ(live_speex.clean_hash, live.clean_hash) << "live audio does not depend on the afe config";
}

TEST(TuneConfigTest, SetIsCheckedByTheActorsDeclarations) {
  TuneConfig c;
  Status st = LoadTuneConfig("", {"afe.backendd=webrtc"}, &c);
  EXPECT_EQ(st.code(), Status::Code::kConfig);
  EXPECT_NE(st.message().find("afe.backendd"), std::string::npos) << st.message();
  st = LoadTuneConfig("", {"wakevad.vad.threshold=2"}, &c);
  EXPECT_EQ(st.code(), Status::Code::kConfig);
  EXPECT_NE(st.message().find("wakevad.vad.threshold"), std::string::npos) << st.message();
  st = LoadTuneConfig("", {"session.token=x"}, &c);
  EXPECT_EQ(st.code(), Status::Code::kConfig);
  st = LoadTuneConfig("", {"afe.backend"}, &c);
  EXPECT_EQ(st.code(), Status::Code::kConfig);

  ASSERT_TRUE(
      LoadTuneConfig(
          "", {"afe.backend=webrtc", "afe.ref_wait_ms=0", "wakevad.vad.threshold=0.7", "wakevad.wake.enabled=false"},
          &c)
          .ok());
  EXPECT_EQ(c.afe.backend, "webrtc");
  EXPECT_EQ(c.ref_wait_ms, 0);
  EXPECT_DOUBLE_EQ(c.wakevad.vad.threshold, 0.7);
  EXPECT_FALSE(c.wakevad.wake_enabled);
  ASSERT_TRUE(LoadTuneConfig("", {}, &c).ok());
  EXPECT_EQ(c.afe.backend, "speex");  // the shipped default
  EXPECT_EQ(c.ref_wait_ms, 40);
}

TEST(TuneConfigTest, ConfigFileSectionsAreReadAndSetGoesOnTop) {
  vb::testing::TempDir dir;
  dir.Write("c.yaml", "afe:\n  backend: webrtc\n  tail_ms: 200\nwakevad:\n  vad:\n    threshold: 0.6\n");
  TuneConfig c;
  ASSERT_TRUE(LoadTuneConfig(dir.File("c.yaml"), {}, &c).ok());
  EXPECT_EQ(c.afe.backend, "webrtc");
  EXPECT_EQ(c.afe.processor.tail_ms, 200);
  EXPECT_DOUBLE_EQ(c.wakevad.vad.threshold, 0.6);
  ASSERT_TRUE(LoadTuneConfig(dir.File("c.yaml"), {"afe.backend=speex"}, &c).ok());
  EXPECT_EQ(c.afe.backend, "speex");
  EXPECT_EQ(c.afe.processor.tail_ms, 200);
  dir.Write("bad.yaml", "afe:\n  tail_ms: 5\n");
  Status st = LoadTuneConfig(dir.File("bad.yaml"), {}, &c);
  EXPECT_NE(st.message().find("bad.yaml:2"), std::string::npos) << st.message();
}

TEST(TuneReadTest, ARecordingWithoutMicAudioIsAClearError) {
  vb::testing::TempDir dir;
  RecordedAudio audio;
  EXPECT_FALSE(ReadRecordedAudio(dir.File("missing.mcap"), "", &audio).ok());
  ASSERT_TRUE(testing::WriteDialogRecording(dir.File("d.mcap"), 1.0).ok());
  Status st = ReadRecordedAudio(dir.File("d.mcap"), "kitchen", &audio);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("audio.mic/kitchen"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace vb::tune
