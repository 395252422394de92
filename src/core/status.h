// Status: the outcome of an operation that can fail, as a cheap value (after LevelDB's
// Status and Abseil's absl::Status). An error carries the AWS error it will become on the
// wire: either a generic ErrorKind, which the protocol layer maps to the code each service
// family uses (ValidationException vs ValidationError vs InvalidArgument), or an explicit
// AWS error code chosen by a service ("NoSuchEntity", "EntityAlreadyExists"). Only the
// protocol layer turns a Status into bytes.
//
// Thread-safety: a Status is an immutable value; copies may be used from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace nimbus {

enum class ErrorKind {
  kOk,
  kValidation,          // input breaks a model constraint or a service rule
  kSerialization,       // the request body cannot be decoded at all
  kMissingAction,       // the request names no operation, or an unknown one
  kNotImplemented,      // a known operation that Nimbus does not serve yet
  kAccessDenied,        // authenticated, but no policy allows the action
  kUnrecognizedClient,  // the access key is unknown
  kSignatureMismatch,   // the signature does not verify
  kMissingAuth,         // the request is unsigned
  kExpiredToken,        // a session token or presigned URL has expired
  kRequestTimeTooSkewed,
  kNotFound,  // a named resource does not exist
  kConflict,  // the resource already exists or is in use
  kThrottling,
  kInternal,  // a bug or an environment failure: logged, serialized as 500
};

class Value;  // core/value.h

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}
  // An error with an explicit AWS code and HTTP status, used as is on the wire.
  Status(ErrorKind kind, std::string code, int http_status, std::string message)
      : kind_(kind),
        code_(std::move(code)),
        http_status_(http_status),
        message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status Validation(std::string msg) {
    return Status(ErrorKind::kValidation, std::move(msg));
  }
  static Status Serialization(std::string msg) {
    return Status(ErrorKind::kSerialization, std::move(msg));
  }
  static Status NotImplemented(std::string msg) {
    return Status(ErrorKind::kNotImplemented, std::move(msg));
  }
  static Status AccessDenied(std::string msg) {
    return Status(ErrorKind::kAccessDenied, std::move(msg));
  }
  static Status NotFound(std::string msg) { return Status(ErrorKind::kNotFound, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(ErrorKind::kConflict, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(ErrorKind::kInternal, std::move(msg)); }
  // A service-specific AWS error, e.g. Status::Aws("NoSuchEntity", 404, "...").
  static Status Aws(std::string code, int http_status, std::string msg,
                    ErrorKind kind = ErrorKind::kValidation) {
    return Status(kind, std::move(code), http_status, std::move(msg));
  }

  bool ok() const { return kind_ == ErrorKind::kOk; }
  ErrorKind kind() const { return kind_; }
  // Explicit AWS code; empty when the protocol layer should derive it from kind().
  const std::string& code() const { return code_; }
  // Explicit HTTP status; 0 when derived from kind().
  int http_status() const { return http_status_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Members the error carries besides its message, as the service's error shape defines
  // them (sagemaker-runtime's ModelError: OriginalStatusCode, OriginalMessage,
  // LogStreamArn): a map Value that JSON error bodies include; null when none.
  const std::shared_ptr<const Value>& details() const { return details_; }
  Status WithDetails(std::shared_ptr<const Value> details) && {
    details_ = std::move(details);
    return std::move(*this);
  }

 private:
  ErrorKind kind_ = ErrorKind::kOk;
  std::string code_;
  int http_status_ = 0;
  std::string message_;
  std::shared_ptr<const Value> details_;
};

std::string_view ErrorKindName(ErrorKind kind);

}  // namespace nimbus
