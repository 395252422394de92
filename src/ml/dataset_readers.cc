#include "ml/dataset_readers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <utility>

#include "core/compression.h"
#include "core/strings.h"
#include "ml/recordio_protobuf.h"

namespace nimbus::ml {
namespace {

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

// "CSV line 7 of train.csv" / "CSV line 7" (a request body has no name).
std::string Where(std::string_view what, int64_t n, std::string_view source) {
  std::string out(what);
  out += ' ';
  out += std::to_string(n);
  if (!source.empty()) {
    out += " of ";
    out += source;
  }
  return out;
}

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// The whole of s as a float (surrounding blanks and a leading '+' allowed), as std::from_chars
// reads it: no locale, no allocation. nan/inf are accepted (missing values in xgboost's data).
bool ParseFloat(std::string_view s, float* out) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

Status CheckLabel(float label, const std::string& where) {
  if (!std::isfinite(label)) return ClientError(where + ": the label is not a finite number");
  return Status::Ok();
}

Status IndexOutOfRange(const std::string& where, uint64_t index, int64_t feature_dim) {
  return ClientError(where + ": feature index " + std::to_string(index) +
                     " is out of range: expected " + std::to_string(feature_dim) +
                     " features (indices 0 to " + std::to_string(feature_dim - 1) + ")");
}

Dataset EmptySparse(int64_t cols) {
  Dataset d;
  d.sparse = true;
  d.cols = cols;
  d.indptr = {0};
  return d;
}

// Sorts one CSR row [begin, end) by index; ClientError on a repeated index.
Status SortRow(std::vector<int64_t>& indices, std::vector<float>& values, size_t begin, size_t end,
               const std::string& where) {
  bool sorted = true;
  for (size_t k = begin + 1; k < end; ++k) {
    if (indices[k] <= indices[k - 1]) {
      sorted = false;
      break;
    }
  }
  if (sorted) return Status::Ok();
  std::vector<size_t> order(end - begin);
  std::iota(order.begin(), order.end(), begin);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return indices[a] < indices[b]; });
  std::vector<int64_t> new_indices(order.size());
  std::vector<float> new_values(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    new_indices[i] = indices[order[i]];
    new_values[i] = values[order[i]];
    if (i > 0 && new_indices[i] == new_indices[i - 1]) {
      return ClientError(where + ": feature index " + std::to_string(new_indices[i]) +
                         " appears twice");
    }
  }
  std::copy(new_indices.begin(), new_indices.end(), indices.begin() + begin);
  std::copy(new_values.begin(), new_values.end(), values.begin() + begin);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// text/csv

Result<Dataset> ParseCsv(std::string_view data, bool has_label, const ReadOptions& options,
                         std::string_view source) {
  Dataset d;
  const char* p = data.data();
  const char* end = p + data.size();
  if (data.size() >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;  // UTF-8 BOM
  // Every line must have this many cells (the label included); -1 until the first row.
  int64_t expected = options.feature_dim > 0 ? options.feature_dim + (has_label ? 1 : 0) : -1;
  int64_t line = 1;
  std::string unquoted;
  while (p < end) {
    // A blank (or all-whitespace) line is skipped.
    const char* q = p;
    while (q < end && IsBlank(*q)) ++q;
    if (q == end || *q == '\n' || *q == '\r') {
      if (q < end && *q == '\r') ++q;
      if (q < end && *q == '\n') ++q;
      p = q;
      ++line;
      continue;
    }
    const int64_t row_line = line;
    int64_t column = 0;  // cells read so far on this row
    while (true) {
      ++column;
      while (p < end && IsBlank(*p)) ++p;
      float v = kMissing;
      bool empty = false;
      if (p < end && *p == '"') {
        // RFC 4180 quoted cell: "" is a quote; a quoted newline belongs to the cell.
        const char* start = ++p;
        bool escaped = false;
        while (true) {
          if (p == end) {
            return ClientError(Where("CSV line", row_line, source) + ", column " +
                               std::to_string(column) + ": unterminated quoted cell");
          }
          if (*p == '"') {
            if (p + 1 < end && p[1] == '"') {
              escaped = true;
              p += 2;
              continue;
            }
            break;
          }
          if (*p == '\n') ++line;
          ++p;
        }
        std::string_view cell(start, static_cast<size_t>(p - start));
        ++p;  // the closing quote
        if (escaped) {
          unquoted.clear();
          for (size_t i = 0; i < cell.size(); ++i) {
            unquoted.push_back(cell[i]);
            if (cell[i] == '"') ++i;
          }
          cell = unquoted;
        }
        while (p < end && IsBlank(*p)) ++p;
        if (p < end && *p != ',' && *p != '\n' && *p != '\r') {
          return ClientError(Where("CSV line", row_line, source) + ", column " +
                             std::to_string(column) + ": unexpected text after a quoted cell");
        }
        if (Trim(cell).empty()) {
          empty = true;
        } else if (!ParseFloat(cell, &v)) {
          return ClientError(Where("CSV line", row_line, source) + ", column " +
                             std::to_string(column) + ": " + Quote(cell) + " is not a number");
        }
      } else if (p == end || *p == ',' || *p == '\n' || *p == '\r') {
        empty = true;
      } else {
        // The fast path: from_chars straight from the buffer, then a delimiter must follow.
        const char* start = p;
        if (*p == '+') ++p;
        auto [ptr, ec] = std::from_chars(p, end, v);
        p = ptr;
        while (p < end && IsBlank(*p)) ++p;
        if (ec != std::errc() || (p < end && *p != ',' && *p != '\n' && *p != '\r')) {
          const char* stop = start;
          while (stop < end && *stop != ',' && *stop != '\n' && *stop != '\r') ++stop;
          std::string_view cell(start, static_cast<size_t>(stop - start));
          return ClientError(
              Where("CSV line", row_line, source) + ", column " + std::to_string(column) + ": " +
              Quote(Trim(cell)) +
              (ec == std::errc::result_out_of_range ? " is out of range" : " is not a number"));
        }
      }
      if (has_label && column == 1) {
        if (empty) {
          return ClientError(Where("CSV line", row_line, source) +
                             ": the label (column 1) is empty");
        }
        NIMBUS_RETURN_IF_ERROR(CheckLabel(v, Where("CSV line", row_line, source)));
        d.labels.push_back(v);
      } else {
        // An empty cell is a missing value (NaN), as xgboost reads it.
        d.values.push_back(empty ? kMissing : v);
      }
      if (p < end && *p == ',') {
        ++p;
        continue;
      }
      if (p < end && *p == '\r') ++p;
      if (p < end && *p == '\n') ++p;
      ++line;
      break;
    }
    if (expected < 0) expected = column;
    if (column != expected) {
      std::string message = Where("CSV line", row_line, source) + " has " + std::to_string(column) +
                            " columns, expected " + std::to_string(expected);
      if (options.feature_dim > 0) {
        message += " (" + std::string(has_label ? "the label and " : "") +
                   std::to_string(options.feature_dim) + " features)";
      }
      return ClientError(std::move(message));
    }
    ++d.rows;
  }
  d.cols =
      expected < 0 ? std::max<int64_t>(options.feature_dim, 0) : expected - (has_label ? 1 : 0);
  return d;
}

// ---------------------------------------------------------------------------------------------
// text/libsvm: "<label>[:<weight>] [qid:<n>] <index>:<value> ... [# comment]"

Result<Dataset> ParseLibSvm(std::string_view data, bool labeled, const ReadOptions& options,
                            std::string_view source) {
  Dataset d = EmptySparse(0);
  int64_t max_index = -1;
  bool any_weight = false;
  int64_t line = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    ++line;
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) nl = data.size();
    std::string_view text = data.substr(pos, nl - pos);
    pos = nl + 1;
    if (size_t hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
    // Tokens separated by blanks (a trailing '\r' is a blank here).
    auto next_token = [&text]() {
      size_t b = 0;
      while (b < text.size() && (IsBlank(text[b]) || text[b] == '\r')) ++b;
      size_t e = b;
      while (e < text.size() && !IsBlank(text[e]) && text[e] != '\r') ++e;
      std::string_view token = text.substr(b, e - b);
      text = text.substr(e);
      return token;
    };
    std::string_view token = next_token();
    if (token.empty()) continue;  // a blank line
    const std::string where = Where("libsvm line", line, source);
    // The first token is the label unless it is index:value on unlabeled data.
    if (labeled || token.find(':') == std::string_view::npos) {
      std::string_view label_text = token;
      std::string_view weight_text;
      if (size_t colon = token.find(':'); colon != std::string_view::npos) {
        label_text = token.substr(0, colon);
        weight_text = token.substr(colon + 1);
      }
      float label;
      if (!ParseFloat(label_text, &label)) {
        return ClientError(where + ": the label " + Quote(label_text) + " is not a number");
      }
      if (labeled) {
        NIMBUS_RETURN_IF_ERROR(CheckLabel(label, where));
        d.labels.push_back(label);
        if (!weight_text.empty()) {
          float weight;
          if (!ParseFloat(weight_text, &weight) || !(weight >= 0) || !std::isfinite(weight)) {
            return ClientError(where + ": the weight " + Quote(weight_text) +
                               " is not a non-negative number");
          }
          // Rows before the first weighted one weigh 1, as in xgboost.
          if (!any_weight) d.weights.assign(static_cast<size_t>(d.rows), 1.0f);
          any_weight = true;
          d.weights.push_back(weight);
        } else if (any_weight) {
          d.weights.push_back(1.0f);
        }
      }
      token = next_token();
    }
    const size_t row_begin = d.values.size();
    for (; !token.empty(); token = next_token()) {
      size_t colon = token.find(':');
      if (colon == std::string_view::npos) {
        return ClientError(where + ": " + Quote(token) + " is not an index:value pair");
      }
      std::string_view index_text = token.substr(0, colon);
      std::string_view value_text = token.substr(colon + 1);
      if (index_text == "qid") continue;  // ranking groups: not used by these algorithms
      int64_t index = 0;
      auto [ptr, ec] =
          std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
      if (index_text.empty() || ec != std::errc() || ptr != index_text.data() + index_text.size() ||
          index < 0) {
        return ClientError(where + ": the feature index " + Quote(index_text) +
                           " is not a non-negative integer");
      }
      float value;
      if (!ParseFloat(value_text, &value)) {
        return ClientError(where + ": the value " + Quote(value_text) + " of feature " +
                           std::to_string(index) + " is not a number");
      }
      if (options.feature_dim > 0 && index >= options.feature_dim) {
        return IndexOutOfRange(where, static_cast<uint64_t>(index), options.feature_dim);
      }
      max_index = std::max(max_index, index);
      d.indices.push_back(index);
      d.values.push_back(value);
    }
    NIMBUS_RETURN_IF_ERROR(SortRow(d.indices, d.values, row_begin, d.values.size(), where));
    d.indptr.push_back(static_cast<int64_t>(d.values.size()));
    ++d.rows;
  }
  d.cols = options.feature_dim > 0 ? options.feature_dim : max_index + 1;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Records one at a time (RecordIO-protobuf, JSON): dense rows while every row is dense and of
// one length, CSR as soon as one row is sparse.

class RowBuilder {
 public:
  RowBuilder(bool labeled, const ReadOptions& options)
      : labeled_(labeled), feature_dim_(options.feature_dim) {
    d_.indptr = {0};
  }

  Status AddDense(const float* values, size_t n, const std::string& where) {
    const int64_t count = static_cast<int64_t>(n);
    if (feature_dim_ > 0 && count != feature_dim_) {
      return ClientError(where + " has " + std::to_string(n) + " features, expected " +
                         std::to_string(feature_dim_));
    }
    if (dense_cols_ < 0) dense_cols_ = count;
    if (count != dense_cols_) {
      return ClientError(where + " has " + std::to_string(n) + " features, expected " +
                         std::to_string(dense_cols_) + " as in the first dense record");
    }
    d_.values.insert(d_.values.end(), values, values + n);
    if (d_.sparse) {
      for (int64_t c = 0; c < count; ++c) d_.indices.push_back(c);
    }
    max_dim_ = std::max(max_dim_, count);
    EndRow();
    return Status::Ok();
  }

  // keys[i] is the index of values[i]; dim is the declared dimension (0: unknown).
  Status AddSparse(const float* values, const uint64_t* keys, size_t n, uint64_t dim,
                   const std::string& where) {
    if (!d_.sparse) ToSparse();
    const size_t begin = d_.values.size();
    for (size_t i = 0; i < n; ++i) {
      if (dim > 0 && keys[i] >= dim) {
        return ClientError(where + ": feature index " + std::to_string(keys[i]) +
                           " is outside its shape " + std::to_string(dim));
      }
      if (feature_dim_ > 0 && keys[i] >= static_cast<uint64_t>(feature_dim_)) {
        return IndexOutOfRange(where, keys[i], feature_dim_);
      }
      if (keys[i] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / 2)) {
        return ClientError(where + ": feature index " + std::to_string(keys[i]) + " is too large");
      }
      d_.indices.push_back(static_cast<int64_t>(keys[i]));
      d_.values.push_back(values[i]);
      max_dim_ = std::max(max_dim_, static_cast<int64_t>(keys[i]) + 1);
    }
    if (dim > 0 && feature_dim_ > 0 && dim != static_cast<uint64_t>(feature_dim_)) {
      return ClientError(where + " has shape " + std::to_string(dim) + ", expected " +
                         std::to_string(feature_dim_) + " features");
    }
    if (dim > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return ClientError(where + ": the shape " + std::to_string(dim) + " is too large");
    }
    max_dim_ = std::max(max_dim_, static_cast<int64_t>(dim));
    NIMBUS_RETURN_IF_ERROR(SortRow(d_.indices, d_.values, begin, d_.values.size(), where));
    EndRow();
    return Status::Ok();
  }

  // After the row's features: its label, if any.
  Status SetLabel(std::optional<float> label, const std::string& where) {
    if (!labeled_) return Status::Ok();
    if (!label) return ClientError(where + " has no label");
    NIMBUS_RETURN_IF_ERROR(CheckLabel(*label, where));
    d_.labels.push_back(*label);
    return Status::Ok();
  }

  Dataset Finish() && {
    if (!d_.sparse) d_.indptr.clear();
    d_.cols = feature_dim_ > 0 ? feature_dim_ : max_dim_;
    return std::move(d_);
  }

 private:
  void EndRow() {
    ++d_.rows;
    if (d_.sparse) d_.indptr.push_back(static_cast<int64_t>(d_.values.size()));
  }
  // The dense rows so far become CSR rows with every column present.
  void ToSparse() {
    d_.sparse = true;
    const int64_t cols = std::max<int64_t>(dense_cols_, 0);
    d_.indptr.assign(1, 0);
    d_.indices.clear();
    d_.indices.reserve(d_.values.size());
    for (int64_t r = 0; r < d_.rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) d_.indices.push_back(c);
      d_.indptr.push_back((r + 1) * cols);
    }
  }

