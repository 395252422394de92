// Shared by the protocol fuzzers: turns fuzzer bytes into an HTTP request. The input is
// text shaped like a request: a first line "METHOD TARGET", header lines "Name: value",
// an empty line, then the body. Missing parts default to "POST /" and no headers, so
// plain byte soup still reaches the body parsers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aws/model/model.h"
#include "aws/protocol/protocol.h"
#include "http/types.h"

namespace nimbus::fuzz {

struct FuzzRequest {
  http::Request request;
  std::string body;
};

inline FuzzRequest ParseFuzzRequest(std::string_view text) {
  FuzzRequest out;
  out.request.method = "POST";
  out.request.target = "/";
  size_t split = text.find("\n\n");
  if (split == std::string_view::npos) {
    out.body = std::string(text);
  } else {
    std::string_view head = text.substr(0, split);
    out.body = std::string(text.substr(split + 2));
    bool first = true;
    while (!head.empty()) {
      size_t nl = head.find('\n');
      std::string_view line = head.substr(0, nl);
      head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
      if (first) {
        first = false;
        size_t sp = line.find(' ');
        if (sp != std::string_view::npos) {
          out.request.method = std::string(line.substr(0, sp));
          out.request.target = std::string(line.substr(sp + 1));
          continue;
        }
      }
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      out.request.headers.Add(std::string(line.substr(0, colon)), std::string(value));
    }
  }
  out.request.SplitTarget();
  return out;
}

// Runs the whole inbound path and serializes whatever comes out, as the dispatcher would.
inline void Exercise(const http::Request& request, std::string_view signing_name,
                     std::string_view body) {
  const auto& models = aws::model::ModelRegistry::Embedded();
  auto op = aws::protocol::Resolve(models, request, signing_name, body);
  if (!op.ok()) {
    auto protocol = aws::protocol::SniffProtocol(request, nullptr);
    (void)aws::protocol::SerializeError(nullptr, protocol, op.status(), "fuzz");
    return;
  }
  auto input = aws::protocol::ParseRequest(*op, request, body);
  if (!input.ok()) {
    (void)aws::protocol::SerializeError(op->service, op->protocol, input.status(), "fuzz");
    return;
  }
  if (op->operation->input) {
    Status st = aws::protocol::Validate(*op->operation->input, *input);
    if (!st.ok()) (void)aws::protocol::SerializeError(op->service, op->protocol, st, "fuzz");
  }
  // Echo the input through the output serializer: it must cope with any Value.
  (void)aws::protocol::SerializeResponse(*op, *input, "fuzz");
}

}  // namespace nimbus::fuzz
