// AWS service models in memory: the shapes, operations and protocol metadata of every
// service Nimbus serves, loaded once from the models embedded at build time
// (tools/gen_models.py merges Debian's botocore models with npm's aws-sdk v2 models; see
// docs/service-models.md). The protocol engine walks these to parse, validate and
// serialize; nothing in it is specific to one service.
//
// Ownership: a ModelRegistry owns its ServiceModels, which own their Shapes; Shape and
// Member pointers stay valid for the registry's lifetime (the embedded registry lives
// for the whole process).
// Thread-safety: immutable after loading; safe to share across threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nimbus::aws::model {

enum class ShapeType {
  kStructure,
  kList,
  kMap,
  kString,
  kInteger,
  kLong,
  kFloat,
  kDouble,
  kBigDecimal,
  kBoolean,
  kBlob,
  kTimestamp,
};

struct Shape;

// A reference to a shape from a structure member, a list member or a map key/value,
// with the serialization traits that botocore puts on references.
struct Member {
  std::string name;  // member name in the model ("UserName"); empty for list/map refs
  const Shape* shape = nullptr;
  std::string location;       // "", "header", "headers", "uri", "querystring", "statusCode"
  std::string location_name;  // wire name: header, URI label, query key, JSON/XML element
  std::string query_name;     // ec2 queryName, when present
  bool flattened = false;
  bool xml_attribute = false;
  std::string xml_namespace_uri;
  std::string xml_namespace_prefix;
  std::string timestamp_format;  // overrides the shape's: iso8601 | rfc822 | unixTimestamp
  bool streaming = false;        // payload blob streamed in or out
  bool idempotency_token = false;
  bool host_label = false;
  bool json_value = false;  // header whose value is base64-encoded JSON

  // The wire name: location_name when set, else name.
  const std::string& WireName() const { return location_name.empty() ? name : location_name; }
};

struct Shape {
  std::string name;
  ShapeType type = ShapeType::kString;

  // kStructure
  std::vector<Member> members;  // in model order
  std::vector<std::string> required;
  std::string payload;  // rest protocols: the member that is the whole body
  bool is_union = false;
  bool is_document = false;  // a free-form JSON document
  bool exception = false;
  std::string error_code;     // "error": {"code": ...} (query protocols)
  int error_http_status = 0;  // "error": {"httpStatusCode": ...}
  bool error_sender_fault = true;

  // kList: member; kMap: key and value
  std::optional<Member> member;
  std::optional<Member> key;
  std::optional<Member> value;
  bool flattened = false;

  // Constraints (validation)
  std::optional<double> min;
  std::optional<double> max;
  std::string pattern;
  std::vector<std::string> enum_values;
  bool sensitive = false;
  bool streaming = false;
  std::string timestamp_format;
  std::string location_name;  // rest-xml root element name of a structure
  std::string xml_namespace_uri;

  const Member* FindMember(std::string_view member_name) const;
  bool IsRequired(std::string_view member_name) const;
};

struct Operation {
  std::string name;
  std::string http_method = "POST";
  std::string request_uri = "/";  // "/{Bucket}/{Key+}?uploads"
  int http_response_code = 200;
  const Shape* input = nullptr;   // may be null: no input members
  const Shape* output = nullptr;  // may be null: empty output
  std::vector<const Shape*> errors;
  std::string input_location_name;  // rest-xml: input's root element name
  std::string input_xml_namespace;  // rest-xml: input's xmlns
  std::string result_wrapper;       // query: output.resultWrapper ("GetCallerIdentityResult")
  bool auth_none = false;           // "authtype": "none"
  bool deprecated = false;
};

// A number no other ServiceModel of this process has had (see ServiceModel::id).
uint64_t NewServiceModelId();

struct ServiceModel {
  // Tells this model from every other one, even one made later at the same address: what
  // is derived from a model once (the protocol engine's compiled routes) is keyed by it.
  uint64_t id = NewServiceModelId();
  std::string name;         // botocore directory name: "sts", "iam", "cloudwatch", "s3"
  std::string api_version;  // "2011-06-15"
  std::string protocol;     // "json", "rest-json", "rest-xml", "query", "ec2"
  // Every protocol the service answers in, the primary one first; CloudWatch:
  // {"query", "json", "smithy-rpc-v2-cbor"}.
  std::vector<std::string> protocols;
  std::string json_version;   // "1.0" | "1.1" for json
  std::string target_prefix;  // X-Amz-Target prefix for json ("AWSSecurityTokenServiceV20110615")
  std::string signing_name;   // SigV4 scope service ("sts", "monitoring", "s3")
  std::string endpoint_prefix;
  std::string service_id;     // "STS", "CloudWatch"
  std::string iam_prefix;     // IAM action prefix ("sts", "cloudwatch", "s3")
  std::string xml_namespace;  // query/rest-xml response namespace
  bool global = false;        // served from one region (IAM), signs with us-east-1

  std::map<std::string, std::unique_ptr<Shape>, std::less<>> shapes;
  std::map<std::string, Operation, std::less<>> operations;

  const Operation* FindOperation(std::string_view operation) const;
  const Shape* FindShape(std::string_view shape) const;
};

class ModelRegistry {
 public:
  ModelRegistry();
  ~ModelRegistry();
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // The models embedded in the binary, parsed on first use.
  static const ModelRegistry& Embedded();
  // Parses one service model document (the merged format gen_models.py writes, which
  // is botocore's service-2.json shape with documentation stripped).
  static Result<std::unique_ptr<ServiceModel>> ParseServiceModel(std::string_view name,
                                                                 std::string_view json);

  void Add(std::unique_ptr<ServiceModel> model);
  const ServiceModel* Find(std::string_view name) const;
  // All services whose SigV4 signing name is signing_name (several share "sagemaker").
  std::vector<const ServiceModel*> FindBySigningName(std::string_view signing_name) const;
  // The json service whose target prefix is target_prefix.
  const ServiceModel* FindByTargetPrefix(std::string_view target_prefix) const;
  std::vector<const ServiceModel*> services() const;

 private:
  // An embedded service not parsed yet; parsed once, on first lookup (thread-safe).
  struct Lazy;
  const ServiceModel* Load(Lazy& lazy) const;

  std::map<std::string, std::unique_ptr<ServiceModel>, std::less<>> services_;
  std::vector<std::unique_ptr<Lazy>> lazy_;
};

}  // namespace nimbus::aws::model
