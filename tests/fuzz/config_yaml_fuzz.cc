// Fuzzes the config loader (bus/config.h): any YAML text a user may write.
// The document is loaded (syntax and duplicate-key checks), then read the way
// actors read it: the `bus` section through BusConfig::Declare (shared by
// every process) and an `actor` section through every kind of key — number
// ranges, booleans, choices, lists, maps, nested sections, unknown keys.
// Every problem must come back as a config error, never as a crash or an
// escaped exception.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bus/bus_config.h"
#include "bus/config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vb::config::Range;
  vb::config::File file;
  if (!file.LoadString(std::string(vb::fuzz::AsView(data, size)), "fuzz.yaml").ok()) return 0;
  auto report = file.NewReport();
  file.CheckTopLevel({"bus", "actor", "devices"}, report.get());

  vb::bus::BusConfig bus;
  vb::config::Section b = file.Get("bus", report);
  bus.Declare(b);
  b.Finish();

  vb::config::Section s = file.Get("actor", report);
  int i = 0;
  int64_t big = 0;
  unsigned u = 0;
  double d = 0;
  bool flag = false;
  std::string text, choice;
  std::vector<std::string> list;
  std::vector<std::pair<std::string, std::string>> map;
  s.Key("int", &i, 1, {0, 100}, "an int");
  s.Key("big", &big, int64_t(0), Range{}, "an int64");
  s.Key("unsigned", &u, 1u, {1, 4e9}, "unsigned");
  s.Key("double", &d, 0.5, {-1, 1}, "a double");
  s.Key("flag", &flag, false, "a bool");
  s.Key("text", &text, std::string("x"), "a string");
  s.Choice("choice", &choice, "a", {"a", "b"}, "a choice");
  s.Key("list", &list, {}, "a list");
  s.Key("map", &map, "a map");
  vb::config::Section sub = s.Sub("sub", "nested");
  sub.Key("int", &i, 2, {0, 10}, "nested int");
  sub.Finish();
  if (!text.empty()) (void)s.ErrorAt("text", "checked by the part");
  s.Finish();
  (void)vb::config::ToStatus(*report);
  return 0;
}