  bool labeled_;
  int64_t feature_dim_;
  int64_t dense_cols_ = -1;  // the length of the dense rows (-1 before the first)
  int64_t max_dim_ = 0;
  Dataset d_;
};

// ---------------------------------------------------------------------------------------------
// application/x-recordio-protobuf

uint64_t ShapeSize(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t s : shape) {
    if (s != 0 && n > std::numeric_limits<uint64_t>::max() / s) return 0;
    n *= s;
  }
  return n;
}

Result<Dataset> ParseRecordIO(std::string_view data, bool labeled, const ReadOptions& options,
                              std::string_view source) {
  RowBuilder builder(labeled, options);
  recordio::Reader reader(data);
  recordio::Record record;
  std::string scratch;
  for (int64_t n = 1;; ++n) {
    std::string_view payload;
    auto more = reader.Next(&payload, &scratch);
    if (!more.ok()) {
      return ClientError(Where("RecordIO record", n, source) + ": " + more.status().message());
    }
    if (!*more) break;
    const std::string where = Where("RecordIO record", n, source);
    if (Status s = recordio::DecodeRecord(payload, &record); !s.ok()) {
      return ClientError(where + ": " + s.message());
    }
    const recordio::Tensor& f = record.features;
    if (!f.present) return ClientError(where + " has no 'values' feature");
    if (!f.keys.empty() || (f.values.empty() && !f.shape.empty() && ShapeSize(f.shape) > 0)) {
      // Sparse (an all-zero sparse row has neither keys nor values, only its shape).
      if (f.keys.size() != f.values.size()) {
        return ClientError(where + " has " + std::to_string(f.keys.size()) + " keys for " +
                           std::to_string(f.values.size()) + " values");
      }
      uint64_t dim = f.shape.empty() ? 0 : ShapeSize(f.shape);
      if (!f.shape.empty() && dim == 0) {
        return ClientError(where + " has an invalid shape for sparse features");
      }
      NIMBUS_RETURN_IF_ERROR(
          builder.AddSparse(f.values.data(), f.keys.data(), f.values.size(), dim, where));
    } else {
      if (!f.shape.empty() && ShapeSize(f.shape) != f.values.size()) {
        return ClientError(where + " has " + std::to_string(f.values.size()) +
                           " values for its shape of " + std::to_string(ShapeSize(f.shape)));
      }
      NIMBUS_RETURN_IF_ERROR(builder.AddDense(f.values.data(), f.values.size(), where));
    }
    std::optional<float> label;
    if (record.label.present && !record.label.values.empty()) label = record.label.values[0];
    NIMBUS_RETURN_IF_ERROR(builder.SetLabel(label, where));
  }
  return std::move(builder).Finish();
}

