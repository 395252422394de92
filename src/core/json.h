// JSON text <-> Value. Blobs render as base64 strings and timestamps as epoch seconds;
// parsing yields only JSON's own kinds (the protocol layer applies shapes afterwards).
// nlohmann::json stays inside json.cc so that its header never spreads.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "core/value.h"

namespace nimbus {

std::string ToJson(const Value& value);
Result<Value> ParseJson(std::string_view text);

// Appends s as a JSON string literal, for writers that build JSON text by hand on a hot
// path. Quotes, backslashes and control characters are escaped. ascii_only writes what
// Python's json.dumps writes (ensure_ascii): every non-ASCII character as \uXXXX (UTF-16
// surrogate pairs beyond the BMP) and a byte that is not valid UTF-8 as U+FFFD; otherwise
// UTF-8 is copied as it is.
void AppendJsonString(std::string& out, std::string_view s, bool ascii_only = false);

}  // namespace nimbus
