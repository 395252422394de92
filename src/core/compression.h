// gzip decoding, for request bodies that clients compress (the AWS `requestcompression`
// trait: CloudWatch PutMetricData bodies over 10 KB from current SDKs).
//
// Thread-safety: free function.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace nimbus {

// The decompressed bytes of a gzip stream (several members are concatenated, as gunzip
// does). kValidation when it is not gzip or is truncated; kValidation naming the limit when
// it inflates to more than `limit` bytes (a zip bomb is refused, not buffered).
Result<std::string> Gunzip(std::string_view data, size_t limit);

}  // namespace nimbus
