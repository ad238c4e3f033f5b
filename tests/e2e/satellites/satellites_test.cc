// Two rooms, one assistant (issue 16), on one host: the kitchen and the
// office are satellites, each with its own bus bridged to the hub's
// (tests/e2e/satellites/two_rooms.yaml). The office hears the question, the
// kitchen hears silence: the hub must serve the office — stream its voice,
// answer through its speaker — and leave the kitchen's speaker silent.
#include <gtest/gtest.h>

#include "actors/common/wav.h"
#include "actors/control/arbiter.h"
#include "tests/support/process.h"

namespace vb::testing {
namespace {

// Level of the whole recording, dBFS (vb-control's own measure).
double LevelDb(const audio::PcmBuffer& pcm) {
  const std::string bytes(reinterpret_cast<const char*>(pcm.samples.data()), pcm.samples.size() * 2);
  return control::MeasureSignal(bytes, 0, 0, pcm.samples.size()).level_db;
}

TEST(Satellites, TheRoomThatHeardTheQuestionGetsTheAnswer) {
  TempDir dir;
  std::string out;
  // The office hears the question once every part can serve it: a loaded
  // machine takes seconds to start 17 processes, and a question said
  // before anyone listens is lost for good (vb-control would show it).
  ASSERT_EQ(
      RunCommand({"/bin/sh", "-c", "exec espeak-ng -v en-us -s 150 -w \"$0\" 'What time is it?'", dir.File("said.wav")},
                 &out, std::chrono::seconds(30)),
      0)
      << out;
  audio::PcmBuffer said, question;
  ASSERT_TRUE(audio::ReadWav(dir.File("said.wav"), &said).ok());
  question.sample_rate = said.sample_rate;
  question.channels = said.channels;
  question.samples.assign(size_t(said.sample_rate) * said.channels * 8, 0);
  question.samples.insert(question.samples.end(), said.samples.begin(), said.samples.end());
  ASSERT_TRUE(audio::WriteWav(dir.File("office-question.wav"), question).ok());
  const std::string config = std::string(VB_SATELLITES_DIR) + "/two_rooms.yaml";
  int code = RunCommand(
      {Bin("vb"), "demo", "--config", config, "--out", dir.path(), "--say", "What time is it?", "--timeout", "90"},
      &out, std::chrono::seconds(150));
  const std::string control = ReadFile(dir.File("logs/control.log"));
  ASSERT_EQ(code, 0) << out << "\n--- control log:\n"
                     << control << "\n--- session log:\n"
                     << ReadFile(dir.File("logs/session.log"));
  EXPECT_NE(out.find("you:   what time is it"), std::string::npos) << out;
  EXPECT_NE(out.find("agent: It is "), std::string::npos) << out;
  // Every per-device actor ran as KIND@DEVICE, each satellite's bus too.
  for (const char* a : {"broker@kitchen", "broker@office", "capture@office", "afe@office", "wakevad@office",
                        "playback@office", "capture@kitchen", "playback@kitchen"})
    EXPECT_NE(out.find(std::string(a) + " started"), std::string::npos) << a << "\n" << out;
  // vb-control chose the office by its signal, and the session followed it.
  EXPECT_NE(control.find("arbitration after"), std::string::npos) << control;
  EXPECT_NE(control.find(": office: "), std::string::npos) << control;
  EXPECT_NE(ReadFile(dir.File("logs/session.log")).find("streaming the voice of device office"), std::string::npos);
  // The office's speaker has the answer; the kitchen's played nothing.
  audio::PcmBuffer office, kitchen;
  ASSERT_TRUE(audio::ReadWav(dir.File("reply.wav"), &office).ok());
  EXPECT_GT(double(office.frames()) / office.sample_rate, 0.8) << "the office's reply is too short to be speech";
  EXPECT_GT(LevelDb(office), -45.0) << "the office's reply is (nearly) silent";
  if (audio::ReadWav(dir.File("kitchen-reply.wav"), &kitchen).ok())
    EXPECT_LT(LevelDb(kitchen), -60.0) << "the kitchen played something: " << kitchen.frames() << " frames";
  // Nothing came down the kitchen's bridge that was meant for the office.
  EXPECT_EQ(ReadFile(dir.File("logs/playback@kitchen.log")).find("prompt"), std::string::npos);
}

}  // namespace
}  // namespace vb::testing
