// CBOR (RFC 8949) <-> Value, for the Smithy RPC v2 CBOR protocol.
//
// Decoding accepts every major type, definite and indefinite lengths, half/single/double
// floats and tags (tag 1, epoch time, becomes a Timestamp; other tags are dropped and
// their content kept). Byte strings become Blobs, text strings Strings; map keys must be
// text. Hostile input is bounded: nesting deeper than max_depth, lengths larger than the
// bytes left, and trailing bytes are kSerialization errors, never crashes or huge
// allocations.
//
// Encoding writes the preferred (shortest) form of integers and lengths, floats in the
// shortest of half/single/double that keeps the value exactly, and Timestamps as tag 1
// over a double.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "core/value.h"

namespace nimbus::aws::protocol {

struct CborLimits {
  int max_depth = 64;
};

Result<Value> DecodeCbor(std::string_view bytes, const CborLimits& limits = {});
std::string EncodeCbor(const Value& value);

}  // namespace nimbus::aws::protocol
