// RegisterS3Service and the bucket-level operations.
#include "services/s3/s3_service.h"

#include <map>

#include <string>
#include <utility>

#include "core/json.h"
#include "services/s3/internal/handlers.h"
#include "services/s3/s3_request.h"

namespace nimbus::services {
namespace s3::internal {
namespace {

using objects::ObjectStore;
using objects::VersioningStatus;

constexpr std::string_view kDefaultRegion = "us-east-1";

Status MalformedXml() {
  return Status::Aws("MalformedXML", 400,
                     "The XML you provided was not well-formed or did not validate against our "
                     "published schema");
}

Result<Value> CreateBucket(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  const std::string bucket = in.GetString("Bucket");
  std::string region(kDefaultRegion);
  if (const Value* config = in.Find("CreateBucketConfiguration")) {
    std::string constraint = config->GetString("LocationConstraint");
    // "EU" is the legacy name of eu-west-1.
    if (!constraint.empty()) region = constraint == "EU" ? "eu-west-1" : std::move(constraint);
  }
  NIMBUS_RETURN_IF_ERROR(store.CreateBucket(bucket, region, ctx.account_id));
  return Value::Object({{"Location", "/" + bucket}});
}

Result<Value> HeadBucket(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(objects::BucketInfo info, store.HeadBucket(in.GetString("Bucket")));
  ctx.response_headers.Set("x-amz-bucket-region", info.region);
  return Value::MakeMap();
}

Result<Value> DeleteBucket(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_RETURN_IF_ERROR(store.DeleteBucket(in.GetString("Bucket")));
  return Value::MakeMap();
}

Result<Value> ListBuckets(ObjectStore& store, const Value&, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<objects::BucketInfo> buckets,
                          store.ListBuckets(ctx.account_id));
  Value list = Value::MakeList();
  for (const objects::BucketInfo& b : buckets) {
    list.Append(Value::Object({{"Name", b.name}, {"CreationDate", Value::Timestamp(b.created)}}));
  }
  return Value::Object({{"Buckets", std::move(list)}, {"Owner", OwnerValue(ctx.account_id)}});
}

Result<Value> GetBucketLocation(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_ASSIGN_OR_RETURN(objects::BucketInfo info, store.HeadBucket(in.GetString("Bucket")));
  // S3 answers an empty LocationConstraint for us-east-1.
  Value out = Value::MakeMap();
  if (info.region != kDefaultRegion) out["LocationConstraint"] = info.region;
  return out;
}

Result<Value> GetBucketTagging(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_ASSIGN_OR_RETURN(objects::Tags tags, store.GetBucketTags(in.GetString("Bucket")));
  return Value::Object({{"TagSet", TagSetValue(tags)}});
}

Result<Value> PutBucketTagging(ObjectStore& store, const Value& in, aws::RequestContext&) {
  const Value* tagging = in.Find("Tagging");
  if (!tagging) return MalformedXml();
  NIMBUS_ASSIGN_OR_RETURN(objects::Tags tags, TagsFromTagSet(tagging->Find("TagSet")));
  NIMBUS_RETURN_IF_ERROR(store.PutBucketTags(in.GetString("Bucket"), tags));
  return Value::MakeMap();
}

Result<Value> DeleteBucketTagging(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_RETURN_IF_ERROR(store.DeleteBucketTags(in.GetString("Bucket")));
  return Value::MakeMap();
}

Result<Value> PutBucketVersioning(ObjectStore& store, const Value& in, aws::RequestContext&) {
  const Value* config = in.Find("VersioningConfiguration");
  std::string status = config ? config->GetString("Status") : "";
  VersioningStatus target;
  if (status == "Enabled") {
    target = VersioningStatus::kEnabled;
  } else if (status == "Suspended") {
    target = VersioningStatus::kSuspended;
  } else {
    return MalformedXml();
  }
  NIMBUS_RETURN_IF_ERROR(store.PutBucketVersioning(in.GetString("Bucket"), target));
  return Value::MakeMap();
}

Result<Value> GetBucketVersioning(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_ASSIGN_OR_RETURN(VersioningStatus status,
                          store.GetBucketVersioning(in.GetString("Bucket")));
  Value out = Value::MakeMap();
  if (status != VersioningStatus::kUnversioned) {
    out["Status"] = std::string(objects::VersioningStatusName(status));
  }
  return out;
}

// The configuration is stored as the JSON of its Value and handed back as is; delivery of
// the events comes with Lambda.
Result<Value> PutBucketNotificationConfiguration(ObjectStore& store, const Value& in,
                                                 aws::RequestContext&) {
  const Value* config = in.Find("NotificationConfiguration");
  std::string document = config && config->is_map() ? ToJson(*config) : "";
  NIMBUS_RETURN_IF_ERROR(store.PutBucketNotification(in.GetString("Bucket"), document));
  return Value::MakeMap();
}

Result<Value> GetBucketNotificationConfiguration(ObjectStore& store, const Value& in,
                                                 aws::RequestContext&) {
  NIMBUS_ASSIGN_OR_RETURN(std::string document,
                          store.GetBucketNotification(in.GetString("Bucket")));
  if (document.empty()) return Value::MakeMap();
  NIMBUS_ASSIGN_OR_RETURN(Value config, ParseJson(document));
  if (!config.is_map()) return Status::Internal("stored notification configuration is not a map");
  return config;
}

}  // namespace

std::string IamAction(std::string_view operation) {
  // S3's IAM actions are not its operation names; this is AWS's published mapping for
  // the operations Nimbus serves. Operations not listed use their own name.
  static const std::map<std::string_view, std::string_view> kActions = {
      {"HeadBucket", "s3:ListBucket"},
      {"ListObjects", "s3:ListBucket"},
      {"ListObjectsV2", "s3:ListBucket"},
      {"ListObjectVersions", "s3:ListBucketVersions"},
      {"ListBuckets", "s3:ListAllMyBuckets"},
      {"HeadObject", "s3:GetObject"},
      {"DeleteObjects", "s3:DeleteObject"},
      {"CopyObject", "s3:PutObject"},
      {"CreateMultipartUpload", "s3:PutObject"},
      {"UploadPart", "s3:PutObject"},
      {"UploadPartCopy", "s3:PutObject"},
      {"CompleteMultipartUpload", "s3:PutObject"},
      {"ListParts", "s3:ListMultipartUploadParts"},
      {"ListMultipartUploads", "s3:ListBucketMultipartUploads"},
      {"DeleteBucketTagging", "s3:PutBucketTagging"},
      {"PutBucketNotificationConfiguration", "s3:PutBucketNotification"},
      {"GetBucketNotificationConfiguration", "s3:GetBucketNotification"},
  };
  auto it = kActions.find(operation);
  return it != kActions.end() ? std::string(it->second) : "s3:" + std::string(operation);
}

void Add(aws::ServiceRegistry& registry, objects::ObjectStore& store, std::string operation,
         Handler handler) {
  aws::Registration registration;
  registration.handler = [&store, handler](const Value& input, aws::RequestContext& ctx) {
    return handler(store, input, ctx);
  };
  registration.resource = [](const Value& input, const aws::RequestContext&) {
    return ResourceArn(input);
  };
  registration.action = IamAction(operation);
  registry.Register("s3", std::move(operation), std::move(registration));
}

std::string ResourceArn(const Value& input) {
  std::string bucket = input.GetString("Bucket");
  if (bucket.empty()) return "*";
  std::string arn = "arn:aws:s3:::" + bucket;
  if (const Value* key = input.Find("Key"); key && key->is_string()) arn += "/" + key->AsString();
  return arn;
}

Result<CopySource> AuthorizedCopySource(const Value& input, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(CopySource source, ParseCopySource(input.GetString("CopySource")));
  if (ctx.authorize) {
    NIMBUS_RETURN_IF_ERROR(
        ctx.authorize(source.version_id.empty() ? "s3:GetObject" : "s3:GetObjectVersion",
                      "arn:aws:s3:::" + source.bucket + "/" + source.key));
  }
  return source;
}

void RegisterBucketHandlers(aws::ServiceRegistry& registry, objects::ObjectStore& store) {
  Add(registry, store, "CreateBucket", CreateBucket);
  Add(registry, store, "HeadBucket", HeadBucket);
  Add(registry, store, "DeleteBucket", DeleteBucket);
  Add(registry, store, "ListBuckets", ListBuckets);
  Add(registry, store, "GetBucketLocation", GetBucketLocation);
  Add(registry, store, "GetBucketTagging", GetBucketTagging);
  Add(registry, store, "PutBucketTagging", PutBucketTagging);
  Add(registry, store, "DeleteBucketTagging", DeleteBucketTagging);
  Add(registry, store, "PutBucketVersioning", PutBucketVersioning);
  Add(registry, store, "GetBucketVersioning", GetBucketVersioning);
  Add(registry, store, "PutBucketNotificationConfiguration", PutBucketNotificationConfiguration);
  Add(registry, store, "GetBucketNotificationConfiguration", GetBucketNotificationConfiguration);
}

}  // namespace s3::internal

void RegisterS3Service(aws::ServiceRegistry& registry, objects::ObjectStore& store) {
  s3::internal::RegisterBucketHandlers(registry, store);
  s3::internal::RegisterObjectHandlers(registry, store);
  s3::internal::RegisterMultipartHandlers(registry, store);
}

}  // namespace nimbus::services
