// Dataset: a batch of examples as the built-in algorithms consume them, and the readers of
// the content types SageMaker's algorithms accept (ARCHITECTURE.md §6).
//
// Features are either a dense row-major float matrix or CSR sparse rows (libsvm and
// RecordIO-protobuf data are often sparse); labels and weights are optional, one per row.
// Readers (dataset_readers.h) parse whole files or in-memory request bodies:
//   text/csv                         comma-separated, no header; for training the label is
//                                    the first column (label_size=1), for inference none
//   text/libsvm                      "<label> <index>:<value> ..." (1-based or 0-based indices)
//   application/x-recordio-protobuf  SageMaker's RecordIO-framed protobuf Record messages
//   application/jsonlines            {"features": [...], "label": x} per line (also
//                                    {"instances": ...}/{"data": {"features": {"values": ...}}})
//
// Thread-safety: plain values; readers are free functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nimbus::ml {

struct Dataset {
  int64_t rows = 0;
  int64_t cols = 0;  // the feature dimension
  bool sparse = false;
  // Dense: rows * cols values, row-major. Sparse: the non-zero values.
  std::vector<float> values;
  // Sparse only (CSR): row r's entries are [indptr[r], indptr[r+1]) of indices/values.
  std::vector<int64_t> indptr;
  std::vector<int64_t> indices;
  std::vector<float> labels;   // empty, or one per row
  std::vector<float> weights;  // empty, or one per row

  bool has_labels() const { return !labels.empty(); }
  // Feature (r, c) for either layout.
  float At(int64_t r, int64_t c) const;
  // The dense copy of a sparse dataset (itself when dense).
  Dataset ToDense() const;
  // Rows [begin, end) as a new dataset (labels and weights follow).
  Dataset Slice(int64_t begin, int64_t end) const;
  // Appends other's rows; the column count becomes the larger one. Layouts may differ (the
  // result is sparse when either is).
  void Append(const Dataset& other);
};

}  // namespace nimbus::ml
