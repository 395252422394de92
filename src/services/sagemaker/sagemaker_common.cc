#include "services/sagemaker/sagemaker_common.h"

#include "control/tagging.h"

namespace nimbus::services {

const Value& Member(const Value& value, std::string_view key) {
  static const Value kNull;
  const Value* member = value.is_map() ? value.Find(key) : nullptr;
  return member ? *member : kNull;
}

Value PublicBody(const Value& body) {
  Value out = body;
  out.Erase("_runtime");
  return out;
}

Status Invalid(std::string message) {
  return Status::Aws("ValidationException", 400, std::move(message));
}

Result<control::Tags> ParseTags(const Value& input) {
  const Value* tags = input.Find("Tags");
  if (tags == nullptr) return control::Tags{};
  return control::ParseTagList(*tags);
}

}  // namespace nimbus::services