// ---------------------------------------------------------------------------------------------
// application/jsonlines (and application/json request bodies)

using Json = nlohmann::json;

Status NumbersOf(const Json& array, const char* what, const std::string& where,
                 std::vector<float>* out) {
  out->clear();
  if (!array.is_array()) return ClientError(where + ": '" + what + "' must be an array");
  for (const Json& v : array) {
    if (v.is_number()) {
      out->push_back(static_cast<float>(v.get<double>()));
    } else if (v.is_null()) {
      out->push_back(kMissing);
    } else {
      return ClientError(where + ": '" + what + "' must hold only numbers, found " +
                         Quote(v.dump()));
    }
  }
  return Status::Ok();
}

Status KeysOf(const Json& array, const char* what, const std::string& where,
              std::vector<uint64_t>* out) {
  out->clear();
  if (!array.is_array()) return ClientError(where + ": '" + what + "' must be an array");
  for (const Json& v : array) {
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
      return ClientError(where + ": '" + what + "' must hold non-negative integers, found " +
                         Quote(v.dump()));
    }
    out->push_back(v.get<uint64_t>());
  }
  return Status::Ok();
}

// The label of {"label": 1}, {"label": [1]} or {"label": {"values": [1]}}.
Result<std::optional<float>> LabelOf(const Json* label, const std::string& where) {
  if (label == nullptr || label->is_null()) return std::optional<float>();
  const Json* v = label;
  if (v->is_object()) {
    auto it = v->find("values");
    if (it == v->end()) return ClientError(where + ": 'label' has no 'values'");
    v = &*it;
  }
  if (v->is_array()) {
    if (v->empty()) return ClientError(where + ": 'label' is empty");
    v = &(*v)[0];
  }
  if (!v->is_number()) return ClientError(where + ": 'label' must be a number");
  return std::optional<float>(static_cast<float>(v->get<double>()));
}

