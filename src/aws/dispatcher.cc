#include "aws/dispatcher.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "aws/protocol/bindings.h"
#include "aws/protocol/protocol.h"
#include "aws/protocol/routing.h"
#include "aws/sigv4/chunked_payload.h"
#include "aws/sigv4/sigv4.h"
#include "core/compression.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/logging.h"
#include "core/strings.h"

namespace nimbus::aws {
namespace {

// Streamed bodies up to this size are produced into memory by the handler's thread, so
// that the server writes the response in one go instead of handing each chunk between
// threads: the common case of small S3 objects.
constexpr uint64_t kInlineStreamBytes = 256 * 1024;
// A compressed request body may inflate to at most this much.
constexpr size_t kMaxDecompressedBody = 64 << 20;

class StringBodyWriter : public http::BodyWriter {
 public:
  explicit StringBodyWriter(std::string* out) : out_(out) {}
  Status Write(std::string_view data) override {
    out_->append(data);
    return Status::Ok();
  }

 private:
  std::string* out_;
};

// The body as the protocol should read it: gunzipped when the client compressed it
// (Content-Encoding: gzip, the requestcompression trait of CloudWatch's PutMetricData).
// nullopt when it was not compressed. Not for rest-xml (S3), where Content-Encoding
// describes the stored object.
Result<std::optional<std::string>> DecodeContentEncoding(const http::Request& request,
                                                         const std::string& body) {
  std::string encoding = ToLower(request.headers.Get("Content-Encoding"));
  if (encoding.find("gzip") == std::string::npos) return std::optional<std::string>();
  auto decoded = Gunzip(body, kMaxDecompressedBody);
  if (!decoded.ok()) {
    return Status::Serialization("Content-Encoding: gzip, but " + decoded.status().message());
  }
  return std::optional<std::string>(std::move(decoded).value());
}

// Reads a small file body into memory, for the same reason as kInlineStreamBytes.
Result<std::string> ReadFileBody(const http::FileBody& file) {
  std::string out(static_cast<size_t>(file.length), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(file.fd, out.data() + done, out.size() - done,
                        static_cast<off_t>(file.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Status::Internal(std::string("cannot read body file: ") + std::strerror(errno));
    if (n == 0) return Status::Internal("body file is shorter than its declared length");
    done += static_cast<size_t>(n);
  }
  return out;
}

bool IsS3(const protocol::ResolvedOperation& op) { return op.service->name == "s3"; }

}  // namespace

struct Dispatcher::Call {
  std::string request_id;
  double start = 0;
  std::optional<sigv4::SignedRequest> signed_request;
  bool resolved = false;
  protocol::ResolvedOperation op;
  RequestContext ctx;
  std::unique_ptr<http::BodyReader> decoded_body;  // aws-chunked payloads, decoded
};

Dispatcher::Dispatcher(const model::ModelRegistry& models, const ServiceRegistry& services,
                       CredentialStore& credentials, Authorizer& authorizer, const Clock& clock,
                       DispatcherOptions options)
    : models_(models),
      services_(services),
      credentials_(credentials),
      authorizer_(authorizer),
      clock_(clock),
      options_(std::move(options)) {}

http::Response Dispatcher::Handle(http::Request& request) {
  Call call;
  call.request_id = NewRequestId();
  call.start = clock_.Now();
  Result<Value> output = Run(call, request);

  http::Response response;
  if (output.ok()) {
    response = protocol::SerializeResponse(call.op, *output, call.request_id);
    if (call.ctx.response_file) {
      response.body.clear();
      if (call.ctx.response_file->length <= kInlineStreamBytes) {
        Result<std::string> data = ReadFileBody(*call.ctx.response_file);
        if (data.ok()) {
          response.body = std::move(*data);
        } else {
          output = data.status();
          response = protocol::SerializeError(call.op.service, call.op.protocol, data.status(),
                                              call.request_id);
        }
      } else {
        response.body_file = std::move(call.ctx.response_file);
      }
    } else if (call.ctx.response_stream) {
      response.body.clear();
      const std::optional<uint64_t> length = call.ctx.response_stream_length;
      if (length && *length <= kInlineStreamBytes) {
        response.body.reserve(*length);
        StringBodyWriter writer(&response.body);
        if (Status s = call.ctx.response_stream(writer); !s.ok()) {
          output = s;
          response =
              protocol::SerializeError(call.op.service, call.op.protocol, s, call.request_id);
        }
      } else {
        response.body_stream = std::move(call.ctx.response_stream);
        response.stream_length = length;
      }
    }
    if (output.ok() && call.ctx.response_status) response.status = *call.ctx.response_status;
  } else {
    const model::ServiceModel* service = call.resolved ? call.op.service : nullptr;
    protocol::Protocol wire =
        call.resolved ? call.op.protocol : protocol::SniffProtocol(request, nullptr);
    response = protocol::SerializeError(service, wire, output.status(), call.request_id);
  }
  for (const auto& [name, value] : call.ctx.response_headers.entries()) {
    response.headers.Set(name, value);
  }
  if (LogEnabled(LogLevel::kInfo)) {
    Log(LogLevel::kInfo, "request",
        {{"request_id", call.request_id},
         {"method", request.method},
         {"path", request.path},
         {"service", call.ctx.service},
         {"operation", call.ctx.operation},
         {"principal", call.ctx.principal.arn},
         {"status", response.status},
         {"error", output.ok() ? std::string() : output.status().ToString()},
         {"ms", static_cast<int64_t>((clock_.Now() - call.start) * 1000)}});
  }
  return response;
}

Result<Value> Dispatcher::Run(Call& call, http::Request& request) {
  RequestContext& ctx = call.ctx;
  ctx.request_id = call.request_id;
  ctx.http = &request;
  ctx.clock = &clock_;
  ctx.region = options_.default_region;
  ctx.account_id = options_.account_id;

  Result<sigv4::SignedRequest> claim = sigv4::Parse(request);
  std::string signing_name;
  if (claim.ok()) {
    call.signed_request = *claim;
    signing_name = claim->service;
    ctx.region = claim->region;
  }

  // The query protocol names its operation in the form body, so read that first.
  std::string body;
  bool body_read = false;
  if (protocol::IsFormRequest(request)) {
    NIMBUS_ASSIGN_OR_RETURN(body, request.body->ReadAll(options_.max_body_bytes));
    body_read = true;
  }

  // The signature covers the body as sent; the protocol reads it decompressed.
  std::optional<std::string> decoded;
  if (body_read) {
    NIMBUS_ASSIGN_OR_RETURN(decoded, DecodeContentEncoding(request, body));
  }
  NIMBUS_ASSIGN_OR_RETURN(
      call.op, protocol::Resolve(models_, request, signing_name, decoded ? *decoded : body));
  call.resolved = true;
  ctx.service = call.op.service->name;
  ctx.operation = call.op.operation->name;
  const Registration* registration = services_.Find(ctx.service, ctx.operation);

  if (!claim.ok() && claim.status().kind() != ErrorKind::kMissingAuth) return claim.status();
  if (!claim.ok() && !(registration && registration->anonymous)) {
    return Status(ErrorKind::kMissingAuth,
                  "Request is missing Authentication Token: sign it with AWS Signature Version 4");
  }

  // A body that is not streamed is read now: its hash is part of the signature. Bodies
  // in aws-chunked encoding are read after authentication, through the decoder.
  const bool streams = protocol::StreamsRequestBody(*call.op.operation);
  const bool chunked = call.signed_request && StartsWith(claim->payload_hash, "STREAMING-");
  if (!body_read && !streams && !chunked) {
    NIMBUS_ASSIGN_OR_RETURN(body, request.body->ReadAll(options_.max_body_bytes));
    body_read = true;
  }
  if (call.signed_request) NIMBUS_RETURN_IF_ERROR(Authenticate(call, request, body, body_read));

  if (body_read && !decoded && call.op.service->protocol != "rest-xml") {
    NIMBUS_ASSIGN_OR_RETURN(decoded, DecodeContentEncoding(request, body));
  }
  NIMBUS_ASSIGN_OR_RETURN(Value input,
                          protocol::ParseRequest(call.op, request, decoded ? *decoded : body));

  std::string resource = "*";
  if (registration && registration->resource) resource = registration->resource(input, ctx);
  ctx.authorize = [this, &ctx](std::string_view action, std::string_view target) {
    if (ctx.principal.type == Principal::Type::kAnonymous) {
      return Status::AccessDenied("Anonymous callers may not perform " + std::string(action));
    }
    return authorizer_.Authorize(ctx.principal, action, target);
  };
  if (ctx.principal.type != Principal::Type::kAnonymous) {
    std::string action = registration && !registration->action.empty()
                             ? registration->action
                             : call.op.service->iam_prefix + ":" + ctx.operation;
    NIMBUS_RETURN_IF_ERROR(ctx.authorize(action, resource));
  }

  if (call.op.operation->input) {
    NIMBUS_RETURN_IF_ERROR(protocol::Validate(*call.op.operation->input, input));
  }
  if (!registration) {
    return Status::NotImplemented("The operation " + ctx.operation + " of service " + ctx.service +
                                  " is not implemented by Nimbus yet");
  }
  return registration->handler(input, ctx);
}

// Verifies the SigV4 signature and establishes ctx.principal. When body_read, `body` is
// the whole body and its hash is checked; an aws-chunked body is decoded into `body`
// here unless the operation streams it.
Status Dispatcher::Authenticate(Call& call, http::Request& request, std::string& body,
                                bool body_read) {
  const sigv4::SignedRequest& claim = *call.signed_request;
  RequestContext& ctx = call.ctx;

  Result<Credential> credential = credentials_.Lookup(claim.access_key_id);
  if (!credential.ok()) {
    if (credential.status().kind() != ErrorKind::kNotFound) return credential.status();
    if (IsS3(call.op)) {
      return Status::Aws("InvalidAccessKeyId", 403,
                         "The AWS Access Key Id you provided does not exist in our records.",
                         ErrorKind::kUnrecognizedClient);
    }
    return Status(ErrorKind::kUnrecognizedClient,
                  "The security token included in the request is invalid.");
  }
  if (!credential->active) {
    return Status(ErrorKind::kUnrecognizedClient,
                  "The security token included in the request is invalid.");
  }
  if (credential->session_token != claim.session_token) {
    return Status(ErrorKind::kUnrecognizedClient,
                  "The security token included in the request is invalid.");
  }
  const double now = clock_.Now();
  if (credential->expiration > 0 && now >= credential->expiration) {
    return Status(ErrorKind::kExpiredToken,
                  "The security token included in the request is expired");
  }

  // The payload hash that was signed: a literal the request declared (UNSIGNED-PAYLOAD,
  // STREAMING-...), else the hash of the body. S3 may sign a declared hex hash before the
  // body arrives; a body read here is checked against it, a streamed one by its handler.
  const bool s3 = IsS3(call.op);
  std::string payload_hash(sigv4::PayloadHashBeforeBody(claim, s3));
  const bool literal =
      payload_hash == sigv4::kUnsignedPayload || StartsWith(payload_hash, "STREAMING-");
  if (body_read && !literal) {
    std::string computed = HexEncode(Sha256(body));
    if (!claim.payload_hash.empty() && claim.payload_hash != computed) {
      return sigv4::PayloadHashMismatch(s3);
    }
    payload_hash = std::move(computed);
  } else if (payload_hash.empty()) {
    payload_hash = claim.payload_hash;
  }

  sigv4::VerifyOptions options;
  options.now = now;
  options.max_skew_seconds = options_.max_skew_seconds;
  options.s3 = s3;
  NIMBUS_RETURN_IF_ERROR(
      sigv4::Verify(claim, request, credential->secret_access_key, payload_hash, options));

  if (StartsWith(claim.payload_hash, "STREAMING-")) {
    NIMBUS_ASSIGN_OR_RETURN(call.decoded_body, sigv4::ChunkedBodyReader::Create(
                                                   request, claim, credential->secret_access_key));
    request.body = call.decoded_body.get();
    if (!protocol::StreamsRequestBody(*call.op.operation)) {
      NIMBUS_ASSIGN_OR_RETURN(body, request.body->ReadAll(options_.max_body_bytes));
    }
  }

  ctx.principal = credential->principal;
  ctx.principal.access_key_id = claim.access_key_id;
  if (!ctx.principal.account_id.empty()) ctx.account_id = ctx.principal.account_id;
  return Status::Ok();
}

}  // namespace nimbus::aws
