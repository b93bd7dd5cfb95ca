// The project's version, printed by `stgs version` and written into result files.
#pragma once

namespace stgs {
inline constexpr const char* kVersion = "0.1.0";
}
