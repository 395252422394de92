// Identifiers: request ids, UUIDs, and the random uppercase/alnum strings AWS uses for
// access keys and unique ids.
#pragma once

#include <string>
#include <string_view>

namespace nimbus {

// A random RFC 4122 version-4 UUID, lowercase, from the cryptographic generator.
std::string NewUuid();
// The same form from a fast per-thread generator (seeded from the cryptographic one): for
// ids that must be unique but need not be unpredictable, such as request ids.
std::string NewRequestId();
// n random characters from alphabet.
std::string RandomString(size_t n, std::string_view alphabet);
inline constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
inline constexpr std::string_view kAlnum =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

}  // namespace nimbus
