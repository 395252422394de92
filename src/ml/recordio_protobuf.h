// RecordIO framing and the protobuf `aialgs.data.Record` message of SageMaker's
// application/x-recordio-protobuf content type, hand-rolled (no libprotobuf): the readers
// in dataset_readers.cc build on it. Internal to nimbus_ml_core.
//
// Framing (MXNet/dmlc RecordIO, as sagemaker-python-sdk's _write_recordio writes it):
//   [u32 LE magic 0xced7230a][u32 LE lrec][payload][zero padding to a multiple of 4]
// lrec = cflag << 29 | length. cflag 0 is a whole record; dmlc's writer splits a payload at
// every 4-aligned occurrence of the magic (cflag 1 = first part, 2 = middle, 3 = last) and
// drops that magic, so that a reader that lost its place can resynchronise on the magic;
// the reader puts the magic back between the parts. The Python SDK never splits; we split
// like dmlc when writing so that a chunked dmlc reader stays correct on our files.
//
// Payload (record.proto of sagemaker-python-sdk, proto2, packed repeated scalars):
//   Record        { map<string, Value> features = 1; map<string, Value> label = 2;
//                   string uid = 3; string metadata = 4; string configuration = 5; }
//   Value         { oneof { Float32Tensor float32_tensor = 2; Float64Tensor float64_tensor = 3;
//                           Int32Tensor int32_tensor = 7; Bytes bytes = 9; } }
//   <T>Tensor     { repeated T values = 1; repeated uint64 keys = 2; repeated uint64 shape = 3; }
// A map entry is a message { key = 1; value = 2 }. Only the "values" entries of features and
// label matter to the built-in algorithms; other entries and the string fields are skipped.
// Repeated scalars are accepted packed and unpacked, as any protobuf parser must.
//
// Thread-safety: free functions and a reader over caller-owned bytes (one thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/status.h"

namespace nimbus::ml::recordio {

inline constexpr uint32_t kMagic = 0xced7230a;

// Walks the records of a RecordIO byte string. Errors are plain messages ("bad magic number
// 0x... at byte offset 96"); the caller names the file and record.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  // The next record's payload into *payload (a view into the data, or into *scratch when the
  // record was split); false at the end of the data.
  Result<bool> Next(std::string_view* payload, std::string* scratch);
  // Byte offset of the next record's header.
  size_t offset() const { return offset_; }

 private:
  std::string_view data_;
  size_t offset_ = 0;
};

// Appends one framed record (split around embedded magic numbers, zero padded).
void AppendRecord(std::string_view payload, std::string* out);

// One decoded tensor, converted to float whatever its wire type.
struct Tensor {
  bool present = false;
  std::vector<float> values;
  std::vector<uint64_t> keys;  // sparse indices (empty: dense)
  std::vector<uint64_t> shape;
  void Clear() {
    present = false;
    values.clear();
    keys.clear();
    shape.clear();
  }
};

// features["values"] and label["values"] of one Record; Clear() keeps the capacity, so one
// instance can decode a whole file without reallocating.
struct Record {
  Tensor features;
  Tensor label;
  void Clear() {
    features.Clear();
    label.Clear();
  }
};

// Decodes one payload. Errors: Status::Validation with a message naming what is malformed.
Status DecodeRecord(std::string_view payload, Record* out);

// Appends a Record payload encoded the way sagemaker-python-sdk's protobuf serializer does:
// features {"values": Float32Tensor{values, keys (sparse only), shape (sparse only: [dim])}},
// then label {"values": Float32Tensor{[*label]}} when label is non-null. Empty repeated
// fields are omitted, as protobuf does. REQUIRES: keys holds count indices when sparse.
void EncodeRecord(const float* values, size_t count, bool sparse, const int64_t* keys, uint64_t dim,
                  const float* label, std::string* out);

}  // namespace nimbus::ml::recordio
