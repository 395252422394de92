#include "core/ids.h"

#include <cstdint>
#include <cstring>
#include <random>

#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus {

namespace {

std::string FormatUuid(std::string b) {
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string h = HexEncode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

}  // namespace

std::string NewUuid() { return FormatUuid(RandomBytes(16)); }

std::string NewRequestId() {
  thread_local std::mt19937_64 generator = [] {
    std::string seed = RandomBytes(16);
    std::seed_seq sequence(seed.begin(), seed.end());
    return std::mt19937_64(sequence);
  }();
  std::string b(16, '\0');
  for (int i = 0; i < 2; ++i) {
    const uint64_t word = generator();
    std::memcpy(b.data() + 8 * i, &word, 8);
  }
  return FormatUuid(std::move(b));
}

std::string RandomString(size_t n, std::string_view alphabet) {
  std::string bytes = RandomBytes(n);
  std::string out;
  out.reserve(n);
  for (unsigned char c : bytes) out.push_back(alphabet[c % alphabet.size()]);
  return out;
}

}  // namespace nimbus
