// Result<T>: a T or the Status that explains why there is none (absl::StatusOr's shape),
// plus the propagation macros used across the tree:
//   NIMBUS_RETURN_IF_ERROR(expr)        expr is a Status or a Result<U>
//   NIMBUS_ASSIGN_OR_RETURN(lhs, expr)  expr is a Result<U>; lhs may declare a variable
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "core/status.h"

namespace nimbus {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok()
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

namespace internal {
inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace nimbus

#define NIMBUS_CONCAT_INNER(a, b) a##b
#define NIMBUS_CONCAT(a, b) NIMBUS_CONCAT_INNER(a, b)

// The Status is copied out while the expression's temporaries are alive, so that
// NIMBUS_RETURN_IF_ERROR(MakeResult().status()) does not return a dangling reference.
#define NIMBUS_RETURN_IF_ERROR(expr)                                      \
  do {                                                                    \
    ::nimbus::Status nimbus_status_ = ::nimbus::internal::StatusOf(expr); \
    if (!nimbus_status_.ok()) return nimbus_status_;                      \
  } while (0)

#define NIMBUS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#define NIMBUS_ASSIGN_OR_RETURN(lhs, expr) \
  NIMBUS_ASSIGN_OR_RETURN_IMPL(NIMBUS_CONCAT(nimbus_result_, __LINE__), lhs, expr)
