// Helpers shared by the protocol tests: the embedded models and a request built from a
// method, a target and headers.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "aws/model/model.h"
#include "http/types.h"

namespace nimbus::aws::protocol::test_support {

inline const model::ModelRegistry& Models() { return model::ModelRegistry::Embedded(); }

inline http::Request Req(std::string method, std::string target,
                         std::initializer_list<std::pair<std::string, std::string>> headers = {}) {
  http::Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.SplitTarget();
  for (const auto& [k, v] : headers) r.headers.Add(k, v);
  return r;
}

}  // namespace nimbus::aws::protocol::test_support
