// Readers of the training and inference content types of SageMaker's built-in algorithms
// into ml::Dataset (see dataset.h for the formats), and the RecordIO-protobuf writer.
//
// RecordIO-protobuf is implemented from its published format: each record is framed as
// [magic 0xced7230a (u32 LE)][length-and-flags (u32 LE: top 3 bits flag, low 29 length)]
// [payload padded to 4 bytes]; the payload is a protobuf `aialgs.data.Record` message
// (features map<string, Value> with "values" a Float32/Float64/Int32Tensor with values,
// keys (sparse indices) and shape; label likewise), decoded here without libprotobuf.
//
// Errors are ClientErrors naming the file and line/record ("CSV line 7 of train.csv has 4
// columns, expected 5").
//
// Thread-safety: free functions.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "ml/algorithm.h"
#include "ml/dataset.h"

namespace nimbus::ml {

enum class ContentType { kCsv, kLibSvm, kRecordIOProtobuf, kJsonLines };

struct ContentTypeSpec {
  ContentType type = ContentType::kCsv;
  int label_size = 1;  // text/csv;label_size=N (0 = no label column); training default 1
};

// Parses a MIME type with parameters ("text/csv; label_size=0", "application/x-recordio-
// protobuf", "text/x-libsvm" …); ClientError naming it when it is none of the four.
Result<ContentTypeSpec> ParseContentType(std::string_view mime);

// How each format reads labels and features:
//   CSV       the first column is the label when labeled and label_size is 1; an empty cell
//             is a missing value (NaN), an empty label an error; RFC 4180 quotes, CRLF, a BOM
//             and blank lines are accepted.
//   libsvm    sparse; indices kept as given (0- or 1-based), cols = max index + 1; a
//             "label:weight" first token fills weights (unweighted rows weigh 1); qid:n and
//             "# comments" are ignored; unlabeled lines may still carry a label (skipped).
//   RecordIO  dense rows while every record is dense and of one length, else CSR; the label
//             is label["values"][0] (Float32, Float64 or Int32 tensors).
//   JSON      dense or {"keys", "shape", "values"} sparse rows; labels as number, [number]
//             or {"values": [number]}.
// Unlabeled reads ignore labels; a labeled read refuses a row without one. Files starting
// with gzip's magic number are inflated first.
struct ReadOptions {
  bool labeled = true;      // training data has labels; inference requests do not
  int64_t feature_dim = 0;  // expected columns (0: from the data)
};

Result<Dataset> ReadFile(const std::string& path, const ContentTypeSpec& type,
                         const ReadOptions& options);
// Every file of the channel, concatenated in path order (dense files must agree on the
// column count; errors name the file relative to the channel). default_content_type applies
// when the channel names none. In pipe mode the channel is the FIFO <dir>_0 (the first
// epoch: the data is loaded once). ClientError when the channel holds no file.
Result<Dataset> ReadChannel(const Channel& channel, std::string_view default_content_type,
                            const ReadOptions& options);
// A request body (or any in-memory data).
Result<Dataset> ParseRecords(std::string_view data, const ContentTypeSpec& type,
                             const ReadOptions& options);

// Encodes rows (and labels when present) as RecordIO-protobuf: dense rows as Float32Tensor
// values, sparse rows with keys and shape.
std::string WriteRecordIOProtobuf(const Dataset& data);

}  // namespace nimbus::ml