struct JsonScratch {
  std::vector<float> values;
  std::vector<uint64_t> keys;
  std::vector<uint64_t> shape;
};

// One instance: [1, 2], {"features": [1, 2], "label": 0},
// {"features": {"values": [...], "keys": [...], "shape": [d]}} or
// {"data": {"features": {"values": [...]}, "label": ...}}.
Status AddJsonInstance(const Json& instance, const std::string& where, RowBuilder& builder,
                       JsonScratch& s) {
  const Json* features = nullptr;
  const Json* label = nullptr;
  if (instance.is_array()) {
    features = &instance;
  } else if (instance.is_object()) {
    const Json* holder = &instance;
    if (auto data = instance.find("data"); data != instance.end() && data->is_object()) {
      holder = &*data;
    }
    if (auto it = holder->find("features"); it != holder->end()) features = &*it;
    if (auto it = holder->find("label"); it != holder->end()) label = &*it;
    if (label == nullptr && holder != &instance) {
      if (auto it = instance.find("label"); it != instance.end()) label = &*it;
    }
  }
  if (features == nullptr) {
    return ClientError(where + " has no 'features' (expected {\"features\": [...]})");
  }
  if (features->is_object()) {
    auto values = features->find("values");
    if (values == features->end()) return ClientError(where + ": 'features' has no 'values'");
    NIMBUS_RETURN_IF_ERROR(NumbersOf(*values, "values", where, &s.values));
    s.keys.clear();
    s.shape.clear();
    if (auto keys = features->find("keys"); keys != features->end()) {
      NIMBUS_RETURN_IF_ERROR(KeysOf(*keys, "keys", where, &s.keys));
    }
    if (auto shape = features->find("shape"); shape != features->end()) {
      NIMBUS_RETURN_IF_ERROR(KeysOf(*shape, "shape", where, &s.shape));
    }
    if (features->contains("keys")) {
      if (s.keys.size() != s.values.size()) {
        return ClientError(where + " has " + std::to_string(s.keys.size()) + " keys for " +
                           std::to_string(s.values.size()) + " values");
      }
      uint64_t dim = s.shape.empty() ? 0 : ShapeSize(s.shape);
      NIMBUS_RETURN_IF_ERROR(
          builder.AddSparse(s.values.data(), s.keys.data(), s.values.size(), dim, where));
    } else {
      NIMBUS_RETURN_IF_ERROR(builder.AddDense(s.values.data(), s.values.size(), where));
    }
  } else {
    NIMBUS_RETURN_IF_ERROR(NumbersOf(*features, "features", where, &s.values));
    NIMBUS_RETURN_IF_ERROR(builder.AddDense(s.values.data(), s.values.size(), where));
  }
  NIMBUS_ASSIGN_OR_RETURN(std::optional<float> value, LabelOf(label, where));
  return builder.SetLabel(value, where);
}

