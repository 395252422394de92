// Dispatcher: turns one HTTP request into one AWS API call and its response, by the
// steps of ARCHITECTURE.md §2 — find the operation (protocol::Resolve), authenticate
// (SigV4 against the CredentialStore), parse and validate the input, authorize the
// caller for `<iam-prefix>:<Operation>` on the resource the operation names, run the
// handler, and serialize the output or the error in the client's own protocol.
//
// Every response carries a request id; every request is logged once with its outcome.
// Thread-safety: Handle() is called concurrently from the HTTP server's workers; the
// Dispatcher holds only immutable state and thread-safe collaborators.
#pragma once

#include <cstddef>
#include <string>

#include "aws/model/model.h"
#include "aws/service.h"
#include "core/clock.h"
#include "http/types.h"

namespace nimbus::aws {

struct DispatcherOptions {
  std::string default_region = "us-east-1";
  std::string account_id = "000000000000";
  double max_skew_seconds = 900;
  // Bodies of operations that do not stream are read into memory up to this size.
  size_t max_body_bytes = 64 * 1024 * 1024;
};

class Dispatcher {
 public:
  Dispatcher(const model::ModelRegistry& models, const ServiceRegistry& services,
             CredentialStore& credentials, Authorizer& authorizer, const Clock& clock,
             DispatcherOptions options);

  http::Response Handle(http::Request& request);

 private:
  struct Call;
  Status Authenticate(Call& call, http::Request& request, std::string& body, bool body_read);
  Result<Value> Run(Call& call, http::Request& request);

  const model::ModelRegistry& models_;
  const ServiceRegistry& services_;
  CredentialStore& credentials_;
  Authorizer& authorizer_;
  const Clock& clock_;
  DispatcherOptions options_;
};

}  // namespace nimbus::aws
