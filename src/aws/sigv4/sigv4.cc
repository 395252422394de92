#include "aws/sigv4/sigv4.h"

#include <algorithm>
#include <cmath>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus::aws::sigv4 {
namespace {

constexpr std::string_view kTerminator = "aws4_request";
constexpr std::string_view kMismatchMessage =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";
constexpr std::string_view kS3MismatchMessage =
    "The request signature we calculated does not match the signature you provided. Check your "
    "key and signing method.";
constexpr std::string_view kQueryParamsRequired =
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";
// Headers SDKs leave unsigned because proxies rewrite them (botocore's list).
constexpr std::string_view kUnsignedHeaders[] = {"authorization", "user-agent", "expect",
                                                 "x-amzn-trace-id"};

bool IsDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// UNSIGNED-PAYLOAD and the STREAMING-* family: declared values that stand for the body.
bool IsPayloadLiteral(std::string_view s) {
  return s == kUnsignedPayload || StartsWith(s, "STREAMING-");
}

// yyyymmddThhmmssZ, strictly.
bool ParseAmzDate(const std::string& text, double* epoch_seconds) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return false;
  if (!IsDigits(std::string_view(text).substr(0, 8)) ||
      !IsDigits(std::string_view(text).substr(9, 6))) {
    return false;
  }
  return ParseIso8601(text, epoch_seconds);
}

// The value of the first query parameter called `name` (percent-decoded), without parsing
// the whole query: the header-auth path only needs to know that there is none.
std::optional<std::string> FindQueryParam(std::string_view raw_query, std::string_view name) {
  while (!raw_query.empty()) {
    size_t amp = raw_query.find('&');
    std::string_view part = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    bool match = key.find('%') == std::string_view::npos ? key == name : UriDecode(key) == name;
    if (match) {
      return eq == std::string_view::npos ? std::string() : UriDecode(part.substr(eq + 1));
    }
  }
  return std::nullopt;
}

// Appends a header value with leading/trailing whitespace removed and inner runs of
// whitespace collapsed to one space (SigV4's Trimall).
void AppendTrimAll(std::string_view value, std::string& out) {
  value = Trim(value);
  bool in_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space) out.push_back(' ');
    in_space = false;
    out.push_back(c);
  }
}

// RFC 3986 section 5.2.4 dot-segment removal, also dropping empty segments (consecutive
// slashes), as AWS services other than S3 normalize paths.
std::string NormalizePath(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(start, slash - start);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = slash + 1;
  }
  std::string out;
  out.reserve(path.size());
  if (path.front() == '/') out.push_back('/');
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  if (path.back() == '/' && !segments.empty()) out.push_back('/');
  return out;
}