// A JSON value that may hold several instances: {"instances": [...]}, a list of instances, or
// one instance.
Status AddJsonDocument(const Json& doc, const std::string& where_prefix, int64_t* counter,
                       std::string_view source, RowBuilder& builder, JsonScratch& s) {
  const Json* list = nullptr;
  if (doc.is_object()) {
    if (auto it = doc.find("instances"); it != doc.end()) list = &*it;
  } else if (doc.is_array() && !doc.empty() && (doc[0].is_array() || doc[0].is_object())) {
    list = &doc;
  }
  if (list == nullptr) return AddJsonInstance(doc, where_prefix, builder, s);
  if (!list->is_array()) return ClientError(where_prefix + ": 'instances' must be an array");
  for (const Json& instance : *list) {
    ++*counter;
    NIMBUS_RETURN_IF_ERROR(
        AddJsonInstance(instance, Where("JSON instance", *counter, source), builder, s));
  }
  return Status::Ok();
}

Result<Dataset> ParseJsonLines(std::string_view data, bool labeled, const ReadOptions& options,
                               std::string_view source) {
  RowBuilder builder(labeled, options);
  JsonScratch s;
  int64_t instances = 0;
  // An application/json body is one document, possibly spread over lines; JSON Lines is one
  // document per line. A JSON Lines file fails this parse at its second line, cheaply.
  std::string_view trimmed = Trim(data);
  if (!trimmed.empty() && (trimmed.front() == '{' || trimmed.front() == '[')) {
    Json doc = Json::parse(trimmed.begin(), trimmed.end(), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_discarded()) {
      NIMBUS_RETURN_IF_ERROR(
          AddJsonDocument(doc, Where("JSON line", 1, source), &instances, source, builder, s));
      return std::move(builder).Finish();
    }
  }
  int64_t line = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    ++line;
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) nl = data.size();
    std::string_view text = Trim(data.substr(pos, nl - pos));
    pos = nl + 1;
    if (text.empty()) continue;
    const std::string where = Where("JSON line", line, source);
    Json doc;
    try {
      doc = Json::parse(text.begin(), text.end());
    } catch (const Json::exception& e) {
      return ClientError(where + " is not valid JSON: " + e.what());
    }
    NIMBUS_RETURN_IF_ERROR(AddJsonDocument(doc, where, &instances, source, builder, s));
  }
  return std::move(builder).Finish();
}

