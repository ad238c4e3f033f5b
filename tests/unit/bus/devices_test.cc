// Devices declared once (issue 16 item 1): YAML merge keys, per-device actor
// sections expanded from `devices:` with each device's settings laid over
// the shared section, errors located in the file, satellite endpoints.
#include <gtest/gtest.h>

#include "bus/bus_config.h"
#include "bus/config.h"
#include "bus/devices.h"
#include "tests/support/process.h"

namespace vb::bus {
namespace {

// A stand-in actor section: what capture would declare.
struct Capture {
  std::string device, source, alsa_device, wav_path;
  int rate = 0;
  void Declare(config::Section& s) {
    s.Key("device", &device, std::string(""), "");
    s.Key("source", &source, std::string("alsa"), "");
    s.Key("rate", &rate, 16000, {8000, 48000}, "");
    auto a = s.Sub("alsa", "");
    a.Key("device", &alsa_device, std::string("default"), "");
    a.Finish();
    auto w = s.Sub("wav", "");
    w.Key("path", &wav_path, std::string(""), "");
    w.Finish();
    s.Finish();
  }
};

struct Loaded {
  config::File file;
  std::shared_ptr<config::Report> report;
  DevicesConfig devices;
};

Status Load(const std::string& yaml, Loaded* l) {
  if (Status st = l->file.LoadString(yaml, "test.yaml"); !st.ok()) return st;
  l->report = l->file.NewReport();
  auto d = l->file.Get("devices", l->report);
  l->devices.Declare(d);
  return config::ToStatus(*l->report);
}

Capture Read(Loaded& l, const std::string& name) {
  auto s = l.file.Get(name, l.report);
  Capture c;
  c.Declare(s);
  return c;
}

TEST(DevicesTest, PerDeviceSectionsLayTheDeviceSettingsOverTheSharedOne) {
  // The anchor is defined after its alias in kTwoRooms: YAML needs it first.
  std::string yaml = std::string(R"(
x-defaults:
  office: &office_defaults
    room: Office
    satellite: true
    client_key_file: /etc/vb/office.key
)") + R"(
devices:
  actors: [capture, playback]
  list:
    kitchen:
      room: Kitchen
      satellite: true
      capture: {alsa: {device: "hw:1"}}
    office:
      <<: *office_defaults
      capture: {rate: 48000}
capture:
  source: alsa
  rate: 16000
  alsa: {device: "default"}
  wav: {path: /tmp/x.wav}
)";
  Loaded l;
  Status st = Load(yaml, &l);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(l.devices.names, (std::vector<std::string>{"kitchen", "office"}));
  ASSERT_NE(l.devices.Find("office"), nullptr);
  EXPECT_EQ(l.devices.Find("office")->room, "Office");  // from the merge key
  EXPECT_TRUE(l.devices.Find("office")->satellite);
  EXPECT_EQ(l.devices.Find("office")->client_key_file, "/etc/vb/office.key");
  EXPECT_EQ(l.devices.Find("kitchen")->room, "Kitchen");

  Capture k = Read(l, "capture@kitchen");
  Capture o = Read(l, "capture@office");
  EXPECT_TRUE(l.report->errors.empty()) << l.report->errors[0];
  EXPECT_EQ(k.device, "kitchen");
  EXPECT_EQ(k.alsa_device, "hw:1");
  EXPECT_EQ(k.rate, 16000);
  EXPECT_EQ(k.wav_path, "/tmp/x.wav");  // the shared section's, untouched by the overlay
  EXPECT_EQ(o.device, "office");
  EXPECT_EQ(o.alsa_device, "default");
  EXPECT_EQ(o.rate, 48000);
  // The shared section itself is not changed by the overlays.
  Capture shared = Read(l, "capture");
  EXPECT_EQ(shared.alsa_device, "default");
  EXPECT_EQ(shared.rate, 16000);
  EXPECT_EQ(shared.device, "");
  // A kind without a section of its own still gets one per device.
  config::Section pb = l.file.Get("playback@office", l.report);
  EXPECT_TRUE(pb.present());
}

TEST(DevicesTest, AnErrorInADevicesOverlayNamesItsOwnLine) {
  Loaded l;
  ASSERT_TRUE(Load("devices:\n  actors: [capture]\n  list:\n    kitchen:\n      capture:\n        rate: 99\n"
                   "capture: {rate: 16000}\n",
                   &l)
                  .ok());
  Read(l, "capture@kitchen");
  ASSERT_EQ(l.report->errors.size(), 1u);
  EXPECT_NE(l.report->errors[0].find("test.yaml:6:"), std::string::npos) << l.report->errors[0];
  EXPECT_NE(l.report->errors[0].find("capture@kitchen.rate"), std::string::npos) << l.report->errors[0];
}

TEST(DevicesTest, UnknownDeviceKeysAndBadNamesAreErrors) {
  Loaded a;
  Status st = Load("devices:\n  actors: [capture]\n  list:\n    kitchen: {rom: Kitchen}\n", &a);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("test.yaml:4:15: devices.list.kitchen.rom: unknown key (did you mean 'room'?)"),
            std::string::npos)
      << st.message();
  Loaded b;
  st = Load("devices:\n  list:\n    \"kit chen\": {}\n", &b);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not a valid device name"), std::string::npos) << st.message();
  Loaded c;
  st = Load("devices:\n  names: [a]\n  list: {b: {}}\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("disagrees"), std::string::npos) << st.message();
  // An overlay for a kind the devices do not run is an unknown key too.
  Loaded d;
  st = Load("devices:\n  actors: [capture]\n  list:\n    k: {afe: {}}\n", &d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("devices.list.k.afe: unknown key"), std::string::npos) << st.message();
}

TEST(DevicesTest, TheOldNamesFormStillWorks) {
  Loaded l;
  ASSERT_TRUE(Load("devices:\n  names: [local, den]\n", &l).ok());
  EXPECT_EQ(l.devices.names, (std::vector<std::string>{"local", "den"}));
  ASSERT_EQ(l.devices.list.size(), 2u);
  EXPECT_FALSE(l.devices.AnySatellite());
  EXPECT_FALSE(l.file.Get("capture@den", l.report).present());
}

TEST(DevicesTest, MergeKeysWorkAnywhereAndExplicitKeysWin) {
  config::File f;
  Status st = f.LoadString(
      "base: &b {rate: 8000, source: wav, alsa: {device: hw:2}}\n"
      "more: &m {rate: 44100, wav: {path: /m.wav}}\n"
      "capture:\n  <<: [*b, *m]\n  rate: 48000\n",
      "test.yaml");
  ASSERT_TRUE(st.ok()) << st.message();
  auto report = f.NewReport();
  auto s = f.Get("capture", report);
  Capture c;
  c.Declare(s);
  EXPECT_TRUE(report->errors.empty()) << report->errors[0];
  EXPECT_EQ(c.rate, 48000);    // explicit key wins
  EXPECT_EQ(c.source, "wav");  // from the first source
  EXPECT_EQ(c.alsa_device, "hw:2");
  EXPECT_EQ(c.wav_path, "/m.wav");  // from the second
  config::File bad;
  st = bad.LoadString("capture:\n  <<: 5\n", "test.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("test.yaml:2:7: `<<` merges a mapping"), std::string::npos) << st.message();
}

TEST(DevicesTest, SatelliteEndpoints) {
  EXPECT_EQ(SatelliteEndpoint("", "ipc:///run/vb/bus", "kitchen"), "ipc:///run/vb/voicebus-sat-kitchen");
  EXPECT_EQ(SatelliteEndpoint("ipc:///x/sat-{device}", "tcp://hub:5560", "office"), "ipc:///x/sat-office");
  EXPECT_EQ(SatelliteEndpoint("", "tcp://hub:5560", "office").rfind("ipc://", 0), 0u);
  std::string kind, device;
  EXPECT_TRUE(SplitDeviceInstance("capture@kitchen", &kind, &device));
  EXPECT_EQ(kind, "capture");
  EXPECT_EQ(device, "kitchen");
  EXPECT_FALSE(SplitDeviceInstance("capture", &kind, &device));
}

}  // namespace
}  // namespace vb::bus

// The one bus-section loader every program uses (vb-broker, actors, vb run,
// vb status/say, vb-sniff): defaults without a file, values and errors with
// their file, line and key.
namespace vb::bus {
namespace {

TEST(BusSections, DefaultsWithoutAFileAndTheFilesValuesWithOne) {
  BusConfig bus;
  DevicesConfig devices;
  ASSERT_TRUE(LoadBusSections("", &bus, &devices).ok());
  EXPECT_EQ(bus.heartbeat_ms, 1000);
  ASSERT_FALSE(devices.names.empty());
  testing::TempDir dir;
  dir.Write("vb.yaml", "bus:\n  heartbeat_ms: 500\ndevices:\n  list:\n    kitchen: {}\n    office: {}\n");
  DevicesConfig from_file;
  Status st = LoadBusSections(dir.File("vb.yaml"), &bus, &from_file);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(bus.heartbeat_ms, 500);
  EXPECT_EQ(from_file.names, (std::vector<std::string>{"kitchen", "office"}));
}

TEST(BusSections, AnUnknownBusKeyIsAConfigErrorWithItsLine) {
  BusConfig bus;
  testing::TempDir dir;
  dir.Write("vb.yaml", "bus:\n  heartbeat_ms: 1000\n  hartbeat: 3\n");
  const std::string path = dir.File("vb.yaml");
  Status st = LoadBusSections(path, &bus, nullptr);
  EXPECT_EQ(st.code(), Status::Code::kConfig);
  EXPECT_NE(st.message().find(path + ":"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("hartbeat"), std::string::npos) << st.message();
  EXPECT_EQ(LoadBusSections("/nonexistent/vb.yaml", &bus, nullptr).code(), Status::Code::kConfig);
}

}  // namespace
}  // namespace vb::bus
