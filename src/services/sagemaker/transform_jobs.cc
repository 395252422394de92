#include "services/sagemaker/transform_jobs.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/strings.h"
#include "objects/transfer.h"
#include "services/sagemaker/sagemaker_common.h"
#include "serving/inference.h"

namespace nimbus::services {
namespace {

using control::Resource;

// Job-relative paths the worker reads (worker/transform_kind.h).
constexpr const char* kInputChannel = "transform";
constexpr const char* kInputDir = "input/data/transform";
constexpr const char* kOutputDir = "output/data";
// What Stage() learned for LaunchRequestFor(): containers, files, network.
constexpr const char* kStagedFile = "transform.json";

const Value& S3Source(const Value& body) {
  return Member(Member(Member(body, "TransformInput"), "DataSource"), "S3DataSource");
}

std::string ModelArn(const std::string& account, const std::string& region,
                     const std::string& name) {
  return Models::Kind().Arn(account, region, name);
}

Status ModelNotFound(const std::string& account, const std::string& region,
                     const std::string& name) {
  return Invalid("Could not find model \"" + ModelArn(account, region, name) + "\".");
}

// "text/csv; charset=utf-8" -> "text/csv".
std::string MediaType(const std::string& content_type) {
  return ToLower(Trim(std::string_view(content_type).substr(0, content_type.find(';'))));
}

// The name SageMaker's data log gives an input file: <bucket>/<key>. Keys map to relative
// paths as objects/transfer.h lays them out; a prefix that is not a folder ("data/test")
// either names the folder its keys continue with a '/' or the start of file names.
std::string DisplayName(const objects::S3Location& source, bool manifest, const std::string& rel) {
  std::string folder = source.key;
  if (manifest) {
    folder.clear();
  } else if (!folder.empty() && folder.back() != '/') {
    size_t slash = folder.rfind('/');
    std::string base = slash == std::string::npos ? folder : folder.substr(slash + 1);
    folder = StartsWith(rel, base) ? folder.substr(0, slash == std::string::npos ? 0 : slash + 1)
                                   : folder + "/";
  }
  return source.bucket + "/" + folder + rel;
}

Value Summary(const Resource& job) {
  Value out = Value::Object({{"TransformJobName", job.name},
                             {"TransformJobArn", job.arn},
                             {"CreationTime", Value::Timestamp(job.created_at)},
                             {"LastModifiedTime", Value::Timestamp(job.modified_at)},
                             {"TransformJobStatus", job.status}});
  const Value& runtime = JobController::Runtime(job);
  if (const Value* ended = runtime.Find("ended_at")) {
    out["TransformEndTime"] = Value::Timestamp(ended->AsDouble());
  }
  if (!job.failure_reason.empty()) out["FailureReason"] = job.failure_reason;
  return out;
}

}  // namespace

const control::ResourceKind& TransformJobs::Kind() {
  static const control::ResourceKind kind =
      SageMakerJobKind("TransformJob", "transform job", "transform-job");
  return kind;
}

TransformJobs::TransformJobs(const SageMakerDeps& deps, Models& models)
    : JobController(deps, Kind(),
                    JobControllerConfig{kControllerKind, "transform", kLogGroup, kLogGroup,
                                        /*secondary_statuses=*/false,
                                        /*max_runtime_stops=*/false}),
      models_(models) {}

void TransformJobs::Register(aws::ServiceRegistry& registry) {
  auto bind = [this](auto method) {
    return [this, method](const Value& in, aws::RequestContext& ctx) {
      return (this->*method)(in, ctx);
    };
  };
  auto arn_of = [](const Value& in, const aws::RequestContext& ctx) {
    return Kind().Arn(ctx.account_id, ctx.region, in.GetString("TransformJobName"));
  };
  registry.Register("sagemaker", "CreateTransformJob", bind(&TransformJobs::Create), arn_of);
  registry.Register("sagemaker", "DescribeTransformJob", bind(&TransformJobs::Describe), arn_of);
  registry.Register("sagemaker", "ListTransformJobs", bind(&TransformJobs::List));
  registry.Register("sagemaker", "StopTransformJob", bind(&TransformJobs::Stop), arn_of);
  deps().controllers->Register(kControllerKind, this);
}

// ---- Handlers ---------------------------------------------------------------------------

Status TransformJobs::ValidateCreate(const Value& in, const aws::RequestContext& ctx) const {
  std::string model = in.GetString("ModelName");
  if (auto found = deps().resources->Get(Models::Kind(), ctx.account_id, ctx.region, model);
      !found.ok()) {
    if (found.status().kind() == ErrorKind::kNotFound ||
        found.status().code() == Models::Kind().errors.not_found.code) {
      return ModelNotFound(ctx.account_id, ctx.region, model);
    }
    return found.status();
  }

  const Value& resources = Member(in, "TransformResources");
  std::string type = resources.GetString("InstanceType");
  if (control::FindInstanceType(type) == nullptr) {
    return Invalid("Instance type " + type + " is not one Nimbus knows");
  }
  if (resources.GetInt("InstanceCount", 1) > 1) {
    return Invalid(
        "TransformResources.InstanceCount > 1 is not supported: Nimbus runs transform jobs on "
        "one instance");
  }
  if (in.Has("DataCaptureConfig")) {
    return Invalid("DataCaptureConfig (batch data capture) is not supported by Nimbus");
  }

  const Value& input = Member(in, "TransformInput");
  const Value& s3 = S3Source(in);
  std::string data_type = s3.GetString("S3DataType", "S3Prefix");
  if (data_type == "AugmentedManifestFile") {
    return Invalid(
        "TransformInput.DataSource.S3DataSource.S3DataType AugmentedManifestFile is not "
        "compatible with batch transform; use S3Prefix or ManifestFile");
  }
  if (data_type != "S3Prefix" && data_type != "ManifestFile") {
    return Invalid("TransformInput.DataSource.S3DataSource.S3DataType " + data_type +
                   " is not S3Prefix or ManifestFile");
  }
  NIMBUS_ASSIGN_OR_RETURN(objects::S3Location source, objects::ParseS3Uri(s3.GetString("S3Uri")));
  if (input.GetString("SplitType") == "TFRecord") {
    return Invalid(
        "TransformInput.SplitType TFRecord is not supported by Nimbus; use None, Line or "
        "RecordIO");
  }
  NIMBUS_RETURN_IF_ERROR(
      objects::ParseS3Uri(Member(in, "TransformOutput").GetString("S3OutputPath")).status());

  const int64_t payload = in.GetInt("MaxPayloadInMB", 6);
  if (payload > 100) {
    return Invalid("MaxPayloadInMB " + std::to_string(payload) +
                   " is more than the maximum of 100 MB");
  }
  const int64_t concurrent = in.GetInt("MaxConcurrentTransforms", 0);
  if (concurrent > 0 && concurrent * payload > 100) {
    return Invalid("MaxConcurrentTransforms * MaxPayloadInMB (" + std::to_string(concurrent) +
                   " * " + std::to_string(payload) + " MB) must not exceed 100 MB");
  }

  const Value& processing = Member(in, "DataProcessing");
  for (const char* filter : {"InputFilter", "OutputFilter"}) {
    std::string path = std::string(Trim(processing.GetString(filter, "$")));
    if (!path.empty() && path[0] != '$') {
      return Invalid("DataProcessing." + std::string(filter) + " '" + path +
                     "' is not a JSONPath expression: it must start with $");
    }
  }
  const bool processes = std::string(Trim(processing.GetString("InputFilter", "$"))) != "$" ||
                         std::string(Trim(processing.GetString("OutputFilter", "$"))) != "$" ||
                         processing.GetString("JoinSource", "None") == "Input";
  if (processes) {
    std::string media = MediaType(input.GetString("ContentType"));
    if (media != "text/csv" && media != "application/json" && media != "application/jsonlines" &&
        media != "application/x-jsonlines") {
      return Invalid(
          "DataProcessing (InputFilter, OutputFilter, JoinSource) supports CSV and JSON input "
          "only: TransformInput.ContentType must be text/csv, application/json or "
          "application/jsonlines, not '" +
          input.GetString("ContentType") + "'");
    }
    if (input.GetString("SplitType") == "RecordIO") {
      return Invalid(
          "DataProcessing (InputFilter, OutputFilter, JoinSource) supports CSV and JSON input "
          "only, not SplitType RecordIO");
    }
  }

  // As SageMaker does, an input prefix without objects is refused before the job exists.
  if (data_type == "S3Prefix") {
    objects::ListOptions options;
    options.prefix = source.key;
    options.max_keys = 1;
    auto listed = deps().objects->ListObjects(source.bucket, options);
    if (!listed.ok() || listed->objects.empty()) {
      return Invalid("No S3 objects found under S3 URL \"" + source.ToUri() +
                     "\" given in input data source. Please ensure that the bucket exists in the "
                     "selected region (" +
                     ctx.region + "), that objects exist under that S3 prefix");
    }
  }
  return Status::Ok();
}

Result<Value> TransformJobs::Create(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(ValidateCreate(in, ctx));
  NIMBUS_ASSIGN_OR_RETURN(control::Tags tags, ParseTags(in));
  Value body = in;
  body.Erase("Tags");
  // The defaults SageMaker shows in DescribeTransformJob.
  Value& input = body["TransformInput"];
  if (!input.Has("CompressionType")) input["CompressionType"] = "None";
  if (!input.Has("SplitType")) input["SplitType"] = "None";
  Value& processing = body["DataProcessing"];
  if (!processing.Has("InputFilter")) processing["InputFilter"] = "$";
  if (!processing.Has("OutputFilter")) processing["OutputFilter"] = "$";
  if (!processing.Has("JoinSource")) processing["JoinSource"] = "None";
  body["_runtime"] = Value::MakeMap();
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps().resources->Create(Kind(), ctx.account_id, ctx.region,
                                                                 in.GetString("TransformJobName"),
                                                                 std::move(body), std::move(tags)));
  Notify(job.arn);
  return Value::Object({{"TransformJobArn", job.arn}});
}

