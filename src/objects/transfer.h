// Moving objects between the object store and a local directory: what SageMaker does before
// and after a job (input channels downloaded into the job directory, outputs and model
// artifacts uploaded back), for every internal user — training, processing, transform —
// with no HTTP in between.
//
// Keys map to paths relative to the prefix's "folder" (the prefix up to and including its
// last '/', or the whole prefix when the key continues it with a '/'), as SageMaker lays
// out channel data: s3://b/data/train/ and s3://b/data/train with key data/train/x.csv
// both become <dir>/x.csv, and s3://b/data/train.csv becomes <dir>/train.csv.
// A key that cannot be a safe relative path (an empty, "." or ".." component, a NUL) is an
// error naming the key: no key ever writes outside <dir>.
//
// Thread-safety: free functions; safe to call concurrently on different directories.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "objects/object_store.h"

namespace nimbus::objects {

struct S3Location {
  std::string bucket;
  std::string key;  // a key or a key prefix; may be empty
  std::string ToUri() const { return "s3://" + bucket + "/" + key; }
};

// Parses "s3://bucket/key-or-prefix" (also "https://bucket.s3.amazonaws.com/..."-free: only
// the s3 scheme). kValidation naming the URI when it is not one.
Result<S3Location> ParseS3Uri(std::string_view uri);

struct TransferStats {
  int64_t files = 0;
  int64_t bytes = 0;
};

// Downloads every object under location.key into dir. NoSuchBucket when the bucket is
// missing; kValidation ("No S3 objects found under S3 URL ...") when nothing matches.
Result<TransferStats> DownloadPrefix(ObjectStore& store, const S3Location& location,
                                     const std::string& dir);

// Downloads the files a SageMaker manifest lists: a JSON array whose first element is
// {"prefix": "s3://bucket/prefix/"} and whose others are keys relative to that prefix;
// each lands at <dir>/<relative key>.
Result<TransferStats> DownloadManifest(ObjectStore& store, const S3Location& manifest,
                                       const std::string& dir);

// Downloads one object to path (parent directories are created).
Result<TransferStats> DownloadObject(ObjectStore& store, const std::string& bucket,
                                     const std::string& key, const std::string& path);

// Uploads every regular file under dir to location.key + "/" + relative path (no extra '/'
// when the prefix is empty or already ends with one).
Result<TransferStats> UploadDirectory(ObjectStore& store, const std::string& dir,
                                      const S3Location& location);

// Uploads one file as bucket/key.
Result<TransferStats> UploadFile(ObjectStore& store, const std::string& path,
                                 const std::string& bucket, const std::string& key);

}  // namespace nimbus::objects
