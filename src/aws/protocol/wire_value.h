// Shape-directed conversion between the generic tree a JSON or CBOR document decodes to
// (wire names, base64 strings, numbers for timestamps) and the typed Value handlers see
// (model member names, Blobs, Timestamps), for the awsJson, rest-json and RPC v2 CBOR
// protocols. Unknown members are dropped; a value of the wrong type is a kSerialization
// error that names the member path.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "aws/model/model.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::aws::protocol {

enum class WireFormat { kJson, kCbor };

struct WireOptions {
  WireFormat format = WireFormat::kJson;
  // rest-json: at the top level only members without an HTTP location are in the body.
  bool body_members_only = false;
};

// Wire tree -> typed Value for shape.
Result<Value> ReadWireValue(const model::Shape& shape, const Value& wire,
                            const WireOptions& options);

// Typed Value -> wire tree for shape (timestamps per the member's or shape's
// timestampFormat, epoch seconds by default).
Value WriteWireValue(const model::Shape& shape, const Value& value, const WireOptions& options);

// Checks that JSON text nests no deeper than max_depth, so that parsing it cannot
// exhaust the stack. Strings are skipped correctly; validity is not otherwise checked.
bool JsonDepthWithin(std::string_view text, int max_depth);

}  // namespace nimbus::aws::protocol