Result<Value> TransformJobs::Describe(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps().resources->Get(Kind(), ctx.account_id, ctx.region,
                                                              in.GetString("TransformJobName")));
  Value out = PublicBody(job.body);
  Value summary = Summary(job);
  summary.Erase("LastModifiedTime");  // not a member of DescribeTransformJob's answer
  for (auto& [name, value] : summary.map()) out[name] = value;
  if (const Value* started = Runtime(job).Find("started_at")) {
    out["TransformStartTime"] = Value::Timestamp(started->AsDouble());
  }
  return out;
}

Result<Value> TransformJobs::List(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(control::ListQuery query, control::ListQueryFromInput(Kind(), in));
  NIMBUS_ASSIGN_OR_RETURN(control::ListPage page,
                          deps().resources->List(Kind(), ctx.account_id, ctx.region, query));
  Value summaries = Value::MakeList();
  for (const Resource& job : page.items) summaries.Append(Summary(job));
  Value out = Value::Object({{"TransformJobSummaries", std::move(summaries)}});
  if (!page.next_token.empty()) out["NextToken"] = page.next_token;
  return out;
}

Result<Value> TransformJobs::Stop(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(RequestStop(ctx.account_id, ctx.region, in.GetString("TransformJobName")));
  return Value::MakeMap();
}

