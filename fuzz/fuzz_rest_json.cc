// rest-json: a whole request (line, headers, body) to the rest-json services that sign
// as lambda, lex, sagemaker or polly: URI templates, labels, headers, query, payloads.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kSigningNames[] = {"lambda", "lex", "sagemaker", "polly", "personalize"};
  if (size == 0) return 0;
  const char* signing = kSigningNames[data[0] % (sizeof(kSigningNames) / sizeof(kSigningNames[0]))];
  auto req = nimbus::fuzz::ParseFuzzRequest(
      std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  nimbus::fuzz::Exercise(req.request, signing, req.body);
  return 0;
}
