#include "aws/protocol/rest_xml.h"

#include <utility>

#include "aws/protocol/scalar.h"
#include "aws/protocol/xml.h"

namespace nimbus::aws::protocol {
namespace {
using model::Member;
using model::Shape;
using model::ShapeType;

// S3's documented response roots, which botocore's model does not carry (its parser
// ignores the root's name; real S3 clients and other SDKs do not).
constexpr std::pair<std::string_view, std::string_view> kS3RootNames[] = {
    {"CompleteMultipartUpload", "CompleteMultipartUploadResult"},
    {"CreateMultipartUpload", "InitiateMultipartUploadResult"},
    {"DeleteObjects", "DeleteResult"},
    {"GetBucketAccelerateConfiguration", "AccelerateConfiguration"},
    {"GetBucketAcl", "AccessControlPolicy"},
    {"GetBucketCors", "CORSConfiguration"},
    {"GetBucketLifecycle", "LifecycleConfiguration"},
    {"GetBucketLifecycleConfiguration", "LifecycleConfiguration"},
    {"GetBucketLocation", "LocationConstraint"},
    {"GetBucketLogging", "BucketLoggingStatus"},
    {"GetBucketNotification", "NotificationConfiguration"},
    {"GetBucketNotificationConfiguration", "NotificationConfiguration"},
    {"GetBucketRequestPayment", "RequestPaymentConfiguration"},
    {"GetBucketTagging", "Tagging"},
    {"GetBucketVersioning", "VersioningConfiguration"},
    {"GetBucketWebsite", "WebsiteConfiguration"},
    {"GetObjectAcl", "AccessControlPolicy"},
    {"GetObjectTagging", "Tagging"},
    {"ListBucketAnalyticsConfigurations", "ListBucketAnalyticsConfigurationResult"},
    {"ListBucketInventoryConfigurations", "ListInventoryConfigurationsResult"},
    {"ListBucketMetricsConfigurations", "ListMetricsConfigurationsResult"},
    {"ListBuckets", "ListAllMyBucketsResult"},
    {"ListMultipartUploads", "ListMultipartUploadsResult"},
    {"ListObjectVersions", "ListVersionsResult"},
    {"ListObjects", "ListBucketResult"},
    {"ListObjectsV2", "ListBucketResult"},
    {"ListParts", "ListPartsResult"},
};

bool IsBlank(std::string_view body) {
  return body.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

bool IsBodyMember(const Member& member) { return member.location.empty() && member.shape; }

// The payload member when it is a structure (an XML body); nullptr otherwise.
const Member* StructurePayload(const Shape& shape) {
  if (shape.payload.empty()) return nullptr;
  const Member* payload = shape.FindMember(shape.payload);
  if (payload == nullptr || !payload->shape || payload->shape->type != ShapeType::kStructure) {
    return nullptr;
  }
  return payload;
}

std::string RootName(const model::Operation& op, const Shape& output) {
  if (!output.location_name.empty()) return output.location_name;
  for (const auto& [operation, root] : kS3RootNames) {
    if (operation == op.name) return std::string(root);
  }
  return output.name;
}

std::string DefaultNamespace(const model::ServiceModel& service) {
  return service.xml_namespace.empty() ? std::string(kS3XmlNamespace) : service.xml_namespace;
}

}  // namespace

Status ParseRestXmlBody(const model::Operation& op, std::string_view body, Value* input) {
  if (op.input == nullptr) return Status::Ok();
  const Shape& shape = *op.input;
  if (input->is_null()) *input = Value::MakeMap();
  if (!shape.payload.empty()) {
    const Member* payload = StructurePayload(shape);
    if (payload == nullptr || IsBlank(body)) return Status::Ok();
    NIMBUS_ASSIGN_OR_RETURN(XmlElement root, ParseXml(body));
    Value value = Value::MakeMap();
    NIMBUS_RETURN_IF_ERROR(ReadXmlMembers(*payload->shape, root, root.name, &value));
    (*input)[payload->name] = std::move(value);
    return Status::Ok();
  }
  bool has_body_members = false;
  for (const Member& m : shape.members) has_body_members |= IsBodyMember(m);
  if (!has_body_members || IsBlank(body)) return Status::Ok();
  NIMBUS_ASSIGN_OR_RETURN(XmlElement root, ParseXml(body));
  return ReadXmlMembers(shape, root, root.name, input);
}

std::string SerializeRestXmlBody(const model::ServiceModel& service, const model::Operation& op,
                                 const Value& output) {
  if (op.output == nullptr) return "";
  const Shape& shape = *op.output;
  XmlWriter writer;
  if (!shape.payload.empty()) {
    const Member* payload = StructurePayload(shape);
    if (payload == nullptr) return "";
    const Value* value = output.Find(payload->name);
    if (value == nullptr || !value->is_map()) return "";
    XmlWriter::Attributes attrs = XmlStructureAttributes(payload, *payload->shape, *value);
    if (attrs.empty() || attrs.front().first != "xmlns") {
      attrs.insert(attrs.begin(), {"xmlns", DefaultNamespace(service)});
    }
    writer.Declaration();
    writer.Open(SerializedName(*payload, payload->name), attrs);
    WriteXmlMembers(&writer, *payload->shape, *value);
    return writer.Finish();
  }
  std::vector<const Member*> body_members;
  for (const Member& m : shape.members) {
    if (IsBodyMember(m)) body_members.push_back(&m);
  }
  if (body_members.empty()) return "";
  std::string root = RootName(op, shape);
  XmlWriter::Attributes attrs = XmlStructureAttributes(nullptr, shape, output);
  if (attrs.empty() || attrs.front().first != "xmlns") {
    attrs.insert(attrs.begin(), {"xmlns", DefaultNamespace(service)});
  }
  writer.Declaration();
  writer.Open(root, attrs);
  const Member& only = *body_members.front();
  if (body_members.size() == 1 && only.shape->type != ShapeType::kStructure &&
      only.shape->type != ShapeType::kList && only.shape->type != ShapeType::kMap &&
      XmlMemberName(only) == root) {
    // The root is the member itself (GetBucketLocation: <LocationConstraint>eu-west-1
    // </LocationConstraint>), which botocore reads from the root's text.
    const Value* value = output.Find(only.name);
    if (value != nullptr && !value->is_null()) {
      writer.Text(
          FormatScalarText(*only.shape, *value, TimestampFormatFor(&only, *only.shape, kIso8601)));
    }
    return writer.Finish();
  }
  WriteXmlMembers(&writer, shape, output);
  return writer.Finish();
}

std::string SerializeRestXmlError(std::string_view code, std::string_view message,
                                  std::string_view request_id) {
  XmlWriter writer;
  writer.Declaration();
  writer.Open("Error");
  writer.Element("Code", code);
  writer.Element("Message", message);
  writer.Element("RequestId", request_id);
  return writer.Finish();
}

}  // namespace nimbus::aws::protocol
