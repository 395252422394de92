// The IAM service (query protocol, API version 2010-05-08): thin handlers that map the
// model's input Values onto iam::IamStore and its results onto the output shapes.
// Policy documents go out URL-encoded, as IAM returns them; list operations page with
// Marker/MaxItems/IsTruncated. Every operation that acts on a user, role or policy
// registers a ResourceResolver that names that entity's ARN for authorization.
//
// Thread-safety: the handlers hold no state of their own; IamStore is thread-safe.
#pragma once

#include "aws/service.h"
#include "iam/iam_store.h"

namespace nimbus::services {

// Registers the IAM operations under service "iam". store must outlive registry.
void RegisterIamService(aws::ServiceRegistry& registry, iam::IamStore& store);

}  // namespace nimbus::services
