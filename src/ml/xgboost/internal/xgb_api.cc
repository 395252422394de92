#include "ml/xgboost/internal/xgb_api.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <vector>

#include "ml/algorithm.h"

namespace nimbus::ml::xgb_internal {
namespace {

thread_local const std::function<void(const std::string&)>* t_log_sink = nullptr;

void LogCallback(const char* message) {
  std::string line(message);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (t_log_sink != nullptr && *t_log_sink) {
    (*t_log_sink)(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

// Fragments of libxgboost's messages that mean the user's data or parameters are wrong; the
// first ones are those SageMaker's container turns into a ClientError.
constexpr const char* kUserErrors[] = {
    "label must be in [0,1] for logistic regression",
    "label must be in [0, num_class)",
    "Check failed: preds.size() == info.labels_.size()",
    "dataset only contains pos or neg samples",
    "base_score must be in (0,1)",
    "label must be nonnegative",
    "should be greater equal to",
    "label must be greater than -1",
    "label must be positive",
    "label must be non-negative",
    "Invalid Parameter format",
    "for Parameter",
    "Invalid input:",
    "Number of columns does not match",
    "Unknown objective function",
    "Unknown metric function",
};

}  // namespace

Status AlgorithmError(std::string message) {
  return Status::Aws("AlgorithmError", 500, std::move(message), ErrorKind::kInternal);
}

std::string LastError() {
  std::string error = XGBGetLastError();
  if (size_t trace = error.find("Stack trace:"); trace != std::string::npos) error.resize(trace);
  while (!error.empty() && std::isspace(static_cast<unsigned char>(error.back()))) error.pop_back();
  // "[02:31:34] ./src/objective/regression_obj.cu:148: label must be ..."
  if (!error.empty() && error[0] == '[') {
    size_t close = error.find("] ");
    if (close != std::string::npos) {
      size_t location_end = error.find(": ", close + 2);
      if (location_end != std::string::npos &&
          error.substr(close + 2, location_end - close - 2).find(' ') == std::string::npos) {
        error = error.substr(location_end + 2);
      } else {
        error = error.substr(close + 2);
      }
    }
  }
  return error;
}

Status LastErrorStatus(std::string_view what) {
  std::string error = LastError();
  for (const char* fragment : kUserErrors) {
    if (error.find(fragment) != std::string::npos) return ClientError(error);
  }
  return AlgorithmError("XGBoost " + std::string(what) + " failed: " + error);
}

DMatrix& DMatrix::operator=(DMatrix&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) XGDMatrixFree(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

DMatrix::~DMatrix() {
  if (handle_ != nullptr) XGDMatrixFree(handle_);
}

Booster& Booster::operator=(Booster&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) XGBoosterFree(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

Booster::~Booster() {
  if (handle_ != nullptr) XGBoosterFree(handle_);
}

Result<DMatrix> MakeDMatrix(const Dataset& data, int nthread, bool aft_bounds) {
  DMatrixHandle handle = nullptr;
  if (data.sparse) {
    // The C API wants size_t row pointers and 32-bit column indices.
    std::vector<size_t> indptr(data.indptr.begin(), data.indptr.end());
    if (indptr.empty()) indptr.push_back(0);
    std::vector<unsigned> indices;
    indices.reserve(data.indices.size());
    for (int64_t index : data.indices) {
      if (index < 0 || index > std::numeric_limits<unsigned>::max()) {
        return ClientError("Feature index " + std::to_string(index) + " is out of range");
      }
      indices.push_back(static_cast<unsigned>(index));
    }
    if (XGDMatrixCreateFromCSREx(indptr.data(), indices.data(), data.values.data(), indptr.size(),
                                 data.values.size(), static_cast<size_t>(data.cols),
                                 &handle) != 0) {
      return LastErrorStatus("reading sparse data");
    }
  } else if (XGDMatrixCreateFromMat_omp(data.values.data(), static_cast<bst_ulong>(data.rows),
                                        static_cast<bst_ulong>(data.cols),
                                        std::numeric_limits<float>::quiet_NaN(), &handle,
                                        nthread) != 0) {
    return LastErrorStatus("reading dense data");
  }
  DMatrix matrix(handle);
  auto set = [&](const char* field, const std::vector<float>& values) -> Status {
    if (values.empty()) return Status::Ok();
    if (static_cast<int64_t>(values.size()) != data.rows) {
      return ClientError(std::string("The data has ") + std::to_string(values.size()) + " " +
                         field + "s for " + std::to_string(data.rows) + " rows");
    }
    if (XGDMatrixSetFloatInfo(handle, field, values.data(), values.size()) != 0) {
      return LastErrorStatus(std::string("setting ") + field);
    }
    return Status::Ok();
  };
  NIMBUS_RETURN_IF_ERROR(set("label", data.labels));
  NIMBUS_RETURN_IF_ERROR(set("weight", data.weights));
  if (aft_bounds) {
    NIMBUS_RETURN_IF_ERROR(set("label_lower_bound", data.labels));
    NIMBUS_RETURN_IF_ERROR(set("label_upper_bound", data.labels));
  }
  return matrix;
}

ScopedXgbLogSink::ScopedXgbLogSink(const std::function<void(const std::string&)>* sink)
    : previous_(t_log_sink) {
  static std::once_flag registered;
  std::call_once(registered, [] { XGBRegisterLogCallback(&LogCallback); });
  t_log_sink = sink;
}

ScopedXgbLogSink::~ScopedXgbLogSink() { t_log_sink = previous_; }

}  // namespace nimbus::ml::xgb_internal