// ---- Controller hooks ------------------------------------------------------------------

std::string TransformJobs::InstanceType(const Resource& job) const {
  return Member(job.body, "TransformResources").GetString("InstanceType");
}

int TransformJobs::Threads(const Resource& job) const {
  const control::InstanceType* instance = control::FindInstanceType(InstanceType(job));
  int vcpus = instance ? instance->vcpus : 1;
  return std::max(1, std::min<int>(vcpus, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN))));
}

Status TransformJobs::Stage(const Resource& job, const control::JobDir& dir) {
  NIMBUS_RETURN_IF_ERROR(dir.Create());
  std::string model_name = job.body.GetString("ModelName");
  auto model = deps().resources->Get(Models::Kind(), job.account, job.region, model_name);
  if (!model.ok())
    return Status::Validation(ModelNotFound(job.account, job.region, model_name).message());

  const Value& s3 = S3Source(job.body);
  const bool manifest = s3.GetString("S3DataType", "S3Prefix") == "ManifestFile";
  NIMBUS_ASSIGN_OR_RETURN(objects::S3Location source, objects::ParseS3Uri(s3.GetString("S3Uri")));
  NIMBUS_ASSIGN_OR_RETURN(std::string input_dir, dir.CreateChannel(kInputChannel));
  auto got = manifest ? objects::DownloadManifest(*deps().objects, source, input_dir)
                      : objects::DownloadPrefix(*deps().objects, source, input_dir);
  if (!got.ok()) {
    return Status::Validation("Cannot download the transform input from " + source.ToUri() + ": " +
                              got.status().message());
  }

  NIMBUS_ASSIGN_OR_RETURN(std::vector<serving::ContainerSpec> containers,
                          models_.Stage(*model, dir.root(), Threads(job)));
  // The job's Environment is set in every container, over the model's own.
  const Value& environment = Member(job.body, "Environment");
  bool builtin = !containers.empty();
  Value specs = Value::MakeList();
  for (serving::ContainerSpec& container : containers) {
    if (environment.is_map()) {
      for (const auto& [name, value] : environment.map()) {
        container.environment[name] = value.AsString();
      }
    }
    builtin = builtin && !container.algorithm.empty();
    specs.Append(serving::ContainerSpecToValue(container));
  }

  // Every input file, in key order, with the name SageMaker's logs give it.
  std::vector<std::string> paths;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(input_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) {
      paths.push_back(std::filesystem::relative(it->path(), input_dir).generic_string());
    }
  }
  if (ec) return Status::Internal("cannot list the staged input: " + ec.message());
  std::sort(paths.begin(), paths.end());
  Value files = Value::MakeList();
  for (const std::string& path : paths) {
    files.Append(Value::Object({{"path", path}, {"name", DisplayName(source, manifest, path)}}));
  }
  NIMBUS_RETURN_IF_ERROR(control::MakeDirs(dir.root() + "/" + kOutputDir));
  // Built-in algorithms take as many requests at once as the instance has vCPUs (their
  // execution-parameters); other containers one, SageMaker's default.
  return control::WriteJsonFile(
      dir.root() + "/" + kStagedFile,
      Value::Object({{"containers", std::move(specs)},
                     {"files", std::move(files)},
                     {"concurrency", builtin ? Threads(job) : 1},
                     {"network", !model->body.GetBool("EnableNetworkIsolation")}}));
}

