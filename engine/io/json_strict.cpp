// Strict JSON parsing: no NUL bytes, no duplicate keys (reported with their JSON path).
#include "engine/io/json_strict.h"

#include <set>
#include <vector>

#include "kernels/check.h"

namespace stgs {

namespace {

using json = nlohmann::json;

// One open object or array while parsing: the keys seen and the current key (object), or the index of the
// element being parsed (array).
struct OpenContainer {
  bool is_array = false;
  std::set<std::string> keys;
  std::string key;
  size_t index = 0;
};

// "cells[0].steps[1]": the path from the root to the innermost open container (`open` minus its last entry
// gives the steps).
std::string path_to_innermost(const std::vector<OpenContainer>& open) {
  std::string path;
  for (size_t i = 0; i + 1 < open.size(); ++i) {
    if (open[i].is_array) {
      path.append(1, '[').append(std::to_string(open[i].index)).append(1, ']');
    } else {
      if (!path.empty()) path += ".";
      path += open[i].key;
    }
  }
  return path;
}

}  // namespace

json parse_json_strict(const std::string& text, const std::string& where, const std::string& what) {
  const size_t nul = text.find('\0');
  STGS_CHECK(nul == std::string::npos, where, what, " is not valid JSON: NUL byte at byte ", nul);
  std::vector<OpenContainer> open;
  std::string duplicate, duplicate_at;
  // An element of the innermost array is complete: the next one gets the next index.
  auto element_done = [&] {
    if (!open.empty() && open.back().is_array) ++open.back().index;
  };
  auto watch = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        open.push_back({event == json::parse_event_t::array_start, {}, {}, 0});
        break;
      case json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        if (!open.back().keys.insert(key).second && duplicate.empty()) {
          duplicate = key;
          duplicate_at = path_to_innermost(open);
        }
        open.back().key = key;
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        open.pop_back();
        element_done();
        break;
      case json::parse_event_t::value:
        element_done();
        break;
    }
    return true;
  };
  json value;
  try {
    value = json::parse(text, watch);
  } catch (const json::parse_error& e) {
    STGS_FAIL(where, what, " is not valid JSON: ", e.what());
  }
  STGS_CHECK(duplicate.empty(), where, what, " has a duplicate key \"", duplicate, "\"",
             duplicate_at.empty() ? "" : " at " + duplicate_at, " (the format forbids them)");
  return value;
}

}  // namespace stgs
