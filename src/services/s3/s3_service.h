// The S3 service (rest-xml, API version 2006-03-01): thin handlers that map the model's
// input Values onto objects::ObjectStore and its results onto S3's output shapes. Covers
// buckets (create/head/delete/list/location, tagging, versioning, notification
// configuration), objects (put/get/head/delete/batch delete/copy, listings v1 and v2 and
// versions, tagging) and multipart uploads. Request bodies of PutObject and UploadPart are
// streamed into the store and GetObject bodies are streamed out of it, never held in memory.
// Every operation names the ARN it acts on (arn:aws:s3:::bucket or arn:aws:s3:::bucket/key)
// for authorization.
//
// Thread-safety: the handlers hold no state of their own; ObjectStore is thread-safe.
#pragma once

#include "aws/service.h"
#include "objects/object_store.h"

namespace nimbus::services {

// Registers the S3 operations under service "s3". store must outlive registry.
void RegisterS3Service(aws::ServiceRegistry& registry, objects::ObjectStore& store);

}  // namespace nimbus::services
