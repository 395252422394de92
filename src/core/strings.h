// Small string utilities shared by every layer: encodings (hex, base64, URI), case
// folding, splitting, and the `*`/`?` wildcard match that IAM and S3 both use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nimbus {

std::string HexEncode(std::string_view bytes);
std::string Base64Encode(std::string_view bytes);
// Returns nullopt on characters outside the base64 alphabet or bad padding.
std::optional<std::string> Base64Decode(std::string_view text);

// RFC 3986 percent-encoding of everything but unreserved characters; with
// keep_slash, '/' is kept as is (the SigV4 rule for S3 object keys in paths).
std::string UriEncode(std::string_view s, bool keep_slash = false);
// Percent-decoding; with plus_as_space, '+' means ' ' (form encoding).
std::string UriDecode(std::string_view s, bool plus_as_space = false);

std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
std::string_view Trim(std::string_view s);
std::vector<std::string> Split(std::string_view s, char sep);
// Parses the whole of s as a base-10 integer.
std::optional<int64_t> ParseInt(std::string_view s);

// Glob match where '*' matches any run of characters and '?' exactly one.
bool WildcardMatch(std::string_view pattern, std::string_view text, bool case_insensitive = false);

}  // namespace nimbus
