// The one table that turns an error Status into the AWS error code and HTTP status of a
// protocol family (after MinIO's api-errors table): a Status with an explicit code keeps
// it; otherwise its ErrorKind picks the code each family uses ("ValidationException" for
// JSON services, "ValidationError" for query ones, "InvalidArgument" for S3).
// Thread-safety: constant data.
#pragma once

#include <string>

#include "aws/protocol/protocol.h"
#include "core/status.h"

namespace nimbus::aws::protocol {

// json and rpc-v2-cbor share the JSON family's codes, rest-json too.
enum class ErrorFamily { kJson, kQuery, kRestXml };

ErrorFamily FamilyOf(Protocol protocol);

struct WireError {
  std::string code;
  int http_status = 500;
};

// REQUIRES: !status.ok()
WireError MapError(const Status& status, ErrorFamily family);

}  // namespace nimbus::aws::protocol
