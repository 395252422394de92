// Scalars as text: how every text-based part of a request (query parameters, headers,
// URI labels, XML element text) becomes a typed Value for a shape, and back.
// Shared by all protocols so that "true", "42", "1.5", base64 and the three timestamp
// formats are read and written the same way everywhere.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "aws/model/model.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::aws::protocol {

inline constexpr std::string_view kIso8601 = "iso8601";
inline constexpr std::string_view kRfc822 = "rfc822";
inline constexpr std::string_view kUnixTimestamp = "unixTimestamp";

// Picks the timestamp format: the member's, else the shape's, else fallback.
std::string_view TimestampFormatFor(const model::Member* member, const model::Shape& shape,
                                    std::string_view fallback);

// Parses text as a value of shape's type. Strings stay strings; blobs are base64-decoded;
// timestamps accept any of the three formats (format names the preferred one). A value
// that does not parse is a kSerialization error naming `what` (the member's wire name).
Result<Value> ParseScalarText(const model::Shape& shape, std::string_view text,
                              std::string_view what);

// Writes a scalar value as text: booleans "true"/"false", integers in decimal, doubles
// in the shortest round-trip form, blobs base64, timestamps in timestamp_format.
std::string FormatScalarText(const model::Shape& shape, const Value& value,
                             std::string_view timestamp_format);

std::string FormatTimestamp(double epoch_seconds, std::string_view format);
bool ParseTimestamp(std::string_view text, double* epoch_seconds);

}  // namespace nimbus::aws::protocol
