// Identifiers: request ids, UUIDs, and the random uppercase/alnum strings AWS uses for
// access keys and unique ids.
#pragma once

#include <string>
#include <string_view>

namespace nimbus {

// A random RFC 4122 version-4 UUID, lowercase.
std::string NewUuid();
// n random characters from alphabet.
std::string RandomString(size_t n, std::string_view alphabet);
inline constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
inline constexpr std::string_view kAlnum =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

}  // namespace nimbus
