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

}  // namespace nimbus
