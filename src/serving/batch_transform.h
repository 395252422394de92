// Batch transform: what SageMaker does between the input files of a transform job and its
// model (CreateTransformJob), independent of where the files came from. The `transform`
// worker (worker/transform_kind.h) runs it over an in-process InferenceHandler; the service
// (services/sagemaker/transform_jobs.h) only stages files and uploads the results.
//
// For every input file:
//   1. split it into records (SplitType): None = the whole file, Line = one per line (a
//      trailing '\r' is dropped, empty lines are skipped), RecordIO = one per RecordIO frame
//      (ml/recordio_protobuf.h; the frame, header included, is the record);
//   2. when data processing applies (an InputFilter, JoinSource Input or an OutputFilter),
//      each record of CSV or JSON Lines data is processed line by line ("units"); a JSON
//      document read whole (application/json, SplitType None) is one unit. CSV rows are
//      arrays of fields, JSON documents are objects or arrays;
//   3. apply InputFilter (JsonPath below) to each unit;
//   4. batch records into requests: SingleRecord = one per request, MultiRecord = as many as
//      fit in MaxPayloadInMB (0 = no limit); a record larger than the limit fails the job
//      ("Too much data for max payload size"), as SageMaker does;
//   5. send up to MaxConcurrentTransforms requests at once; a failed call (the handler could
//      not answer) or a 5xx answer is retried InvocationsMaxRetries times; an error answer
//      fails the job with SageMaker's "ClientError|AlgorithmError: See job logs for more
//      information", the model's message and the failing records' place in the log;
//   6. when JoinSource is Input or an OutputFilter is set, split each response into one
//      output per unit (lines, or the elements of a JSON array, or of the one array member
//      of a JSON object such as {"predictions": [...]}): a count that differs from the
//      request's fails the job ("mismatched line count between the input and the output");
//      then join each with its input unit (CSV: the output's columns appended to the input
//      row; JSON: the output under "SageMakerOutput" of the input object, or
//      {"SageMakerInput": …, "SageMakerOutput": …} when the input is not an object) and
//      apply OutputFilter;
//   7. assemble <file>.out: AssembleWith Line = every output followed by a newline (one is
//      not added twice), None = the outputs concatenated.
// JSON rewritten by a filter or a join is re-serialized: its object keys come out sorted.
//
// Thread-safety: JsonPath and the free functions are thread-safe. A BatchTransformer
// sends concurrent requests itself; call TransformFile from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/value.h"
#include "serving/inference.h"

namespace nimbus::serving {

// The subset of JSONPath that SageMaker's DataProcessing documents: "$" (the whole record),
// ".name", "['a','b']" (several names: an object of those members), "[2]", "[-1]",
// "[0,2]", "[1:]", "[:3]", "[0,5:]" (indexes and slices, end exclusive, negative from the
// end), "*" / "[*]" (every member or element), chained ("$.features[1:]"). A single name or
// index selects a value; any other selector selects a list of values. An index out of
// range or a missing member is an error naming it, as SageMaker fails on them.
class JsonPath {
 public:
  // "" means "$". kValidation naming the problem when expression is not in the subset.
  static Result<JsonPath> Parse(std::string_view expression);

  // Whether the path selects the whole record ("$"): nothing to apply.
  bool IsRoot() const { return steps_.empty(); }
  const std::string& text() const { return text_; }
  Result<Value> Apply(const Value& root) const;

  struct Selector {
    enum class Kind { kName, kIndex, kSlice, kWildcard };
    Kind kind = Kind::kName;
    std::string name;
    int64_t index = 0;
    std::optional<int64_t> start;  // slices
    std::optional<int64_t> end;
  };
  // One "." or "[...]" step: its selectors, several for a union.
  using Step = std::vector<Selector>;

