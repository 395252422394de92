#include "core/ids.h"

#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus {

std::string NewUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string h = HexEncode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

std::string RandomString(size_t n, std::string_view alphabet) {
  std::string bytes = RandomBytes(n);
  std::string out;
  out.reserve(n);
  for (unsigned char c : bytes) out.push_back(alphabet[c % alphabet.size()]);
  return out;
}

}  // namespace nimbus
