// Routing internals of Resolve(), exposed for the protocol engine's other parts and for
// tests: request-URI templates of the rest protocols, S3 virtual-hosted bucket names,
// and form-encoded parameters of the query protocol.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/types.h"

namespace nimbus::aws::protocol {

using Params = std::vector<std::pair<std::string, std::string>>;

// How well a request matched a template; higher wins. Compared lexicographically.
struct RouteScore {
  int query_literals = 0;  // literal query keys the template requires ("?uploads")
  int literal_chars = 0;   // literal characters of the path template
  int required_bound = 0;  // required header/querystring members present minus absent
  int non_greedy = 0;      // 1 when the template has no greedy label

  bool operator<(const RouteScore& o) const;
};

// Matches a percent-encoded path and its query parameters against a model requestUri
// ("/{Bucket}/{Key+}?uploads"). On a match fills labels (percent-decoded) and returns
// the query_literals/literal_chars/non_greedy parts of the score.
std::optional<RouteScore> MatchRequestUri(std::string_view request_uri, std::string_view path,
                                          const Params& query,
                                          std::map<std::string, std::string>* labels);

// The bucket named by an S3 virtual-hosted-style Host ("b.localhost:4566",
// "b.s3.us-east-1.amazonaws.com"); "" for path-style hosts.
std::string VirtualHostBucket(std::string_view host);

// application/x-www-form-urlencoded text -> parameters ('+' is a space).
Params ParseFormParams(std::string_view body);

// POST with a form-encoded body (the query protocol's usual request).
bool IsFormRequest(const http::Request& request);

}  // namespace nimbus::aws::protocol