 private:
  std::string text_;
  std::vector<Step> steps_;
};

// CSV rows as SageMaker's data processing reads them: fields separated by commas, a field in
// double quotes may hold commas and "" for a quote. Fields keep their text (numbers are not
// reformatted).
Value ParseCsvRow(std::string_view line);
// A list is one row of fields (non-string elements as JSON); any other value is a row of one
// field. Fields holding a comma, quote, CR or LF are quoted.
std::string FormatCsvRow(const Value& row);

enum class SplitType { kNone, kLine, kRecordIO };
enum class BatchStrategy { kMultiRecord, kSingleRecord };
enum class AssembleWith { kNone, kLine };
enum class JoinSource { kNone, kInput };

struct TransformSettings {
  std::string content_type;  // TransformInput.ContentType (request Content-Type)
  std::string accept;        // TransformOutput.Accept
  bool gzip = false;         // TransformInput.CompressionType Gzip
  SplitType split = SplitType::kNone;
  BatchStrategy batch = BatchStrategy::kMultiRecord;
  int64_t max_payload_bytes = int64_t{6} << 20;  // 0: no limit
  int max_concurrent = 1;
  int max_retries = 3;  // ModelClientConfig.InvocationsMaxRetries
  AssembleWith assemble = AssembleWith::kNone;
  std::string input_filter;   // "" or "$": the whole record
  std::string output_filter;  // "" or "$": the whole output
  JoinSource join = JoinSource::kNone;
};

// Reads the settings from the members of a CreateTransformJob request (TransformInput,
// TransformOutput, DataProcessing, BatchStrategy, MaxPayloadInMB, MaxConcurrentTransforms,
// ModelClientConfig), SageMaker's defaults for those absent; MaxConcurrentTransforms absent
// or 0 is default_concurrency. kValidation naming the member when one cannot be served
// (SplitType TFRecord, data processing of data that is neither CSV nor JSON, a bad JSONPath).
Result<TransformSettings> TransformSettingsFromRequest(const Value& request,
                                                       int default_concurrency);

// [offset, offset + length) of one record in a file.
struct RecordSpan {
  size_t offset = 0;
  size_t length = 0;
};
// The records of a file (step 1). kValidation naming the byte offset of a bad RecordIO frame.
Result<std::vector<RecordSpan>> SplitRecords(std::string_view data, SplitType split);

// Requests as runs of records (step 4): record i costs sizes[i] + separator bytes.
struct BatchSpan {
  size_t first = 0;
  size_t count = 0;
};
// kValidation ("Too much data for max payload size …") naming the first record that does not
// fit in max_payload_bytes alone.
Result<std::vector<BatchSpan>> MakeBatches(const std::vector<size_t>& sizes, BatchStrategy strategy,
                                           int64_t max_payload_bytes, size_t separator);

// The outputs of one response, one per request unit (step 6); kValidation when their count
// is not `expected`.
Result<std::vector<std::string>> SplitResponse(std::string_view body, std::string_view content_type,
                                               size_t expected);

using TransformLog = std::function<void(const std::string& line)>;

class BatchTransformer {
 public:
  // REQUIRES: the settings' filters parse (TransformSettingsFromRequest checked them).
  // handler must outlive the transformer; log receives progress and error lines, from one
  // thread at a time.
  BatchTransformer(InferenceHandler& handler, TransformSettings settings, TransformLog log);

  // The contents of <file>.out for one input file; `name` names it in log lines (SageMaker
  // shows bucket/key). An error's message is the job's FailureReason ("ClientError: …").
  Result<std::string> TransformFile(const std::string& name, std::string_view data);

  int64_t records() const { return records_; }
  int64_t requests() const { return requests_; }

 private:
  struct Unit {
    size_t offset = 0;  // in the file
    std::string_view input;
  };
  struct Request {
    size_t first_unit = 0;
    size_t unit_count = 0;
    size_t first_record = 0;
    size_t record_count = 0;
    std::string body;
  };

  Result<std::string> Filter(std::string_view unit) const;
  Result<InvocationResult> Send(const std::string& name, const Request& request);
  Result<std::string> Output(const std::string& name, const Request& request,
                             const std::vector<Unit>& units, const InvocationResult& response);
  Result<std::string> Process(std::string_view input, std::string_view output,
                              std::string_view output_type) const;
  void Log(const std::string& line);
  void Log(const std::vector<std::string>& lines);  // consecutive in the log

  InferenceHandler& handler_;
  TransformSettings settings_;
  TransformLog log_;
  std::mutex log_mu_;  // serializes log_ across the request threads
  JsonPath input_filter_;
  JsonPath output_filter_;
  bool csv_ = false;         // the input is CSV (else JSON, when data processing applies)
  bool processing_ = false;  // a filter or join applies
  bool per_unit_ = false;    // responses are split per unit (join or output filter)
  int64_t records_ = 0;
  int64_t requests_ = 0;
};

// One input file of a job: its path relative to the input directory and the name log lines
// give it.
struct TransformInputFile {
  std::string path;
  std::string name;
};

// Transforms every file into <output_dir>/<path>.out (parent directories created), in order,
// logging a summary line per file and one at the start as SageMaker's data log does. Each
// .out is written under <output_dir>.partial/ and renamed into place once whole, so
// output_dir only ever holds complete outputs. An error is the job's failure reason; the
// outputs of the files before it stay (SageMaker uploads them).
Status RunBatchTransform(InferenceHandler& handler, const TransformSettings& settings,
                         const std::string& input_dir, const std::vector<TransformInputFile>& files,
                         const std::string& output_dir, const TransformLog& log);

}  // namespace nimbus::serving
