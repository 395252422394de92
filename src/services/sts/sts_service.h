// The STS service (query protocol, API version 2011-06-15): GetCallerIdentity,
// AssumeRole, GetSessionToken and GetAccessKeyInfo over iam::IamStore. Temporary
// credentials are persisted by the store, so they survive restarts until they expire.
//
// Thread-safety: the handlers hold no state of their own; IamStore is thread-safe.
#pragma once

#include "aws/service.h"
#include "iam/iam_store.h"

namespace nimbus::services {

// Registers the STS operations under service "sts". store must outlive registry.
void RegisterStsService(aws::ServiceRegistry& registry, iam::IamStore& store);

}  // namespace nimbus::services
