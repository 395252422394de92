#include "ml/dataset.h"

#include <algorithm>

namespace nimbus::ml {

float Dataset::At(int64_t r, int64_t c) const {
  if (!sparse) return values[static_cast<size_t>(r * cols + c)];
  auto begin = indices.begin() + indptr[static_cast<size_t>(r)];
  auto end = indices.begin() + indptr[static_cast<size_t>(r) + 1];
  auto it = std::lower_bound(begin, end, c);
  if (it == end || *it != c) return 0.0f;
  return values[static_cast<size_t>(it - indices.begin())];
}

Dataset Dataset::ToDense() const {
  if (!sparse) return *this;
  Dataset out;
  out.rows = rows;
  out.cols = cols;
  out.values.assign(static_cast<size_t>(rows * cols), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = indptr[static_cast<size_t>(r)]; k < indptr[static_cast<size_t>(r) + 1]; ++k) {
      out.values[static_cast<size_t>(r * cols + indices[static_cast<size_t>(k)])] =
          values[static_cast<size_t>(k)];
    }
  }
  out.labels = labels;
  out.weights = weights;
  return out;
}

Dataset Dataset::Slice(int64_t begin, int64_t end) const {
  Dataset out;
  begin = std::clamp<int64_t>(begin, 0, rows);
  end = std::clamp<int64_t>(end, begin, rows);
  out.rows = end - begin;
  out.cols = cols;
  out.sparse = sparse;
  if (sparse) {
    int64_t first = indptr[static_cast<size_t>(begin)];
    int64_t last = indptr[static_cast<size_t>(end)];
    out.values.assign(values.begin() + first, values.begin() + last);
    out.indices.assign(indices.begin() + first, indices.begin() + last);
    for (int64_t r = begin; r <= end; ++r)
      out.indptr.push_back(indptr[static_cast<size_t>(r)] - first);
  } else {
    out.values.assign(values.begin() + begin * cols, values.begin() + end * cols);
  }
  if (!labels.empty()) out.labels.assign(labels.begin() + begin, labels.begin() + end);
  if (!weights.empty()) out.weights.assign(weights.begin() + begin, weights.begin() + end);
  return out;
}

void Dataset::Append(const Dataset& other) {
  if (other.rows == 0) return;
  if (rows == 0) {
    *this = other;
    return;
  }
  bool labels_ok = labels.empty() == other.labels.empty();
  bool weights_ok = weights.empty() == other.weights.empty();
  if (sparse || other.sparse) {
    auto to_sparse = [](const Dataset& d) {
      if (d.sparse) return d;
      Dataset s = d;
      s.sparse = true;
      s.values.clear();
      s.indptr = {0};
      for (int64_t r = 0; r < d.rows; ++r) {
        for (int64_t c = 0; c < d.cols; ++c) {
          float v = d.values[static_cast<size_t>(r * d.cols + c)];
          if (v != 0.0f) {
            s.values.push_back(v);
            s.indices.push_back(c);
          }
        }
        s.indptr.push_back(static_cast<int64_t>(s.values.size()));
      }
      return s;
    };
    Dataset a = to_sparse(*this);
    Dataset b = to_sparse(other);
    int64_t offset = static_cast<int64_t>(a.values.size());
    a.values.insert(a.values.end(), b.values.begin(), b.values.end());
    a.indices.insert(a.indices.end(), b.indices.begin(), b.indices.end());
    for (size_t r = 1; r < b.indptr.size(); ++r) a.indptr.push_back(b.indptr[r] + offset);
    a.cols = std::max(a.cols, b.cols);
    a.labels = std::move(labels);
    a.weights = std::move(weights);
    *this = std::move(a);
  } else if (other.cols == cols) {
    values.insert(values.end(), other.values.begin(), other.values.end());
  } else {
    int64_t new_cols = std::max(cols, other.cols);
    std::vector<float> merged(static_cast<size_t>((rows + other.rows) * new_cols), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(values.begin() + r * cols, cols, merged.begin() + r * new_cols);
    }
    for (int64_t r = 0; r < other.rows; ++r) {
      std::copy_n(other.values.begin() + r * other.cols, other.cols,
                  merged.begin() + (rows + r) * new_cols);
    }
    values = std::move(merged);
    cols = new_cols;
  }
  if (labels_ok && !other.labels.empty()) {
    labels.insert(labels.end(), other.labels.begin(), other.labels.end());
  } else if (!labels_ok) {
    labels.clear();
  }
  if (weights_ok && !other.weights.empty()) {
    weights.insert(weights.end(), other.weights.begin(), other.weights.end());
  } else if (!weights_ok) {
    weights.clear();
  }
  rows += other.rows;
}

}  // namespace nimbus::ml
