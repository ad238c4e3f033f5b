// Fuzzes the simulator's REST API (tools/coze-sim/rest_api.h): any request a
// client may send. One input is a sequence of requests on one store, each
// "METHOD PATH[?QUERY]" on one line and its body on the next (so a
// conversation made by one request is used by the next). Every answer has an
// HTTP status and, unless it is an SSE stream, a JSON body.
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/fuzz/fuzz_input.h"
#include "tools/coze-sim/rest_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<vb::cozesim::Agent> agent = vb::cozesim::Agent::BuiltIn();
  vb::cozesim::Store store;
  vb::cozesim::Faults faults;
  vb::cozesim::AccessPolicy access;
  access.tokens = {"fuzz-token"};
  vb::cozesim::RestApi api(&store, agent.get(), &faults, &access);
  auto lines = vb::fuzz::Lines(vb::fuzz::AsView(data, size), 64);
  for (size_t i = 0; i < lines.size(); i += 2) {
    std::string_view head = lines[i];
    vb::cozesim::HttpRequest req;
    size_t sp = head.find(' ');
    req.method = std::string(head.substr(0, sp));
    std::string_view target = sp == std::string_view::npos ? std::string_view() : head.substr(sp + 1);
    size_t q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    if (i + 1 < lines.size()) req.body = std::string(lines[i + 1]);
    req.authorization = "Bearer fuzz-token";
    vb::cozesim::HttpResponse r = api.Handle(req);
    if (r.status < 100 || r.status > 599) std::abort();
    if (r.content_type == "application/json" && nlohmann::json::parse(r.body, nullptr, false).is_discarded())
      std::abort();
  }
  return 0;
}
