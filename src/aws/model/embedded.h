// The service models compiled into the binary: one zlib-compressed JSON document per
// service (written by tools/gen_models.py at build time into embedded_models.cc), with
// the few facts needed to route a request uncompressed, so that finding a service never
// inflates the models of the others. Internal to nimbus_aws_model.
// Thread-safety: constant data.
#pragma once

#include <cstddef>
#include <span>

namespace nimbus::aws::model::internal {

struct EmbeddedModel {
  const char* name;           // botocore service name: "sts"
  const char* signing_name;   // SigV4 scope service: "monitoring"
  const char* target_prefix;  // X-Amz-Target prefix, "" when none
  const char* protocols;      // space-separated, primary first: "query json"
  const unsigned char* data;  // zlib stream
  size_t size;                // bytes of data
  size_t raw_size;            // bytes of the JSON document once inflated
};

std::span<const EmbeddedModel> EmbeddedModels();

}  // namespace nimbus::aws::model::internal
