// Data capture of real-time endpoints (DataCaptureConfig of an endpoint config): request
// and response records written to S3 as JSON Lines in SageMaker's capture format and path
// layout, sampled at the configured percentage, off the request path.
//
// Record (one line each, members in SageMaker's order):
//   {"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",
//      "data":"1,2,3","encoding":"CSV"},"endpointOutput":{...,"mode":"OUTPUT",...}},
//    "eventMetadata":{"eventId":"<uuid>","inferenceId":"<if given>",
//      "inferenceTime":"2026-11-26T05:01:02Z"},"eventVersion":"0"}
// encoding is CSV or JSON when the media type of the content type (parameters such as
// "; charset=utf-8" ignored, case-insensitive) is one of CaptureContentTypeHeader's
// CsvContentTypes / JsonContentTypes, else BASE64. As on AWS, a DataCaptureConfig without
// CaptureContentTypeHeader captures everything as BASE64 (the SageMaker Python SDK always
// sends ["text/csv"] / ["application/json"], the defaults of CaptureSettings' members).
// Content that is not valid UTF-8 is written as BASE64 whatever its type, so that every
// line stays valid JSON. CaptureOptions select INPUT and/or OUTPUT.
// Path: <DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl
// (UTC hour of the records' inference time; mm-ss-mmm of the file's earliest record).
//
// Capture() only samples and enqueues (a mutex and a vector push); a background thread
// batches records per destination, endpoint, variant and hour into one object per flush
// (every flush_seconds, or sooner when max_buffered_bytes is reached). A record that cannot
// be written (no such bucket, a store error) is dropped with a logged warning, never failing
// the request. If the store falls so far behind that max(4 x max_buffered_bytes, 32 MiB)
// are queued, new records are dropped (with a warning) rather than letting memory grow without
// bound — SageMaker likewise stops capturing under storage pressure. Flush() and Stop() write
// everything captured before they were called.
//
// Thread-safety: Capture may be called from any number of threads; Flush/Stop from any.
// Capture after Stop drops the record (logged once).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "core/value.h"
#include "objects/object_store.h"

namespace nimbus::services {

// An endpoint's capture settings, read from its endpoint config's DataCaptureConfig.
struct CaptureSettings {
  bool enabled = false;
  double sampling_percentage = 0;  // 0..100
  std::string destination;         // s3://bucket/prefix
  bool capture_input = true;
  bool capture_output = true;
  std::vector<std::string> csv_content_types = {"text/csv"};
  std::vector<std::string> json_content_types = {"application/json"};

  // From a DataCaptureConfig member (absent/empty: disabled). ValidationException naming
  // the member when it is malformed (a bad S3 URI, a percentage outside 0..100).
  static Result<CaptureSettings> FromConfig(const Value& data_capture_config);
};

struct CaptureRecord {
  std::string endpoint;
  std::string variant;
  std::string inference_id;  // may be empty
  double time = 0;           // epoch seconds
  std::string input_content_type;
  std::string input;
  std::string output_content_type;
  std::string output;
};

struct DataCaptureOptions {
  double flush_seconds = 1;
  size_t max_buffered_bytes = 8 << 20;
};

class DataCaptureWriter {
 public:
  DataCaptureWriter(objects::ObjectStore& objects, DataCaptureOptions options = {});
  ~DataCaptureWriter();  // flushes and stops

  // Samples the record at settings.sampling_percentage and enqueues it when chosen.
  void Capture(const CaptureSettings& settings, CaptureRecord record);
  // Writes everything captured before the call, then returns (tests; shutdown).
  void Flush();
  // Writes everything captured before the call and ends the background thread.
  // Idempotent; concurrent callers all return once it is done.
  void Stop();

 private:
  struct Pending;  // a sampled record with what its line needs (data_capture.cc)

  void Run();  // the background thread
  void WriteBatch(std::vector<Pending>& batch);
  void ReportFailure(const std::string& bucket, const std::string& key, size_t records,
                     const Status& status);

  objects::ObjectStore& objects_;
  const DataCaptureOptions options_;
  const size_t overload_bytes_;  // queued bytes beyond which Capture drops

  std::mutex mu_;
  std::condition_variable wake_;       // the background thread waits here
  std::condition_variable written_;    // Flush waits here
  std::vector<Pending> queue_;         // GUARDED_BY(mu_)
  size_t queued_bytes_ = 0;            // GUARDED_BY(mu_)
  uint64_t enqueued_ = 0;              // records ever queued; GUARDED_BY(mu_)
  uint64_t handled_ = 0;               // of those, written or dropped; GUARDED_BY(mu_)
  bool flush_requested_ = false;       // GUARDED_BY(mu_)
  bool stopping_ = false;              // GUARDED_BY(mu_)
  bool exited_ = false;                // GUARDED_BY(mu_)
  bool warned_after_stop_ = false;     // GUARDED_BY(mu_)
  uint64_t overload_dropped_ = 0;      // GUARDED_BY(mu_)
  double overload_warned_at_ = -1e18;  // steady seconds; GUARDED_BY(mu_)

  // Write failures per bucket, for rate-limited warnings; background thread only.
  struct FailureLog {
    double warned_at = -1e18;  // steady seconds
    uint64_t suppressed_records = 0;
  };
  std::map<std::string, FailureLog> failures_;

  std::once_flag stop_once_;
  std::thread thread_;  // last: started once every member above exists
};

}  // namespace nimbus::services
