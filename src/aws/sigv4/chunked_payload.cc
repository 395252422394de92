#include "aws/sigv4/chunked_payload.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus::aws::sigv4 {
namespace {

constexpr size_t kReadAhead = 64 << 10;
constexpr size_t kMaxChunkHeader = 4096;

Status Incomplete() {
  return Status::Aws("IncompleteBody", 400, "The request body terminated unexpectedly",
                     ErrorKind::kSerialization);
}

Status Malformed(std::string message) {
  return Status(ErrorKind::kSerialization, "Malformed aws-chunked body: " + std::move(message));
}

Status ChunkSignatureMismatch(std::string_view what) {
  return Status(ErrorKind::kSignatureMismatch,
                "The request signature we calculated does not match the signature you provided "
                "(" +
                    std::string(what) + "). Check your key and signing method.");
}

std::optional<uint64_t> ParseHexSize(std::string_view s) {
  if (s.empty() || s.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    v = v * 16 + static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace

std::string ChunkSignature(std::string_view signing_key, std::string_view amz_date,
                           std::string_view scope, std::string_view previous_signature,
                           std::string_view chunk) {
  std::string sts;
  sts.reserve(300);
  sts.append("AWS4-HMAC-SHA256-PAYLOAD\n").append(amz_date).append("\n");
  sts.append(scope).append("\n").append(previous_signature).append("\n");
  sts.append(kEmptySha256).append("\n").append(HexEncode(Sha256(chunk)));
  return Signature(signing_key, sts);
}

std::string TrailerSignature(std::string_view signing_key, std::string_view amz_date,
                             std::string_view scope, std::string_view previous_signature,
                             const Trailers& trailers) {
  Trailers sorted = trailers;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical;
  for (const auto& [name, value] : sorted) canonical.append(name).append(":").append(value) += '\n';
  std::string sts;
  sts.append("AWS4-HMAC-SHA256-TRAILER\n").append(amz_date).append("\n");
  sts.append(scope).append("\n").append(previous_signature).append("\n");
  sts.append(HexEncode(Sha256(canonical)));
  return Signature(signing_key, sts);
}

std::string EncodeAwsChunked(std::string_view payload, size_t chunk_size, std::string_view mode,
                             std::string_view signing_key, std::string_view amz_date,
                             std::string_view scope, std::string_view seed_signature,
                             const Trailers& trailers) {
  bool sign = mode != kStreamingUnsignedPayloadTrailer;
  std::string previous(seed_signature);
  std::string out;
  out.reserve(payload.size() + (payload.size() / chunk_size + 2) * 100);
  auto emit = [&](std::string_view data) {
    char size[24];
    std::snprintf(size, sizeof(size), "%zx", data.size());
    out.append(size);
    if (sign) {
      previous = ChunkSignature(signing_key, amz_date, scope, previous, data);
      out.append(";chunk-signature=").append(previous);
    }
    out.append("\r\n");
    if (!data.empty()) out.append(data).append("\r\n");
  };
  for (size_t offset = 0; offset < payload.size(); offset += chunk_size) {
    emit(payload.substr(offset, chunk_size));
  }
  emit("");
  for (const auto& [name, value] : trailers) out.append(name).append(":").append(value) += "\r\n";
  if (mode == kStreamingPayloadTrailer) {
    out.append("x-amz-trailer-signature:")
        .append(TrailerSignature(signing_key, amz_date, scope, previous, trailers))
        .append("\r\n");
  }
  out.append("\r\n");
  return out;
}

Result<std::unique_ptr<ChunkedBodyReader>> ChunkedBodyReader::Create(
    const http::Request& request, const SignedRequest& signed_request,
    std::string_view secret_access_key) {
  std::unique_ptr<ChunkedBodyReader> reader(new ChunkedBodyReader());
  std::string_view mode = signed_request.payload_hash;
  if (mode == kStreamingPayload) {
    reader->signed_ = true;
  } else if (mode == kStreamingPayloadTrailer) {
    reader->signed_ = true;
    reader->trailer_mode_ = true;
  } else if (mode == kStreamingUnsignedPayloadTrailer) {
    reader->trailer_mode_ = true;
  } else if (StartsWith(mode, "STREAMING-AWS4-ECDSA-P256-SHA256")) {
    return Status::Aws("NotImplemented", 501,
                       "SigV4a (AWS4-ECDSA-P256-SHA256) streaming payloads are not supported; "
                       "sign with AWS4-HMAC-SHA256.",
                       ErrorKind::kNotImplemented);
  } else {
    return Status::Validation("x-amz-content-sha256 '" + std::string(mode) +
                              "' does not declare an aws-chunked payload");
  }
  const std::string* length = request.headers.Find("x-amz-decoded-content-length");
  if (!length) {
    return Status::Aws("MissingContentLength", 411,
                       "You must provide the x-amz-decoded-content-length HTTP header.");
  }
  std::optional<int64_t> declared = ParseInt(Trim(*length));
  if (!declared || *declared < 0) {
    return Status::Aws("InvalidArgument", 400,
                       "x-amz-decoded-content-length must be a non-negative integer");
  }
  if (!request.body) return Status::Internal("aws-chunked request has no body reader");
  reader->raw_ = request.body;
  reader->declared_length_ = static_cast<uint64_t>(*declared);
  if (const std::string* names = request.headers.Find("x-amz-trailer")) {
    for (const auto& name : Split(*names, ',')) {
      std::string_view trimmed = Trim(name);
      if (!trimmed.empty()) reader->expected_trailers_.push_back(ToLower(trimmed));
    }
  }
  if (reader->signed_) {
    reader->signing_key_ = SigningKey(secret_access_key, signed_request.date, signed_request.region,
                                      signed_request.service);
    reader->amz_date_ = signed_request.amz_date;
    reader->scope_ = signed_request.Scope();
    reader->previous_signature_ = signed_request.signature;
  }
  return reader;
}

Result<size_t> ChunkedBodyReader::Read(char* buf, size_t n) {
  if (!failed_.ok()) return failed_;
  while (out_pos_ == chunk_.size()) {
    if (done_) return size_t{0};
    Status status = NextChunk();
    if (!status.ok()) {
      failed_ = status;
      chunk_.clear();
      out_pos_ = 0;
      return status;
    }
  }
  size_t k = std::min(n, chunk_.size() - out_pos_);
  std::memcpy(buf, chunk_.data() + out_pos_, k);
  out_pos_ += k;
  return k;
}

// Reads more raw bytes into in_ once it is consumed; false at the end of the raw body.
Result<bool> ChunkedBodyReader::Fill() {
  in_.resize(kReadAhead);
  in_pos_ = 0;
  Result<size_t> n = raw_->Read(in_.data(), in_.size());
  if (!n.ok()) {
    in_.clear();
    return n.status();
  }
  in_.resize(*n);
  return *n > 0;
}

// A line without its "\n" (and "\r" before it). kPartial: bytes then the end of the body.
Result<ChunkedBodyReader::LineEnd> ChunkedBodyReader::ReadLine(std::string* line, size_t max) {
  line->clear();
  while (true) {
    if (in_pos_ == in_.size()) {
      NIMBUS_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) return line->empty() ? LineEnd::kEof : LineEnd::kPartial;
    }
    size_t newline = in_.find('\n', in_pos_);
    size_t end = newline == std::string::npos ? in_.size() : newline;
    line->append(in_, in_pos_, end - in_pos_);
    if (line->size() > max) return Malformed("line longer than " + std::to_string(max));
    if (newline == std::string::npos) {
      in_pos_ = in_.size();
      continue;
    }
    in_pos_ = newline + 1;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return LineEnd::kLine;
  }
}

Status ChunkedBodyReader::ReadExact(size_t n) {
  chunk_.resize(n);
  size_t got = std::min(n, in_.size() - in_pos_);
  std::memcpy(chunk_.data(), in_.data() + in_pos_, got);
  in_pos_ += got;
  while (got < n) {
    // Large chunks go straight from the raw body into the chunk buffer.
    NIMBUS_ASSIGN_OR_RETURN(size_t k, raw_->Read(chunk_.data() + got, n - got));
    if (k == 0) return Incomplete();
    got += k;
  }
  return Status::Ok();
}

Status ChunkedBodyReader::NextChunk() {
  std::string line;
  NIMBUS_ASSIGN_OR_RETURN(LineEnd end, ReadLine(&line, kMaxChunkHeader));
  if (end != LineEnd::kLine) return Incomplete();
  std::string_view header(line);
  size_t semicolon = header.find(';');
  std::optional<uint64_t> size = ParseHexSize(Trim(header.substr(0, semicolon)));
  if (!size) return Malformed("bad chunk size line '" + line + "'");
  if (*size > kMaxChunkSize) {
    return Malformed("chunk of " + std::to_string(*size) + " bytes exceeds the limit of " +
                     std::to_string(kMaxChunkSize));
  }
  std::string signature;
  while (semicolon != std::string_view::npos) {
    header = header.substr(semicolon + 1);
    semicolon = header.find(';');
    std::string_view extension = Trim(header.substr(0, semicolon));
    size_t eq = extension.find('=');
    if (eq != std::string_view::npos && Trim(extension.substr(0, eq)) == "chunk-signature") {
      signature = std::string(Trim(extension.substr(eq + 1)));
    }
  }
  if (signed_ && signature.empty()) return ChunkSignatureMismatch("chunk-signature missing");
  if (decoded_ + *size > declared_length_) {
    return Status::Aws("IncompleteBody", 400,
                       "The decoded body is longer than x-amz-decoded-content-length (" +
                           std::to_string(declared_length_) + ")",
                       ErrorKind::kSerialization);
  }

  NIMBUS_RETURN_IF_ERROR(ReadExact(static_cast<size_t>(*size)));
  if (*size > 0) {
    NIMBUS_ASSIGN_OR_RETURN(end, ReadLine(&line, kMaxChunkHeader));
    if (end != LineEnd::kLine) return end == LineEnd::kEof ? Incomplete() : Malformed("no CRLF");
    if (!line.empty()) return Malformed("chunk data is not followed by CRLF");
  }
  decoded_ += *size;
  if (signed_) {
    std::string expected =
        ChunkSignature(signing_key_, amz_date_, scope_, previous_signature_, chunk_);
    if (!ConstantTimeEquals(expected, signature)) {
      return ChunkSignatureMismatch("chunk " + std::to_string(decoded_ - *size) + "+" +
                                    std::to_string(*size));
    }
    previous_signature_ = std::move(expected);
  }
  out_pos_ = 0;
  if (*size == 0) {
    NIMBUS_RETURN_IF_ERROR(ReadTrailers());
    if (decoded_ != declared_length_) {
      return Status::Aws("IncompleteBody", 400,
                         "You did not provide the number of bytes specified by the "
                         "x-amz-decoded-content-length HTTP header (" +
                             std::to_string(declared_length_) + "; got " +
                             std::to_string(decoded_) + ")",
                         ErrorKind::kSerialization);
    }
    done_ = true;
  }
  return Status::Ok();
}

// Trailer lines up to the end of the body. Blank lines are skipped (some encoders write
// "name:value\n\r\n"), so the section ends at the end of the body.
Status ChunkedBodyReader::ReadTrailers() {
  std::string line;
  std::string trailer_signature;
  bool has_signature = false;
  size_t total = 0;
  while (true) {
    NIMBUS_ASSIGN_OR_RETURN(LineEnd end, ReadLine(&line, kMaxTrailerBytes));
    if (end == LineEnd::kEof) break;
    total += line.size();
    if (total > kMaxTrailerBytes) return Malformed("trailers too large");
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) return Malformed("bad trailer line '" + line + "'");
    std::string name = ToLower(Trim(std::string_view(line).substr(0, colon)));
    std::string value(Trim(std::string_view(line).substr(colon + 1)));
    if (name == "x-amz-trailer-signature") {
      trailer_signature = std::move(value);
      has_signature = true;
      continue;
    }
    if (!trailer_mode_) return Malformed("trailer '" + name + "' in a payload without trailers");
    trailers_.emplace_back(std::move(name), std::move(value));
  }
  if (signed_ && trailer_mode_) {
    if (!has_signature) return ChunkSignatureMismatch("x-amz-trailer-signature missing");
    std::string expected =
        TrailerSignature(signing_key_, amz_date_, scope_, previous_signature_, trailers_);
    if (!ConstantTimeEquals(expected, trailer_signature)) {
      return ChunkSignatureMismatch("trailer");
    }
  }
  for (const auto& name : expected_trailers_) {
    bool found = std::any_of(trailers_.begin(), trailers_.end(),
                             [&](const auto& t) { return t.first == name; });
    if (!found) return Malformed("the trailer '" + name + "' named by x-amz-trailer is missing");
  }
  return Status::Ok();
}

}  // namespace nimbus::aws::sigv4
