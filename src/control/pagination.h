// PageTokenCodec: the opaque NextToken of every generic List* operation (keyset
// pagination, ARCHITECTURE.md §3).
//
// A token carries the position after the last item of a page (a small Value: the sort
// key and a unique tiebreaker, never an offset), bound to the query it belongs to by an
// HMAC-SHA256 over (format version, SHA-256 of the query fingerprint, position) under a
// server secret. Decode() refuses a token that was forged, truncated, altered, minted
// under another key, or minted for another query (other filters, sort order, account,
// region or kind), so that a caller can never steer a query with a hand-made position
// or get a page of a query it did not ask for. Tokens are URL-safe base64 without
// padding, so they pass unchanged through query strings and JSON bodies.
//
// Wire format (before base64url): 0x01 | position as JSON | 32-byte MAC.
//
// The key is owned by the caller (ResourceStore persists a random one in the database,
// so that tokens survive a restart and are shared by servers on one database).
//
// Thread-safety: a codec is immutable after construction; use it from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/value.h"

namespace nimbus::control {

class PageTokenCodec {
 public:
  // REQUIRES: key is secret and at least 32 random bytes.
  explicit PageTokenCodec(std::string key) : key_(std::move(key)) {}

  // query_fingerprint: a canonical text of everything that defines the query except the
  // page size (MaxResults may change between pages, as on AWS).
  std::string Encode(std::string_view query_fingerprint, const Value& position) const;
  // The position, or nullopt when the token is not one this codec minted for this query.
  std::optional<Value> Decode(std::string_view query_fingerprint, std::string_view token) const;

 private:
  std::string Mac(std::string_view query_fingerprint, std::string_view payload) const;

  std::string key_;
};

// Base64 with the URL-safe alphabet and no padding; Decode accepts only the canonical
// encoding (so that two different strings never name the same bytes).
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace nimbus::control