// ---------------------------------------------------------------------------------------------

Result<Dataset> Parse(std::string_view data, const ContentTypeSpec& type,
                      const ReadOptions& options, std::string_view source) {
  try {
    switch (type.type) {
      case ContentType::kCsv:
        return ParseCsv(data, options.labeled && type.label_size > 0, options, source);
      case ContentType::kLibSvm:
        return ParseLibSvm(data, options.labeled, options, source);
      case ContentType::kRecordIOProtobuf:
        return ParseRecordIO(data, options.labeled, options, source);
      case ContentType::kJsonLines:
        return ParseJsonLines(data, options.labeled, options, source);
    }
  } catch (const std::bad_alloc&) {
    return ClientError("the data" +
                       (source.empty() ? std::string() : " of " + std::string(source)) +
                       " does not fit in memory");
  } catch (const std::exception& e) {  // nlohmann, on inputs its checks above did not foresee
    return ClientError("cannot read the data" +
                       (source.empty() ? std::string() : " of " + std::string(source)) + ": " +
                       e.what());
  }
  return Status::Internal("unknown content type");
}

// The whole of a file (or FIFO), gunzipped when it starts with gzip's magic number.
Result<std::string> Slurp(const std::string& path, std::string_view name) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ClientError("cannot open " + std::string(name) + ": " + std::strerror(errno));
  }
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) data.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ClientError("cannot read " + std::string(name) + ": " + std::strerror(err));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (data.size() >= 2 && static_cast<uint8_t>(data[0]) == 0x1f &&
      static_cast<uint8_t>(data[1]) == 0x8b) {
    auto inflated = Gunzip(data, std::numeric_limits<size_t>::max() / 2);
    if (!inflated.ok()) {
      return ClientError(std::string(name) + " looks gzip-compressed but " +
                         inflated.status().message());
    }
    return std::move(inflated).value();
  }
  return data;
}

