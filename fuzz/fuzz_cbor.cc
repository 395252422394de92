// Smithy RPC v2 CBOR: the codec alone (decode, re-encode, decode again must agree) and
// a CloudWatch request body through the whole inbound path.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "aws/protocol/cbor.h"
#include "fuzz_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = nimbus::aws::protocol::DecodeCbor(bytes);
  if (decoded.ok()) {
    std::string encoded = nimbus::aws::protocol::EncodeCbor(*decoded);
    auto again = nimbus::aws::protocol::DecodeCbor(encoded);
    if (!again.ok()) std::abort();
    if (nimbus::aws::protocol::EncodeCbor(*again) != encoded) std::abort();
  }
  static const char* const kOps[] = {"PutMetricData", "GetMetricData", "PutMetricAlarm"};
  nimbus::http::Request request;
  request.method = "POST";
  request.target = std::string("/service/GraniteServiceVersion20100801/operation/") +
                   kOps[size % (sizeof(kOps) / sizeof(kOps[0]))];
  request.SplitTarget();
  request.headers.Add("smithy-protocol", "rpc-v2-cbor");
  request.headers.Add("Content-Type", "application/cbor");
  nimbus::fuzz::Exercise(request, "monitoring", bytes);
  return 0;
}