Result<control::LaunchRequest> TransformJobs::LaunchRequestFor(const Resource& job,
                                                               const control::JobDir& dir) {
  NIMBUS_ASSIGN_OR_RETURN(Value staged, control::ReadJsonFile(dir.root() + "/" + kStagedFile));
  Value request_members = Value::MakeMap();
  for (const char* member : {"TransformInput", "TransformOutput", "DataProcessing", "BatchStrategy",
                             "MaxPayloadInMB", "MaxConcurrentTransforms", "ModelClientConfig"}) {
    if (const Value* v = job.body.Find(member)) request_members[member] = *v;
  }
  control::LaunchRequest request;
  request.job_id = JobId(job);
  request.kind = "transform";
  request.job_dir = dir.root();
  request.instance = control::FindInstanceType(InstanceType(job));
  request.network = staged.GetBool("network");
  request.spec = Value::Object({{"containers", Member(staged, "containers")},
                                {"files", Member(staged, "files")},
                                {"concurrency", staged.GetInt("concurrency", 1)},
                                {"request", std::move(request_members)},
                                {"input_dir", kInputDir},
                                {"output_dir", kOutputDir}});
  return request;
}

Status TransformJobs::UploadOutputs(const Resource& job, const control::JobDir& dir) {
  // The output directory holds only whole .out files (serving/batch_transform.h).
  NIMBUS_ASSIGN_OR_RETURN(
      objects::S3Location location,
      objects::ParseS3Uri(Member(job.body, "TransformOutput").GetString("S3OutputPath")));
  std::string output_dir = dir.root() + "/" + kOutputDir;
  std::error_code ec;
  if (!std::filesystem::exists(output_dir, ec)) return Status::Ok();
  auto uploaded = objects::UploadDirectory(*deps().objects, output_dir, location);
  if (!uploaded.ok()) {
    return Status::Validation("Cannot upload the transform output to " + location.ToUri() + ": " +
                              uploaded.status().message());
  }
  return Status::Ok();
}

Status TransformJobs::Collect(const Resource& job, const control::JobDir& dir,
                              control::JobState state) {
  if (state != control::JobState::kSucceeded && state != control::JobState::kStopped) {
    return Status::Ok();
  }
  return UploadOutputs(job, dir);
}

Status TransformJobs::OnPoll(const Resource& job, const control::JobDir& dir, bool final) {
  if (!final) return Status::Ok();
  auto record = control::ReadWorkerRecord(dir);
  if (!record.ok() || !record->has_value() || (*record)->state != control::JobState::kFailed) {
    return Status::Ok();
  }
  return UploadOutputs(job, dir);
}

}  // namespace nimbus::services