// Concatenates the datasets of a channel's files (one pass, unlike repeated Append).
Result<Dataset> Concatenate(std::vector<Dataset>& parts, const std::vector<std::string>& names) {
  if (parts.empty()) return Dataset{};
  if (parts.size() == 1) return std::move(parts[0]);
  bool any_sparse = false;
  bool any_weights = false;
  bool all_labels = true;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t dense_cols = -1;
  size_t first_dense = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Dataset& p = parts[i];
    any_sparse |= p.sparse;
    any_weights |= !p.weights.empty();
    if (p.rows > 0) all_labels &= p.has_labels();
    rows += p.rows;
    cols = std::max(cols, p.cols);
    if (!p.sparse && p.rows > 0) {
      if (dense_cols < 0) {
        dense_cols = p.cols;
        first_dense = i;
      } else if (p.cols != dense_cols) {
        return ClientError(names[i] + " has " + std::to_string(p.cols) + " features, but " +
                           names[first_dense] + " has " + std::to_string(dense_cols));
      }
    }
  }
  Dataset out;
  out.rows = rows;
  out.cols = cols;
  out.sparse = any_sparse;
  if (any_sparse) out.indptr = {0};
  for (Dataset& p : parts) {
    if (p.rows == 0) continue;
    if (!any_sparse) {
      out.values.insert(out.values.end(), p.values.begin(), p.values.end());
    } else if (p.sparse) {
      const int64_t offset = static_cast<int64_t>(out.values.size());
      out.values.insert(out.values.end(), p.values.begin(), p.values.end());
      out.indices.insert(out.indices.end(), p.indices.begin(), p.indices.end());
      for (size_t r = 1; r < p.indptr.size(); ++r) out.indptr.push_back(p.indptr[r] + offset);
    } else {
      for (int64_t r = 0; r < p.rows; ++r) {
        for (int64_t c = 0; c < p.cols; ++c) {
          float v = p.values[static_cast<size_t>(r * p.cols + c)];
          if (v != 0.0f) {
            out.values.push_back(v);
            out.indices.push_back(c);
          }
        }
        out.indptr.push_back(static_cast<int64_t>(out.values.size()));
      }
    }
    if (all_labels) out.labels.insert(out.labels.end(), p.labels.begin(), p.labels.end());
    if (any_weights) {
      if (p.weights.empty()) {
        out.weights.insert(out.weights.end(), static_cast<size_t>(p.rows), 1.0f);
      } else {
        out.weights.insert(out.weights.end(), p.weights.begin(), p.weights.end());
      }
    }
    p = Dataset{};  // release each part as soon as it is copied
  }
  return out;
}

}  // namespace

