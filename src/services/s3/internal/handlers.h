// Private to services/s3: the handler groups (buckets, objects, multipart uploads) that
// RegisterS3Service registers, and what they share.
#pragma once

#include <string>
#include <string_view>

#include "aws/service.h"
#include "core/result.h"
#include "core/value.h"
#include "objects/object_store.h"
#include "services/s3/s3_request.h"

namespace nimbus::services::s3::internal {

using Handler = Result<Value> (*)(objects::ObjectStore& store, const Value& input,
                                  aws::RequestContext& ctx);

// Registers handler for operation, authorized against ResourceArn(input).
void Add(aws::ServiceRegistry& registry, objects::ObjectStore& store, std::string operation,
         Handler handler);

// arn:aws:s3:::<Bucket>[/<Key>], or "*" when the input names no bucket.
std::string ResourceArn(const Value& input);

// Parses x-amz-copy-source and authorizes the caller to read it (s3:GetObject, or
// s3:GetObjectVersion for a version), as S3 does for CopyObject and UploadPartCopy.
Result<CopySource> AuthorizedCopySource(const Value& input, aws::RequestContext& ctx);

void RegisterBucketHandlers(aws::ServiceRegistry& registry, objects::ObjectStore& store);
void RegisterObjectHandlers(aws::ServiceRegistry& registry, objects::ObjectStore& store);
void RegisterMultipartHandlers(aws::ServiceRegistry& registry, objects::ObjectStore& store);

}  // namespace nimbus::services::s3::internal
