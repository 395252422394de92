// query: a form-encoded body to STS, IAM or CloudWatch (first byte picks the signing
// name; empty means unsigned, which routes by Action and Version alone). Parameters are
// parsed by the XML engineer's ParseQueryParams, responses by SerializeQueryResponse.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kSigningNames[] = {"sts", "iam", "monitoring", ""};
  if (size == 0) return 0;
  const char* signing = kSigningNames[data[0] % (sizeof(kSigningNames) / sizeof(kSigningNames[0]))];
  nimbus::http::Request request;
  request.method = "POST";
  request.target = "/";
  request.SplitTarget();
  request.headers.Add("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  nimbus::fuzz::Exercise(request, signing, body);
  return 0;
}