Result<ContentTypeSpec> ParseContentType(std::string_view mime) {
  std::vector<std::string> parts = Split(mime, ';');
  std::string type = parts.empty() ? std::string() : ToLower(Trim(parts[0]));
  ContentTypeSpec spec;
  if (type == "text/csv" || type == "text/x-csv" || type == "application/csv") {
    spec.type = ContentType::kCsv;
  } else if (type == "text/libsvm" || type == "text/x-libsvm" || type == "application/libsvm" ||
             type == "application/x-libsvm") {
    spec.type = ContentType::kLibSvm;
  } else if (type == "application/x-recordio-protobuf") {
    spec.type = ContentType::kRecordIOProtobuf;
  } else if (type == "application/jsonlines" || type == "application/x-jsonlines" ||
             type == "application/json-lines" || type == "application/json") {
    spec.type = ContentType::kJsonLines;
  } else {
    return ClientError("Content type " + Quote(mime) +
                       " is not supported; expected text/csv, text/libsvm, "
                       "application/x-recordio-protobuf or application/jsonlines");
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view param = Trim(parts[i]);
    if (param.empty()) continue;
    size_t eq = param.find('=');
    std::string name = ToLower(Trim(param.substr(0, eq)));
    if (name != "label_size") continue;  // charset=... and the like change nothing here
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : Trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    std::optional<int64_t> n = ParseInt(value);
    if (!n || *n < 0 || *n > 1) {
      return ClientError("Content type " + Quote(mime) + ": label_size " + Quote(value) +
                         " is not supported; it must be 0 (no label column) or 1");
    }
    spec.label_size = static_cast<int>(*n);
  }
  return spec;
}

Result<Dataset> ReadFile(const std::string& path, const ContentTypeSpec& type,
                         const ReadOptions& options) {
  const std::string name = std::filesystem::path(path).filename().string();
  NIMBUS_ASSIGN_OR_RETURN(std::string data, Slurp(path, name));
  return Parse(data, type, options, name);
}

Result<Dataset> ReadChannel(const Channel& channel, std::string_view default_content_type,
                            const ReadOptions& options) {
  std::string_view mime =
      channel.content_type.empty() ? default_content_type : std::string_view(channel.content_type);
  NIMBUS_ASSIGN_OR_RETURN(ContentTypeSpec type, ParseContentType(mime));
  if (channel.pipe) {
    // Pipe mode: the whole channel streams through one FIFO per epoch; everything here loads
    // the data once, so the first epoch's FIFO is all there is to read.
    const std::string fifo = channel.dir + "_0";
    NIMBUS_ASSIGN_OR_RETURN(std::string data, Slurp(fifo, "channel '" + channel.name + "'"));
    return Parse(data, type, options, "channel '" + channel.name + "'");
  }
  std::vector<std::string> files = channel.Files();
  if (files.empty()) return ClientError("No data files found in channel '" + channel.name + "'");
  std::vector<Dataset> parts;
  std::vector<std::string> names;
  parts.reserve(files.size());
  for (const std::string& file : files) {
    std::error_code ec;
    std::string name = std::filesystem::relative(file, channel.dir, ec).string();
    if (ec || name.empty()) name = std::filesystem::path(file).filename().string();
    NIMBUS_ASSIGN_OR_RETURN(std::string data, Slurp(file, name));
    NIMBUS_ASSIGN_OR_RETURN(Dataset part, Parse(data, type, options, name));
    parts.push_back(std::move(part));
    names.push_back(std::move(name));
  }
  return Concatenate(parts, names);
}

Result<Dataset> ParseRecords(std::string_view data, const ContentTypeSpec& type,
                             const ReadOptions& options) {
  return Parse(data, type, options, "");
}

std::string WriteRecordIOProtobuf(const Dataset& data) {
  std::string out;
  std::string payload;
  for (int64_t r = 0; r < data.rows; ++r) {
    payload.clear();
    const float* label = data.has_labels() ? &data.labels[static_cast<size_t>(r)] : nullptr;
    if (data.sparse) {
      const size_t begin = static_cast<size_t>(data.indptr[static_cast<size_t>(r)]);
      const size_t end = static_cast<size_t>(data.indptr[static_cast<size_t>(r) + 1]);
      recordio::EncodeRecord(data.values.data() + begin, end - begin, /*sparse=*/true,
                             data.indices.data() + begin, static_cast<uint64_t>(data.cols), label,
                             &payload);
    } else {
      recordio::EncodeRecord(data.values.data() + static_cast<size_t>(r * data.cols),
                             static_cast<size_t>(data.cols), /*sparse=*/false, nullptr, 0, label,
                             &payload);
    }
    recordio::AppendRecord(payload, &out);
  }
  return out;
}

}  // namespace nimbus::ml
