// libFuzzer target for the query protocol's parameter parser (ParseQueryParams), fed
// with the input shapes of every operation of the embedded query-protocol models (IAM,
// STS, CloudWatch). The first byte picks the operation; the rest is a form-encoded body
// ("A=1&B.member.1=x"), decoded as the server decodes it. Any input must yield a value
// or a clean Status, never a crash, a hang or an unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/model/model.h"
#include "aws/protocol/query.h"
#include "core/strings.h"

namespace {

using nimbus::aws::model::ModelRegistry;
using nimbus::aws::model::Shape;

const std::vector<const Shape*>& Inputs() {
  static const std::vector<const Shape*> inputs = [] {
    std::vector<const Shape*> out;
    for (const char* name : {"iam", "sts", "cloudwatch"}) {
      const auto* service = ModelRegistry::Embedded().Find(name);
      if (service == nullptr) continue;
      for (const auto& [op_name, op] : service->operations) out.push_back(op.input);
    }
    return out;
  }();
  return inputs;
}

std::vector<std::pair<std::string, std::string>> ParseForm(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!body.empty()) {
    size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    params.emplace_back(nimbus::UriDecode(key, true), nimbus::UriDecode(value, true));
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return params;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<const Shape*>& inputs = Inputs();
  if (size == 0 || inputs.empty()) return 0;
  const Shape* input = inputs[data[0] % inputs.size()];
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto parsed = nimbus::aws::protocol::ParseQueryParams(input, ParseForm(body));
  (void)parsed;
  return 0;
}
