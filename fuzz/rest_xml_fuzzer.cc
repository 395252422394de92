// libFuzzer target for the rest-xml body parser (ParseRestXmlBody, and through it
// ParseXml), fed with the S3 operations whose requests carry an XML body
// (PutBucketTagging, DeleteObjects, CompleteMultipartUpload, CreateBucket, ...). The
// first byte picks the operation; the rest is the body. Malformed, deep or hostile XML
// (DOCTYPE, entities) must come back as a clean kSerialization Status, never a crash.
// Whatever parses is serialized back as the output of the same shape, so the writer is
// exercised on arbitrary values too.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "aws/model/model.h"
#include "aws/protocol/rest_xml.h"
#include "aws/protocol/xml.h"

namespace {

using nimbus::aws::model::ModelRegistry;
using nimbus::aws::model::Operation;
using nimbus::aws::model::ShapeType;

bool HasXmlBody(const Operation& op) {
  if (op.input == nullptr) return false;
  if (!op.input_location_name.empty()) return true;
  const auto* payload = op.input->FindMember(op.input->payload);
  return payload != nullptr && payload->shape != nullptr &&
         payload->shape->type == ShapeType::kStructure;
}

const std::vector<const Operation*>& Operations() {
  static const std::vector<const Operation*> ops = [] {
    std::vector<const Operation*> out;
    const auto* s3 = ModelRegistry::Embedded().Find("s3");
    if (s3 == nullptr) return out;
    for (const auto& [name, op] : s3->operations) {
      if (HasXmlBody(op)) out.push_back(&op);
    }
    return out;
  }();
  return ops;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<const Operation*>& ops = Operations();
  if (size == 0 || ops.empty()) return 0;
  const Operation& op = *ops[data[0] % ops.size()];
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  nimbus::Value input;
  if (!nimbus::aws::protocol::ParseRestXmlBody(op, body, &input).ok()) return 0;
  nimbus::aws::protocol::XmlWriter writer;
  writer.Open("Root");
  nimbus::aws::protocol::WriteXmlMembers(&writer, *op.input, input);
  auto reparsed = nimbus::aws::protocol::ParseXml(writer.Finish());
  (void)reparsed;
  return 0;
}
