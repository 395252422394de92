#include "control/pagination.h"

#include "core/crypto.h"
#include "core/json.h"
#include "core/strings.h"

namespace nimbus::control {
namespace {

constexpr char kFormatV1 = 0x01;
constexpr size_t kMacBytes = 32;

// Compares in time independent of where the inputs differ, so that a MAC cannot be
// guessed byte by byte from response times.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out = Base64Encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return std::nullopt;
  }
  std::optional<std::string> bytes = Base64Decode(text);
  // The core decoder drops leftover bits; re-encoding catches both a length that no byte
  // string has and non-zero leftover bits.
  if (!bytes || Base64UrlEncode(*bytes) != text) return std::nullopt;
  return bytes;
}

std::string PageTokenCodec::Mac(std::string_view query_fingerprint,
                                std::string_view payload) const {
  std::string data(1, kFormatV1);
  data += Sha256(query_fingerprint);
  data += payload;
  return HmacSha256(key_, data);
}

std::string PageTokenCodec::Encode(std::string_view query_fingerprint,
                                   const Value& position) const {
  const std::string payload = ToJson(position);
  std::string raw(1, kFormatV1);
  raw += payload;
  raw += Mac(query_fingerprint, payload);
  return Base64UrlEncode(raw);
}

std::optional<Value> PageTokenCodec::Decode(std::string_view query_fingerprint,
                                            std::string_view token) const {
  std::optional<std::string> raw = Base64UrlDecode(token);
  if (!raw || raw->size() < 1 + kMacBytes || (*raw)[0] != kFormatV1) return std::nullopt;
  const std::string_view payload = std::string_view(*raw).substr(1, raw->size() - 1 - kMacBytes);
  const std::string_view mac = std::string_view(*raw).substr(raw->size() - kMacBytes);
  if (!ConstantTimeEquals(mac, Mac(query_fingerprint, payload))) return std::nullopt;
  Result<Value> position = ParseJson(payload);
  if (!position.ok()) return std::nullopt;
  return std::move(position).value();
}

}  // namespace nimbus::control
