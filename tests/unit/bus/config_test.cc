// Config validation: every bad value is reported with file, line, column
// and key, and the documented default prints back as valid YAML.
#include <gtest/gtest.h>

#include "bus/bus_config.h"
#include "bus/config.h"

namespace vb::config {
namespace {

struct Sample {
  int rate = 0;
  double gain = 0;
  bool enabled = false;
  std::string mode, path;
  std::vector<std::string> list;
  int nested = 0;
  void Declare(Section& s) {
    s.Key("rate", &rate, 16000, {8000, 48000}, "sample rate");
    s.Key("gain", &gain, 1.0, {0, 10}, "gain");
    s.Key("enabled", &enabled, true, "on or off");
    s.Choice("mode", &mode, "alsa", {"alsa", "wav", "silence"}, "source");
    s.Key("path", &path, "", "a path");
    s.Key("list", &list, {"a"}, "a list");
    auto sub = s.Sub("opus", "codec settings");
    sub.Key("bitrate", &nested, 16000, {6000, 510000}, "bits per second");
    sub.Finish();
    s.Finish();
  }
};

std::vector<std::string> Errors(const std::string& yaml, Sample* out = nullptr) {
  File f;
  Status st = f.LoadString(yaml, "test.yaml");
  if (!st.ok()) return {st.message()};
  auto report = f.NewReport();
  auto s = f.Get("capture", report);
  Sample sample;
  sample.Declare(s);
  if (out) *out = sample;
  return report->errors;
}

TEST(ConfigTest, AbsentSectionTakesDefaults) {
  Sample s;
  EXPECT_TRUE(Errors("other: {}\n", &s).empty());
  EXPECT_EQ(s.rate, 16000);
  EXPECT_EQ(s.mode, "alsa");
  EXPECT_EQ(s.nested, 16000);
}

TEST(ConfigTest, ReadsValues) {
  Sample s;
  auto e = Errors(
      "capture:\n  rate: 48000\n  gain: 2.5\n  enabled: false\n  mode: wav\n  list: [x, y]\n  opus: {bitrate: 24000}\n",
      &s);
  EXPECT_TRUE(e.empty()) << e[0];
  EXPECT_EQ(s.rate, 48000);
  EXPECT_DOUBLE_EQ(s.gain, 2.5);
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.mode, "wav");
  EXPECT_EQ(s.list, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(s.nested, 24000);
}

TEST(ConfigTest, UnknownKeyNamesFileLineAndSuggests) {
  auto e = Errors("capture:\n  rate: 16000\n  rat: 3\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "test.yaml:3:3: capture.rat: unknown key (did you mean 'rate'?)");
}

TEST(ConfigTest, WrongTypes) {
  auto e = Errors("capture:\n  rate: fast\n  enabled: maybe\n  list: notalist\n  gain: [1]\n");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0], "test.yaml:2:9: capture.rate: expected a number, got 'fast'");
  EXPECT_EQ(e[1], "test.yaml:5:9: capture.gain: expected a number");
  EXPECT_EQ(e[2], "test.yaml:3:12: capture.enabled: expected true or false, got 'maybe'");
  EXPECT_EQ(e[3], "test.yaml:4:9: capture.list: expected a list of strings");
}

TEST(ConfigTest, OutOfRangeAndNotInteger) {
  auto e = Errors("capture:\n  rate: 96000\n  opus:\n    bitrate: 16000.5\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], "test.yaml:2:9: capture.rate: 96000 is out of range [8000, 48000]");
  EXPECT_EQ(e[1], "test.yaml:4:14: capture.opus.bitrate: expected an integer, got '16000.5'");
}

TEST(ConfigTest, ChoiceRejectsOthers) {
  auto e = Errors("capture:\n  mode: usb\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "test.yaml:2:9: capture.mode: 'usb' is not one of alsa|wav|silence");
}

TEST(ConfigTest, SectionMustBeAMapping) {
  auto e = Errors("capture: 5\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("capture: must be a mapping"), std::string::npos);
}

TEST(ConfigTest, YamlSyntaxErrorHasLine) {
  File f;
  Status st = f.LoadString("capture:\n  rate: [1, 2\n", "bad.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kConfig);
  EXPECT_EQ(st.message().rfind("bad.yaml:", 0), 0u) << st.message();
}

TEST(ConfigTest, ExpandsEnvironmentAndReportsUnset) {
  setenv("VB_TEST_DIR", "/tmp/x", 1);
  unsetenv("VB_TEST_UNSET");
  Sample s;
  EXPECT_TRUE(Errors("capture:\n  path: ${VB_TEST_DIR}/a.wav\n", &s).empty());
  EXPECT_EQ(s.path, "/tmp/x/a.wav");
  auto e = Errors("capture:\n  path: ${VB_TEST_UNSET}/a.wav\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "test.yaml:2:9: capture.path: environment variable VB_TEST_UNSET is not set");
}

// Issue 17: config/demo.yaml's `port: ${VB_GATEWAY_PORT:-5500}`.
TEST(ConfigTest, Issue17_DefaultsForUnsetVariablesAndNumbersFromTheEnvironment) {
  unsetenv("VB_TEST_UNSET");
  setenv("VB_TEST_EMPTY", "", 1);
  setenv("VB_TEST_RATE", "22050", 1);
  Sample s;
  EXPECT_TRUE(Errors("capture:\n  path: ${VB_TEST_UNSET:-/run}/a.wav\n  rate: ${VB_TEST_UNSET:-44100}\n", &s).empty());
  EXPECT_EQ(s.path, "/run/a.wav");
  EXPECT_EQ(s.rate, 44100);
  EXPECT_TRUE(Errors("capture:\n  path: ${VB_TEST_EMPTY:-x}\n  rate: ${VB_TEST_RATE:-44100}\n", &s).empty());
  EXPECT_EQ(s.path, "x");  // empty counts as unset, as in sh
  EXPECT_EQ(s.rate, 22050);
  // A number from the environment is still checked: type and range, with its place.
  setenv("VB_TEST_RATE", "fast", 1);
  auto e = Errors("capture:\n  rate: ${VB_TEST_RATE}\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "test.yaml:2:9: capture.rate: expected a number, got 'fast'");
  e = Errors("capture:\n  rate: ${VB_TEST_UNSET:-100}\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("capture.rate: 100 is out of range"), std::string::npos) << e[0];
  e = Errors("capture:\n  rate: ${VB_TEST_UNSET}\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "test.yaml:2:9: capture.rate: environment variable VB_TEST_UNSET is not set");
}

TEST(ConfigTest, DescribedDefaultIsValidAndDocumented) {
  auto report = DescribeReport();
  Section s(report, "capture", YAML::Node());
  Sample sample;
  sample.Declare(s);
  EXPECT_NE(report->described.find("# sample rate [8000, 48000]"), std::string::npos) << report->described;
  EXPECT_NE(report->described.find("  rate: 16000"), std::string::npos);
  // The printed default loads back without errors.
  Sample back;
  auto e = Errors(report->described, &back);
  EXPECT_TRUE(e.empty()) << e[0] << "\n" << report->described;
  EXPECT_EQ(back.rate, 16000);
  EXPECT_EQ(back.nested, 16000);
}

TEST(ConfigTest, BusEndpointValidated) {
  File f;
  ASSERT_TRUE(f.LoadString("bus:\n  endpoint: udp://x\n", "b.yaml").ok());
  auto report = f.NewReport();
  auto s = f.Get("bus", report);
  bus::BusConfig b;
  b.Declare(s);
  s.Finish();
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_NE(report->errors[0].find("b.yaml:2:13: bus.endpoint: bus.endpoint: 'udp://x' must start with"),
            std::string::npos)
      << report->errors[0];
}

TEST(EndpointsTest, DerivesFourSocketsPerScheme) {
  bus::Endpoints e;
  ASSERT_TRUE(bus::DeriveEndpoints("tcp://10.0.0.2:5560", &e).ok());
  EXPECT_EQ(e[0].in, "tcp://10.0.0.2:5560");
  EXPECT_EQ(e[0].out, "tcp://10.0.0.2:5561");
  EXPECT_EQ(e[1].in, "tcp://10.0.0.2:5562");
  EXPECT_EQ(e[1].out, "tcp://10.0.0.2:5563");
  ASSERT_TRUE(bus::DeriveEndpoints("ipc:///run/vb/bus", &e).ok());
  EXPECT_EQ(e[1].out, "ipc:///run/vb/bus.control.out");
  EXPECT_FALSE(bus::DeriveEndpoints("tcp://host", &e).ok());
  EXPECT_FALSE(bus::DeriveEndpoints("ipc://", &e).ok());
}

// Issue 12: yaml-cpp keeps duplicate pairs and lookups see one of them, so a
// repeated key or section silently lost a value.
TEST(ConfigTest, DuplicateKeyIsAnErrorWithBothLines) {
  File f;
  Status st = f.LoadString("capture:\n  rate: 16000\n  gain: 2\n  rate: 48000\n", "dup.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kConfig);
  EXPECT_NE(st.message().find("dup.yaml:4:3: capture.rate: duplicate key (first at line 2)"), std::string::npos)
      << st.message();
}

TEST(ConfigTest, DuplicateSectionAndNestedKeysAreErrors) {
  File f;
  Status st = f.LoadString(
      "capture:\n  opus: {bitrate: 1, bitrate: 2}\nplayback: {}\ncapture:\n  rate: 8000\n"
      "list:\n  - {a: 1, a: 2}\n",
      "dup.yaml");
  ASSERT_FALSE(st.ok());
  const std::string& m = st.message();
  EXPECT_NE(m.find("dup.yaml:2:22: capture.opus.bitrate: duplicate key (first at line 2)"), std::string::npos) << m;
  EXPECT_NE(m.find("dup.yaml:4:1: capture: duplicate section (first at line 1)"), std::string::npos) << m;
  EXPECT_NE(m.find("list[0].a: duplicate key"), std::string::npos) << m;
}

TEST(ConfigTest, SameKeyInDifferentSectionsIsFine) {
  File f;
  EXPECT_TRUE(f.LoadString("capture: {rate: 1}\nplayback: {rate: 2}\n", "ok.yaml").ok());
}

// Actors find some errors only when they run (a file that does not open):
// ErrorAt names the key's file:line like a declaration error.
TEST(ConfigTest, ErrorAtLocatesKeyAndListItem) {
  File f;
  ASSERT_TRUE(f.LoadString("capture:\n  wav:\n    path: /nowhere.wav\n  list: [a, b, c]\n", "t.yaml").ok());
  auto report = f.NewReport();
  auto s = f.Get("capture", report);
  auto w = s.Sub("wav", "");
  Status st = w.ErrorAt("path", "cannot open /nowhere.wav");
  EXPECT_EQ(st.code(), Status::Code::kConfig);
  EXPECT_EQ(st.message(), "t.yaml:3:11: capture.wav.path: cannot open /nowhere.wav");
  EXPECT_TRUE(report->errors.empty());  // returned, not reported
  s.Error("list", "bad item", 2);
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_EQ(report->errors[0], "t.yaml:4:16: capture.list[2]: bad item");
}

// An actor keeps a Section from DeclareConfig for ErrorAt; assigning one
// must rebind, never write into the document (YAML::Node's operator= does).
TEST(ConfigTest, AssigningASectionRebindsWithoutEditingTheDocument) {
  File f;
  ASSERT_TRUE(f.LoadString("capture:\n  wav: {path: a.wav}\nplayback:\n  wav: {path: b.wav}\n", "t.yaml").ok());
  auto report = f.NewReport();
  auto cap = f.Get("capture", report).Sub("wav", "");
  auto play = f.Get("playback", report).Sub("wav", "");
  cap = play;
  EXPECT_EQ(cap.ErrorAt("path", "x").message(), "t.yaml:4:15: playback.wav.path: x");
  std::string path;
  auto again = f.Get("capture", report).Sub("wav", "");
  again.Key("path", &path, "", "");
  EXPECT_EQ(path, "a.wav");
}

}  // namespace
}  // namespace vb::config