std::string JoinSignedHeaders(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string BuildScope(std::string_view date, std::string_view region, std::string_view service) {
  std::string scope;
  scope.reserve(date.size() + region.size() + service.size() + kTerminator.size() + 3);
  scope.append(date).append("/").append(region).append("/").append(service).append("/");
  scope.append(kTerminator);
  return scope;
}

// An error in how the signature is written: IncompleteSignature for most services; S3 names
// the part that is malformed.
Status Malformed(bool s3, bool presigned, std::string message) {
  if (!s3) return Status::Aws("IncompleteSignature", 400, std::move(message));
  if (presigned) return Status::Aws("AuthorizationQueryParametersError", 400, std::move(message));
  return Status::Aws("AuthorizationHeaderMalformed", 400,
                     "The authorization header is malformed; " + message);
}

Status ParseCredential(std::string_view credential, bool s3, bool presigned, SignedRequest* sr) {
  std::vector<std::string> parts = Split(credential, '/');
  if (parts.size() != 5 || parts[0].empty() || parts[2].empty() || parts[3].empty()) {
    return Malformed(s3, presigned,
                     "the Credential is mal-formed; expecting "
                     "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
  }
  if (parts[4] != kTerminator) {
    return Malformed(s3, presigned,
                     "Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                         parts[4] + "'.");
  }
  if (parts[1].size() != 8 || !IsDigits(parts[1])) {
    return Malformed(s3, presigned, "Invalid credential date '" + parts[1] + "'.");
  }
  sr->access_key_id = std::move(parts[0]);
  sr->date = std::move(parts[1]);
  sr->region = std::move(parts[2]);
  sr->service = std::move(parts[3]);
  return Status::Ok();
}

Status ParseSignedHeaders(std::string_view list, bool s3, bool presigned, SignedRequest* sr) {
  for (auto& name : Split(list, ';')) {
    if (name.empty()) {
      return Malformed(s3, presigned, "SignedHeaders contains an empty header name.");
    }
    sr->signed_headers.push_back(ToLower(name));
  }
  return Status::Ok();
}

Status ParseHeaderAuth(const std::string& authorization, const http::Request& request,
                       SignedRequest* sr) {
  std::string_view value = Trim(authorization);
  size_t space = value.find(' ');
  std::string_view algorithm = value.substr(0, space);
  bool s3 = value.find("/s3/") != std::string_view::npos;
  if (algorithm != kAlgorithm) {
    if (algorithm == "AWS" || algorithm == "AWS4-ECDSA-P256-SHA256") {
      // Signature V2 (still used by old S3 clients) and SigV4a are not served.
      return Status::Aws("InvalidRequest", 400,
                         "The authorization mechanism you have provided is not supported. Please "
                         "use AWS4-HMAC-SHA256.");
    }
    return Malformed(s3, false, "Unsupported AWS 'algorithm': '" + std::string(algorithm) + "'.");
  }
  std::string_view credential, signed_headers, signature;
  bool has_credential = false, has_signed_headers = false, has_signature = false;
  std::string_view rest = space == std::string_view::npos ? "" : value.substr(space + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view part = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(part.substr(0, eq));
    std::string_view val = Trim(part.substr(eq + 1));
    if (key == "Credential") {
      credential = val;
      has_credential = true;
    } else if (key == "SignedHeaders") {
      signed_headers = val;
      has_signed_headers = true;
    } else if (key == "Signature") {
      signature = val;
      has_signature = true;
    }
  }
  if (!has_credential || !has_signed_headers || !has_signature) {
    if (s3) {
      return Malformed(true, false,
                       "the authorization header requires three components: Credential, "
                       "SignedHeaders, and Signature.");
    }
    std::string message;
    if (!has_credential) message += "Authorization header requires 'Credential' parameter. ";
    if (!has_signature) message += "Authorization header requires 'Signature' parameter. ";
    if (!has_signed_headers) message += "Authorization header requires 'SignedHeaders' parameter. ";
    message += "Authorization=" + authorization;
    return Malformed(false, false, std::move(message));
  }
  NIMBUS_RETURN_IF_ERROR(ParseCredential(credential, s3, false, sr));
  s3 = sr->service == "s3";
  NIMBUS_RETURN_IF_ERROR(ParseSignedHeaders(signed_headers, s3, false, sr));
  sr->signature = std::string(signature);

  if (const std::string* amz_date = request.headers.Find("X-Amz-Date")) {
    if (!ParseAmzDate(*amz_date, &sr->request_time)) {
      if (s3) {
        return Status::Aws("AccessDenied", 403,
                           "AWS authentication requires a valid Date or x-amz-date header");
      }
      return Malformed(false, false,
                       "Date must be in ISO-8601 'basic format'. Got '" + *amz_date +
                           "'. See http://en.wikipedia.org/wiki/ISO_8601");
    }
    sr->amz_date = *amz_date;
  } else if (const std::string* date = request.headers.Find("Date")) {
    if (!ParseHttpDate(*date, &sr->request_time)) {
      if (s3) {
        return Status::Aws("AccessDenied", 403,
                           "AWS authentication requires a valid Date or x-amz-date header");
      }
      return Malformed(false, false, "Date header is not a valid RFC 1123 date: '" + *date + "'.");
    }
    sr->amz_date = FormatAmzDate(sr->request_time);
  } else {
    if (s3) {
      return Status::Aws("AccessDenied", 403,
                         "AWS authentication requires a valid Date or x-amz-date header");
    }
    return Malformed(false, false,
                     "Authorization header requires existence of either a 'X-Amz-Date' or a "
                     "'Date' header. Authorization=" +
                         authorization);
  }
  return Status::Ok();
}

Status ParseQueryAuth(const http::Request& request, SignedRequest* sr) {
  sr->presigned = true;
  const std::string *algorithm = nullptr, *credential = nullptr, *amz_date = nullptr,
                    *expires = nullptr, *signed_headers = nullptr, *signature = nullptr,
                    *token = nullptr;
  auto params = request.QueryParams();
  for (const auto& [name, value] : params) {
    if (name == "X-Amz-Algorithm") {
      algorithm = &value;
    } else if (name == "X-Amz-Credential") {
      credential = &value;
    } else if (name == "X-Amz-Date") {
      amz_date = &value;
    } else if (name == "X-Amz-Expires") {
      expires = &value;
    } else if (name == "X-Amz-SignedHeaders") {
      signed_headers = &value;
    } else if (name == "X-Amz-Signature") {
      signature = &value;
    } else if (name == "X-Amz-Security-Token") {
      token = &value;
    }
  }
  bool s3 = credential && credential->find("/s3/") != std::string::npos;
  if (algorithm && *algorithm != kAlgorithm) {
    return Malformed(s3, true, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  }
  if (!algorithm || !credential || !amz_date || !expires || !signed_headers || !signature) {
    return Malformed(s3, true, std::string(kQueryParamsRequired));
  }
  NIMBUS_RETURN_IF_ERROR(ParseCredential(*credential, s3, true, sr));
  s3 = sr->service == "s3";
  NIMBUS_RETURN_IF_ERROR(ParseSignedHeaders(*signed_headers, s3, true, sr));
  if (!ParseAmzDate(*amz_date, &sr->request_time)) {
    return Malformed(s3, true,
                     "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  }
  sr->amz_date = *amz_date;
  std::optional<int64_t> seconds = ParseInt(*expires);
  if (!seconds) return Malformed(s3, true, "X-Amz-Expires should be a number");
  if (*seconds < 1) return Malformed(s3, true, "X-Amz-Expires must be at least 1 second");
  if (*seconds > kMaxPresignExpires) {
    return Malformed(s3, true,
                     "X-Amz-Expires must be less than a week (in seconds) that is 604800");
  }
  sr->expires = *seconds;
  sr->signature = *signature;
  if (token) sr->session_token = *token;
  return Status::Ok();
}

// A small LRU of derived signing keys: deriving one costs four HMACs, and a client reuses
// one key for a whole day.
class SigningKeyCache {
 public:
  static constexpr size_t kCapacity = 1024;

  std::string Get(std::string_view secret, std::string_view date, std::string_view region,
                  std::string_view service) {
    std::string id;
    id.reserve(secret.size() + date.size() + region.size() + service.size() + 3);
    id.append(secret).push_back('\0');
    id.append(date).push_back('\0');
    id.append(region).push_back('\0');
    id.append(service);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = index_.find(id);
      if (it != index_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->second;
      }
    }
    std::string key = HmacSha256(std::string("AWS4").append(secret), date);
    key = HmacSha256(key, region);
    key = HmacSha256(key, service);
    key = HmacSha256(key, kTerminator);
    std::lock_guard<std::mutex> lock(mu_);
    if (index_.find(id) == index_.end()) {
      lru_.emplace_front(std::move(id), key);
      index_.emplace(lru_.front().first, lru_.begin());
      if (lru_.size() > kCapacity) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
      }
    }
    return key;
  }

 private:
  using Entry = std::pair<std::string, std::string>;  // id, derived key
  std::mutex mu_;
  std::list<Entry> lru_;  // GUARDED_BY(mu_), most recent first
  // Keys view the ids held by lru_'s nodes, which never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // GUARDED_BY(mu_)
};

SigningKeyCache& KeyCache() {
  static auto* cache = new SigningKeyCache();
  return *cache;
}

std::string SkewMessage(const SignedRequest& sr, const VerifyOptions& options) {
  if (options.s3) {
    return "The difference between the request time and the current time is too large.";
  }
  std::string minutes = std::to_string(static_cast<int64_t>(options.max_skew_seconds / 60));
  if (sr.request_time < options.now) {
    return "Signature expired: " + sr.amz_date + " is now earlier than " +
           FormatAmzDate(options.now - options.max_skew_seconds) + " (" +
           FormatAmzDate(options.now) + " - " + minutes + " min.)";
  }
  return "Signature not yet current: " + sr.amz_date + " is still later than " +
         FormatAmzDate(options.now + options.max_skew_seconds) + " (" + FormatAmzDate(options.now) +
         " + " + minutes + " min.)";
}

Status CheckTime(const SignedRequest& sr, const VerifyOptions& options) {
  if (sr.presigned) {
    // A presigned URL is good from its signing time (give or take the skew) until it
    // expires, even when that is days later.
    if (sr.request_time > options.now + options.max_skew_seconds) {
      if (options.s3) {
        return Status::Aws("AccessDenied", 403, "Request is not valid yet",
                           ErrorKind::kRequestTimeTooSkewed);
      }
      return Status(ErrorKind::kRequestTimeTooSkewed, SkewMessage(sr, options));
    }
    if (options.now > sr.request_time + static_cast<double>(sr.expires)) {
      if (options.s3) {
        return Status::Aws("AccessDenied", 403, "Request has expired", ErrorKind::kExpiredToken);
      }
      return Status(
          ErrorKind::kExpiredToken,
          "Signature expired: " + FormatAmzDate(sr.request_time + static_cast<double>(sr.expires)) +
              " is now earlier than " + FormatAmzDate(options.now) + ".");
    }
    return Status::Ok();
  }
  if (std::fabs(options.now - sr.request_time) > options.max_skew_seconds) {
    return Status(ErrorKind::kRequestTimeTooSkewed, SkewMessage(sr, options));
  }
  return Status::Ok();
}

// The payload hash that enters the canonical request, or the error the declared
// x-amz-content-sha256 deserves.
Result<std::string_view> CanonicalPayloadHash(const SignedRequest& sr,
                                              std::string_view payload_hash,
                                              const VerifyOptions& options) {
  std::string_view declared = sr.payload_hash;
  if (declared.empty()) {
    if (options.s3 && sr.presigned) return kUnsignedPayload;
    if (options.s3) {
      return Status::Aws("InvalidRequest", 400,
                         "Missing required header for this request: x-amz-content-sha256");
    }
    return payload_hash;
  }
  if (IsPayloadLiteral(declared)) return declared;
  if (!IsLowerHex64(declared)) {
    if (options.s3) {
      return Status::Aws("InvalidArgument", 400,
                         "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                         "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                         "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.");
    }
    return PayloadHashMismatch(false);
  }
  if (declared != payload_hash) return PayloadHashMismatch(options.s3);
  return declared;
}

}  // namespace

std::string SignedRequest::Scope() const { return BuildScope(date, region, service); }

Result<SignedRequest> Parse(const http::Request& request) {
  const std::string* authorization = request.headers.Find("Authorization");
  bool query_auth = FindQueryParam(request.query, "X-Amz-Algorithm").has_value();
  if (!authorization && !query_auth) {
    return Status(ErrorKind::kMissingAuth, "Request is missing Authentication Token");
  }
  if (authorization && query_auth) {
    return Status::Aws("InvalidArgument", 400,
                       "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                       "parameter, Signature query string parameter or the Authorization header "
                       "should be specified");
  }
  SignedRequest sr;
  if (authorization) {
    NIMBUS_RETURN_IF_ERROR(ParseHeaderAuth(*authorization, request, &sr));
  } else {
    NIMBUS_RETURN_IF_ERROR(ParseQueryAuth(request, &sr));
  }
  if (const std::string* token = request.headers.Find("X-Amz-Security-Token")) {
    sr.session_token = *token;
  }
  sr.payload_hash = request.headers.Get("x-amz-content-sha256");
  return sr;
}

std::string_view PayloadHashBeforeBody(const SignedRequest& signed_request, bool s3) {
  std::string_view declared = signed_request.payload_hash;
  if (IsPayloadLiteral(declared)) return declared;
  if (!s3) return {};
  if (declared.empty() && signed_request.presigned) return kUnsignedPayload;
  return IsLowerHex64(declared) ? declared : std::string_view();
}

Status PayloadHashMismatch(bool s3) {
  if (s3) {
    return Status::Aws("XAmzContentSHA256Mismatch", 400,
                       "The provided 'x-amz-content-sha256' header does not match what was "
                       "computed.");
  }
  return Status(ErrorKind::kSignatureMismatch, std::string(kMismatchMessage));
}

Status Verify(const SignedRequest& signed_request, const http::Request& request,
              std::string_view secret_access_key, std::string_view payload_hash,
              const VerifyOptions& options) {
  const SignedRequest& sr = signed_request;
  if (std::find(sr.signed_headers.begin(), sr.signed_headers.end(), "host") ==
      sr.signed_headers.end()) {
    return Status(ErrorKind::kSignatureMismatch,
                  "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  if (std::string_view(sr.amz_date).substr(0, 8) != sr.date) {
    if (options.s3) {
      return Malformed(true, sr.presigned,
                       "Invalid credential date. Date is not the same as X-Amz-Date.");
    }
    return Status(ErrorKind::kSignatureMismatch,
                  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                  "date from HTTP: '" +
                      sr.date + "' != '" + sr.amz_date.substr(0, 8) + "', from '" + sr.amz_date +
                      "'.");
  }
  NIMBUS_RETURN_IF_ERROR(CheckTime(sr, options));
  NIMBUS_ASSIGN_OR_RETURN(std::string_view canonical_payload,
                          CanonicalPayloadHash(sr, payload_hash, options));

  std::string canonical =
      CanonicalRequest(request, sr.signed_headers, canonical_payload, options.s3, sr.presigned);
  std::string expected = Signature(SigningKey(secret_access_key, sr.date, sr.region, sr.service),
                                   StringToSign(sr.amz_date, sr.Scope(), canonical));
  if (!ConstantTimeEquals(expected, sr.signature)) {
    return Status(ErrorKind::kSignatureMismatch,
                  std::string(options.s3 ? kS3MismatchMessage : kMismatchMessage));
  }
  return Status::Ok();
}

std::string SignRequest(http::Request& request, std::string_view access_key_id,
                        std::string_view secret, std::string_view region, std::string_view service,
                        double now, std::string_view payload, std::string_view session_token,
                        bool s3) {
  return SignRequestWithPayloadHash(request, access_key_id, secret, region, service, now,
                                    HexEncode(Sha256(payload)), session_token, s3);
}

std::string SignRequestWithPayloadHash(http::Request& request, std::string_view access_key_id,
                                       std::string_view secret, std::string_view region,
                                       std::string_view service, double now,
                                       std::string_view payload_hash,
                                       std::string_view session_token, bool s3) {
  if (request.path.empty() && !request.target.empty()) request.SplitTarget();
  request.headers.Remove("Authorization");
  std::string amz_date = FormatAmzDate(now);
  request.headers.Set("X-Amz-Date", amz_date);
  if (!session_token.empty()) {
    request.headers.Set("X-Amz-Security-Token", std::string(session_token));
  }
  if (s3 || IsPayloadLiteral(payload_hash)) {
    request.headers.Set("x-amz-content-sha256", std::string(payload_hash));
  }
  std::vector<std::string> names;
  for (const auto& [name, value] : request.headers.entries()) {
    std::string lower = ToLower(name);
    if (std::find(std::begin(kUnsignedHeaders), std::end(kUnsignedHeaders), lower) ==
        std::end(kUnsignedHeaders)) {
      names.push_back(std::move(lower));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::string date = amz_date.substr(0, 8);
  std::string scope = BuildScope(date, region, service);
  std::string signature = Signature(SigningKey(secret, date, region, service),
                                    StringToSign(amz_date, scope,
                                                 CanonicalRequest(request, names, payload_hash, s3,
                                                                  /*presigned=*/false)));
  std::string authorization(kAlgorithm);
  authorization.append(" Credential=").append(access_key_id).append("/").append(scope);
  authorization.append(", SignedHeaders=").append(JoinSignedHeaders(names));
  authorization.append(", Signature=").append(signature);
  request.headers.Set("Authorization", std::move(authorization));
  return signature;
}

std::string Presign(std::string_view method, std::string_view host, std::string_view path,
                    std::string_view query, std::string_view access_key_id, std::string_view secret,
                    std::string_view region, std::string_view service, double now, int64_t expires,
                    std::string_view session_token, bool s3) {
  std::string amz_date = FormatAmzDate(now);
  std::string date = amz_date.substr(0, 8);
  std::string scope = BuildScope(date, region, service);

  http::Request request;
  request.method = std::string(method);
  request.path = std::string(path);
  request.query = std::string(query);
  if (!request.query.empty()) request.query.push_back('&');
  request.query.append("X-Amz-Algorithm=").append(kAlgorithm);
  request.query.append("&X-Amz-Credential=")
      .append(UriEncode(std::string(access_key_id).append("/").append(scope)));
  request.query.append("&X-Amz-Date=").append(amz_date);
  request.query.append("&X-Amz-Expires=").append(std::to_string(expires));
  request.query.append("&X-Amz-SignedHeaders=host");
  if (!session_token.empty()) {
    request.query.append("&X-Amz-Security-Token=").append(UriEncode(session_token));
  }
  request.headers.Add("Host", std::string(host));

  std::string canonical = CanonicalRequest(request, {"host"}, s3 ? kUnsignedPayload : kEmptySha256,
                                           s3, /*presigned=*/true);
  std::string signature = Signature(SigningKey(secret, date, region, service),
                                    StringToSign(amz_date, scope, canonical));
  std::string target = request.path.empty() ? "/" : request.path;
  target.append("?").append(request.query).append("&X-Amz-Signature=").append(signature);
  return target;
}

std::string CanonicalUri(std::string_view path, bool s3) {
  if (s3) return path.empty() ? "/" : std::string(path);
  // The path arrives URI-encoded once; encoding it again is the "encode twice" of the spec.
  return UriEncode(NormalizePath(path), /*keep_slash=*/true);
}

std::string CanonicalQuery(std::string_view raw_query, bool presigned) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!raw_query.empty()) {
    size_t amp = raw_query.find('&');
    std::string_view part = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string name = UriDecode(part.substr(0, eq));
    if (presigned && name == "X-Amz-Signature") continue;
    std::string value = eq == std::string_view::npos ? "" : UriDecode(part.substr(eq + 1));
    params.emplace_back(UriEncode(name), UriEncode(value));
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

std::string CanonicalRequest(const http::Request& request,
                             const std::vector<std::string>& signed_headers,
                             std::string_view payload_hash, bool s3, bool presigned) {
  std::string out;
  out.reserve(512);
  out.append(request.method).push_back('\n');
  out.append(CanonicalUri(request.path, s3)).push_back('\n');
  out.append(CanonicalQuery(request.query, presigned)).push_back('\n');
  for (const auto& name : signed_headers) {
    out.append(name).push_back(':');
    bool first = true;
    for (const auto& [header, value] : request.headers.entries()) {
      if (!EqualsIgnoreCase(header, name)) continue;
      if (!first) out.push_back(',');
      first = false;
      AppendTrimAll(value, out);
    }
    out.push_back('\n');
  }
  out.push_back('\n');
  out.append(JoinSignedHeaders(signed_headers)).push_back('\n');
  out.append(payload_hash);
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out;
  out.reserve(kAlgorithm.size() + amz_date.size() + scope.size() + 67);
  out.append(kAlgorithm).push_back('\n');
  out.append(amz_date).push_back('\n');
  out.append(scope).push_back('\n');
  out.append(HexEncode(Sha256(canonical_request)));
  return out;
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  return KeyCache().Get(secret, date, region, service);
}

std::string Signature(std::string_view signing_key, std::string_view string_to_sign) {
  return HexEncode(HmacSha256(signing_key, string_to_sign));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length of a signature is no secret; its content is.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace nimbus::aws::sigv4
