#include "aws/protocol/errors.h"

#include "aws/protocol/cbor.h"
#include "aws/protocol/query.h"
#include "aws/protocol/rest_xml.h"
#include "core/json.h"
#include "core/logging.h"
#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {

struct Row {
  ErrorKind kind;
  WireError json;
  WireError query;
  WireError rest_xml;
};

// ErrorKind -> (code, HTTP status) for the JSON, query and rest-xml families.
const Row kTable[] = {
    {ErrorKind::kValidation,
     {"ValidationException", 400},
     {"ValidationError", 400},
     {"InvalidArgument", 400}},
    {ErrorKind::kSerialization,
     {"SerializationException", 400},
     {"MalformedInput", 400},
     {"MalformedXML", 400}},
    {ErrorKind::kMissingAction,
     {"UnknownOperationException", 400},
     {"InvalidAction", 400},
     {"NotImplemented", 501}},
    {ErrorKind::kNotImplemented,
     {"NotImplemented", 501},
     {"NotImplemented", 501},
     {"NotImplemented", 501}},
    {ErrorKind::kAccessDenied,
     {"AccessDeniedException", 400},
     {"AccessDenied", 403},
     {"AccessDenied", 403}},
    {ErrorKind::kUnrecognizedClient,
     {"UnrecognizedClientException", 400},
     {"InvalidClientTokenId", 403},
     {"InvalidAccessKeyId", 403}},
    {ErrorKind::kSignatureMismatch,
     {"InvalidSignatureException", 400},
     {"SignatureDoesNotMatch", 403},
     {"SignatureDoesNotMatch", 403}},
    {ErrorKind::kMissingAuth,
     {"MissingAuthenticationTokenException", 400},
     {"MissingAuthenticationToken", 403},
     {"AccessDenied", 403}},
    {ErrorKind::kExpiredToken,
     {"ExpiredTokenException", 400},
     {"ExpiredToken", 400},
     {"ExpiredToken", 400}},
    {ErrorKind::kRequestTimeTooSkewed,
     {"InvalidSignatureException", 400},
     {"SignatureDoesNotMatch", 403},
     {"RequestTimeTooSkewed", 403}},
    {ErrorKind::kNotFound,
     {"ResourceNotFoundException", 400},
     {"NoSuchEntity", 404},
     {"NoSuchKey", 404}},
    {ErrorKind::kConflict,
     {"ResourceInUseException", 400},
     {"EntityAlreadyExists", 409},
     {"Conflict", 409}},
    {ErrorKind::kThrottling, {"ThrottlingException", 400}, {"Throttling", 400}, {"SlowDown", 503}},
    {ErrorKind::kInternal,
     {"InternalFailure", 500},
     {"InternalFailure", 500},
     {"InternalError", 500}},
};

const WireError& Pick(const Row& row, ErrorFamily family) {
  switch (family) {
    case ErrorFamily::kJson:
      return row.json;
    case ErrorFamily::kQuery:
      return row.query;
    case ErrorFamily::kRestXml:
      return row.rest_xml;
  }
  return row.json;
}

std::string JsonContentType(const model::ServiceModel* service) {
  std::string version = service && !service->json_version.empty() ? service->json_version : "1.0";
  return "application/x-amz-json-" + version;
}

}  // namespace

ErrorFamily FamilyOf(Protocol protocol) {
  switch (protocol) {
    case Protocol::kQuery:
      return ErrorFamily::kQuery;
    case Protocol::kRestXml:
      return ErrorFamily::kRestXml;
    default:
      return ErrorFamily::kJson;
  }
}

WireError MapError(const Status& status, ErrorFamily family) {
  WireError out{"InternalFailure", 500};
  for (const Row& row : kTable) {
    if (row.kind == status.kind()) {
      out = Pick(row, family);
      break;
    }
  }
  if (!status.code().empty()) out.code = status.code();
  if (status.http_status() != 0) out.http_status = status.http_status();
  return out;
}

http::Response SerializeError(const model::ServiceModel* service, Protocol protocol,
                              const Status& status, std::string_view request_id) {
  WireError e = MapError(status, FamilyOf(protocol));
  // JSON services that name their validation error ValidationError (sagemaker-runtime)
  // rather than ValidationException get it under their own name.
  if (status.kind() == ErrorKind::kValidation && status.code().empty() && service &&
      e.code == "ValidationException" && service->FindShape("ValidationException") == nullptr &&
      service->FindShape("ValidationError") != nullptr) {
    e.code = "ValidationError";
  }
  if (e.http_status >= 500) {
    Log(LogLevel::kError, "aws_error",
        {{"service", service ? service->name : ""},
         {"code", e.code},
         {"status", e.http_status},
         {"kind", std::string(ErrorKindName(status.kind()))},
         {"message", status.message()},
         {"request_id", request_id}});
  }
  http::Response r;
  r.status = e.http_status;
  r.headers.Set("x-amzn-RequestId", std::string(request_id));
  Value body = Value::Object({{"__type", e.code}, {"message", status.message()}});
  if (status.details() && status.details()->is_map()) {
    for (const auto& [name, value] : status.details()->map()) body[name] = value;
  }
  switch (protocol) {
    case Protocol::kJson:
      r.headers.Set("Content-Type", JsonContentType(service));
      r.headers.Set("x-amzn-ErrorType", e.code);
      r.body = ToJson(body);
      break;
    case Protocol::kRestJson:
      r.headers.Set("Content-Type", "application/json");
      r.headers.Set("x-amzn-ErrorType", e.code);
      r.body = ToJson(body);
      break;
    case Protocol::kRpcV2Cbor:
      r.headers.Set("Content-Type", "application/cbor");
      r.headers.Set("smithy-protocol", "rpc-v2-cbor");
      r.body = EncodeCbor(body);
      break;
    case Protocol::kQuery:
      r.headers.Set("Content-Type", "text/xml");
      r.body =
          SerializeQueryError(service, e.code, status.message(), e.http_status < 500, request_id);
      break;
    case Protocol::kRestXml:
      r.headers.Set("Content-Type", "application/xml");
      r.headers.Set("x-amz-request-id", std::string(request_id));
      if (service && service->name == "s3") {
        r.headers.Set("x-amz-id-2", Base64Encode(request_id));
      }
      r.body = SerializeRestXmlError(e.code, status.message(), request_id);
      break;
  }
  return r;
}

}  // namespace nimbus::aws::protocol
