// rest-xml: a whole S3 request (line, headers, body): routing incl. virtual hosts,
// bindings, and XML bodies through the XML engineer's ParseRestXmlBody.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto req =
      nimbus::fuzz::ParseFuzzRequest(std::string_view(reinterpret_cast<const char*>(data), size));
  nimbus::fuzz::Exercise(req.request, "s3", req.body);
  return 0;
}
