// Private to nimbus_ml_xgboost: owning wrappers of libxgboost's C handles, the conversion of
// ml::Dataset into a DMatrix, the translation of libxgboost errors into Status, and the
// routing of libxgboost's log lines into a job's log.
//
// libxgboost reports errors through a thread-local last-error string; LastErrorStatus() must
// be called on the thread whose call failed. Its log callback is process-wide, so the sink
// is chosen per thread (ScopedXgbLogSink).
//
// Thread-safety: handles belong to one thread at a time.
#pragma once

#include <xgboost/c_api.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.h"
#include "ml/dataset.h"

namespace nimbus::ml::xgb_internal {

// An error that is the algorithm's fault rather than the user's ("AlgorithmError: ...").
Status AlgorithmError(std::string message);

// libxgboost's last error without its timestamp, source location and stack trace.
std::string LastError();

// The last error as a Status: a ClientError when it is about the user's data or parameters
// (labels out of range for the objective, negative labels for count:poisson, bad parameter
// values ...), as SageMaker's container classifies them; an AlgorithmError otherwise.
// `what` names the failed step ("training round 3").
Status LastErrorStatus(std::string_view what);

class DMatrix {
 public:
  DMatrix() = default;
  explicit DMatrix(DMatrixHandle handle) : handle_(handle) {}
  DMatrix(DMatrix&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  DMatrix& operator=(DMatrix&& other) noexcept;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  ~DMatrix();
  DMatrixHandle get() const { return handle_; }

 private:
  DMatrixHandle handle_ = nullptr;
};

class Booster {
 public:
  Booster() = default;
  explicit Booster(BoosterHandle handle) : handle_(handle) {}
  Booster(Booster&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Booster& operator=(Booster&& other) noexcept;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster();
  BoosterHandle get() const { return handle_; }

 private:
  BoosterHandle handle_ = nullptr;
};

// A DMatrix of data's features (dense with NaN as missing, or CSR), with its labels and
// weights when present. aft_bounds: also set label_lower_bound = label_upper_bound = label,
// which is how uncensored data is given to survival:aft.
Result<DMatrix> MakeDMatrix(const Dataset& data, int nthread, bool aft_bounds = false);

// While alive, libxgboost's log lines on this thread go to sink (when it is set) instead of
// stderr.
class ScopedXgbLogSink {
 public:
  explicit ScopedXgbLogSink(const std::function<void(const std::string&)>* sink);
  ~ScopedXgbLogSink();
  ScopedXgbLogSink(const ScopedXgbLogSink&) = delete;
  ScopedXgbLogSink& operator=(const ScopedXgbLogSink&) = delete;

 private:
  const std::function<void(const std::string&)>* previous_;
};

}  // namespace nimbus::ml::xgb_internal
