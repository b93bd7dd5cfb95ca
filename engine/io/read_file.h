// Reading a whole text or binary file with an error that says which file, which kind, and why not.
// defines: read_file
#pragma once

#include <string>

namespace stgs {

// The whole of the regular file `path`. Throws stgs::Error "cannot read <what> '<path>': <reason><hint>",
// the reason being "no such file", "is a directory" or the system's message, so a directory passed where a
// file belongs (or a typo) is named as such rather than surfacing as a stream error.
std::string read_file(const std::string& path, const std::string& what, const std::string& hint = "");

}  // namespace stgs
