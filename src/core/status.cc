#include "core/status.h"

namespace nimbus {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk:
      return "Ok";
    case ErrorKind::kValidation:
      return "Validation";
    case ErrorKind::kSerialization:
      return "Serialization";
    case ErrorKind::kMissingAction:
      return "MissingAction";
    case ErrorKind::kNotImplemented:
      return "NotImplemented";
    case ErrorKind::kAccessDenied:
      return "AccessDenied";
    case ErrorKind::kUnrecognizedClient:
      return "UnrecognizedClient";
    case ErrorKind::kSignatureMismatch:
      return "SignatureMismatch";
    case ErrorKind::kMissingAuth:
      return "MissingAuth";
    case ErrorKind::kExpiredToken:
      return "ExpiredToken";
    case ErrorKind::kRequestTimeTooSkewed:
      return "RequestTimeTooSkewed";
    case ErrorKind::kNotFound:
      return "NotFound";
    case ErrorKind::kConflict:
      return "Conflict";
    case ErrorKind::kThrottling:
      return "Throttling";
    case ErrorKind::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(code_.empty() ? ErrorKindName(kind_) : std::string_view(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace nimbus
