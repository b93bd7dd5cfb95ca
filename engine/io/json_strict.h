// Parsing JSON text for file formats that must not accept what nlohmann::json silently tolerates.
// defines: parse_json_strict
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace stgs {

// Parses `text` and throws stgs::Error, prefixed by `where` and naming the text as `what` ("header"), when it
// is not JSON, contains a raw NUL byte (nlohmann::json stops reading there as if the text ended, which would
// accept anything after it), or repeats a key within one object (nlohmann::json would keep only the last
// value). A duplicate is reported with its JSON path, e.g. `duplicate key "op" at cells[0].steps[1]`.
nlohmann::json parse_json_strict(const std::string& text, const std::string& where, const std::string& what);

}  // namespace stgs
