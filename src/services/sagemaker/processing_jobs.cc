#include "services/sagemaker/processing_jobs.h"

#include <set>

#include "core/clock.h"
#include "core/strings.h"
#include "objects/transfer.h"
#include "services/sagemaker/sagemaker_common.h"

namespace nimbus::services {
namespace {

using control::Resource;

constexpr std::string_view kProcessingRoot = "/opt/ml/processing/";
// A LocalPath under /opt/ml/processing/, as the path relative to the job directory
// (which the sandbox shows at /opt/ml).
Result<std::string> JobRelativePath(std::string_view what, const std::string& local_path) {
  if (!StartsWith(local_path, kProcessingRoot) || local_path.find("/../") != std::string::npos ||
      local_path.ends_with("/..")) {
    return Invalid(std::string(what) + " LocalPath " + local_path +
                   " must be an absolute path under /opt/ml/processing/");
  }
  return local_path.substr(std::string_view("/opt/ml/").size());
}

Status ValidateCreate(const Value& in) {
  const Value& cluster = Member(Member(in, "ProcessingResources"), "ClusterConfig");
  if (cluster.GetInt("InstanceCount", 1) > 1) {
    return Invalid(
        "ProcessingResources.ClusterConfig.InstanceCount > 1 is not supported: Nimbus runs "
        "processing jobs on one instance");
  }
  std::string type = cluster.GetString("InstanceType");
  if (control::FindInstanceType(type) == nullptr) {
    return Invalid("Instance type " + type + " is not one Nimbus knows");
  }
  const Value& app = Member(in, "AppSpecification");
  const Value* entrypoint = app.Find("ContainerEntrypoint");
  if (entrypoint == nullptr || !entrypoint->is_list() || entrypoint->list().empty()) {
    return Invalid("AppSpecification.ContainerEntrypoint is required: Nimbus does not run image " +
                   app.GetString("ImageUri") +
                   "; it runs the entrypoint (e.g. [\"python3\", "
                   "\"/opt/ml/processing/input/code/script.py\"]) on its own runtime");
  }
  std::set<std::string> names;
  if (const Value* inputs = in.Find("ProcessingInputs"); inputs && inputs->is_list()) {
    for (const Value& input : inputs->list()) {
      std::string name = input.GetString("InputName");
      if (!names.insert(name).second) {
        return Invalid("Input and output names must be unique: " + name + " appears twice");
      }
      if (input.Has("DatasetDefinition")) {
        return Invalid("ProcessingInput " + name +
                       ": DatasetDefinition (Athena, Redshift) is not supported by Nimbus; use "
                       "S3Input");
      }
      const Value* s3 = input.Find("S3Input");
      if (s3 == nullptr) return Invalid("ProcessingInput " + name + " needs an S3Input");
      if (s3->GetString("S3InputMode", "File") != "File") {
        return Invalid("ProcessingInput " + name +
                       ": S3InputMode Pipe is not supported for processing jobs by Nimbus; use "
                       "File");
      }
      if (s3->GetString("S3CompressionType", "None") != "None") {
        return Invalid("ProcessingInput " + name +
                       ": S3CompressionType Gzip is only valid with S3InputMode Pipe");
      }
      NIMBUS_RETURN_IF_ERROR(objects::ParseS3Uri(s3->GetString("S3Uri")).status());
      NIMBUS_RETURN_IF_ERROR(
          JobRelativePath("ProcessingInput " + name, s3->GetString("LocalPath")).status());
    }
  }
  if (const Value* config = in.Find("ProcessingOutputConfig")) {
    if (const Value* outputs = config->Find("Outputs"); outputs && outputs->is_list()) {
      for (const Value& output : outputs->list()) {
        std::string name = output.GetString("OutputName");
        if (!names.insert(name).second) {
          return Invalid("Input and output names must be unique: " + name + " appears twice");
        }
        const Value* s3 = output.Find("S3Output");
        if (s3 == nullptr) {
          return Invalid("ProcessingOutput " + name +
                         ": only S3Output is supported by Nimbus (not FeatureStoreOutput)");
        }
        NIMBUS_RETURN_IF_ERROR(objects::ParseS3Uri(s3->GetString("S3Uri")).status());
        NIMBUS_RETURN_IF_ERROR(
            JobRelativePath("ProcessingOutput " + name, s3->GetString("LocalPath")).status());
      }
    }
  }
  return Status::Ok();
}

Value Summary(const Resource& job) {
  Value out = Value::Object({{"ProcessingJobName", job.name},
                             {"ProcessingJobArn", job.arn},
                             {"CreationTime", Value::Timestamp(job.created_at)},
                             {"LastModifiedTime", Value::Timestamp(job.modified_at)},
                             {"ProcessingJobStatus", job.status}});
  const Value& runtime = JobController::Runtime(job);
  if (runtime.Has("ended_at"))
    out["ProcessingEndTime"] = Value::Timestamp((*runtime.Find("ended_at")).AsDouble());
  if (!job.failure_reason.empty()) out["FailureReason"] = job.failure_reason;
  if (runtime.Has("exit_message")) out["ExitMessage"] = runtime.GetString("exit_message");
  return out;
}

}  // namespace

const control::ResourceKind& ProcessingJobs::Kind() {
  static const control::ResourceKind kind =
      SageMakerJobKind("ProcessingJob", "processing job", "processing-job");
  return kind;
}

ProcessingJobs::ProcessingJobs(const SageMakerDeps& deps)
    : JobController(deps, Kind(),
                    JobControllerConfig{kControllerKind, "processing", kLogGroup, kLogGroup,
                                        /*secondary_statuses=*/false,
                                        /*max_runtime_stops=*/false}) {}

void ProcessingJobs::Register(aws::ServiceRegistry& registry) {
  auto bind = [this](auto method) {
    return [this, method](const Value& in, aws::RequestContext& ctx) {
      return (this->*method)(in, ctx);
    };
  };
  auto arn_of = [](const Value& in, const aws::RequestContext& ctx) {
    return Kind().Arn(ctx.account_id, ctx.region, in.GetString("ProcessingJobName"));
  };
  registry.Register("sagemaker", "CreateProcessingJob", bind(&ProcessingJobs::Create), arn_of);
  registry.Register("sagemaker", "DescribeProcessingJob", bind(&ProcessingJobs::Describe), arn_of);
  registry.Register("sagemaker", "ListProcessingJobs", bind(&ProcessingJobs::List));
  registry.Register("sagemaker", "StopProcessingJob", bind(&ProcessingJobs::Stop), arn_of);
  deps().controllers->Register(kControllerKind, this);
}

// ---- Handlers ---------------------------------------------------------------------------

Result<Value> ProcessingJobs::Create(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(ValidateCreate(in));
  NIMBUS_ASSIGN_OR_RETURN(control::Tags tags, ParseTags(in));
  Value body = in;
  body.Erase("Tags");
  body["_runtime"] = Value::MakeMap();
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps().resources->Create(Kind(), ctx.account_id, ctx.region,
                                                                 in.GetString("ProcessingJobName"),
                                                                 std::move(body), std::move(tags)));
  Notify(job.arn);
  return Value::Object({{"ProcessingJobArn", job.arn}});
}

Result<Value> ProcessingJobs::Describe(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps().resources->Get(Kind(), ctx.account_id, ctx.region,
                                                              in.GetString("ProcessingJobName")));
  Value out = PublicBody(job.body);
  Value summary = Summary(job);
  for (auto& [name, value] : summary.map()) out[name] = value;
  const Value& runtime = JobController::Runtime(job);
  if (runtime.Has("started_at")) {
    out["ProcessingStartTime"] = Value::Timestamp(runtime.Find("started_at")->AsDouble());
  }
  return out;
}

Result<Value> ProcessingJobs::List(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(control::ListQuery query, control::ListQueryFromInput(Kind(), in));
  NIMBUS_ASSIGN_OR_RETURN(control::ListPage page,
                          deps().resources->List(Kind(), ctx.account_id, ctx.region, query));
  Value summaries = Value::MakeList();
  for (const Resource& job : page.items) summaries.Append(Summary(job));
  Value out = Value::Object({{"ProcessingJobSummaries", std::move(summaries)}});
  if (!page.next_token.empty()) out["NextToken"] = page.next_token;
  return out;
}

Result<Value> ProcessingJobs::Stop(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(
      RequestStop(ctx.account_id, ctx.region, in.GetString("ProcessingJobName")));
  return Value::MakeMap();
}

// ---- Controller hooks ------------------------------------------------------------------

std::string ProcessingJobs::InstanceType(const Resource& job) const {
  return Member(Member(job.body, "ProcessingResources"), "ClusterConfig").GetString("InstanceType");
}

Status ProcessingJobs::Stage(const Resource& job, const control::JobDir& dir) {
  NIMBUS_RETURN_IF_ERROR(dir.Create());
  if (const Value* inputs = job.body.Find("ProcessingInputs"); inputs && inputs->is_list()) {
    for (const Value& input : inputs->list()) {
      const Value& s3 = *input.Find("S3Input");
      NIMBUS_ASSIGN_OR_RETURN(std::string rel,
                              JobRelativePath("ProcessingInput", s3.GetString("LocalPath")));
      NIMBUS_ASSIGN_OR_RETURN(objects::S3Location location,
                              objects::ParseS3Uri(s3.GetString("S3Uri")));
      std::string target = dir.root() + "/" + rel;
      NIMBUS_RETURN_IF_ERROR(control::MakeDirs(target));
      Result<objects::TransferStats> got =
          s3.GetString("S3DataType", "S3Prefix") == "ManifestFile"
              ? objects::DownloadManifest(*deps().objects, location, target)
              : objects::DownloadPrefix(*deps().objects, location, target);
      if (!got.ok()) {
        return Status::Validation("Cannot download ProcessingInput " +
                                  input.GetString("InputName") + " from " + s3.GetString("S3Uri") +
                                  ": " + got.status().message());
      }
    }
  }
  if (const Value* config = job.body.Find("ProcessingOutputConfig")) {
    if (const Value* outputs = config->Find("Outputs"); outputs && outputs->is_list()) {
      for (const Value& output : outputs->list()) {
        NIMBUS_ASSIGN_OR_RETURN(
            std::string rel,
            JobRelativePath("ProcessingOutput", (*output.Find("S3Output")).GetString("LocalPath")));
        NIMBUS_RETURN_IF_ERROR(control::MakeDirs(dir.root() + "/" + rel));
      }
    }
  }
  // /opt/ml/config: what SageMaker's processing containers find there.
  NIMBUS_RETURN_IF_ERROR(control::MakeDirs(dir.root() + "/config"));
  Value config = PublicBody(job.body);
  config["ProcessingJobArn"] = job.arn;
  NIMBUS_RETURN_IF_ERROR(
      control::WriteJsonFile(dir.root() + "/config/processingjobconfig.json", config));
  std::string type =
      Member(Member(job.body, "ProcessingResources"), "ClusterConfig").GetString("InstanceType");
  return control::WriteJsonFile(dir.root() + "/config/resourceconfig.json",
                                control::MakeResourceConfig(type, 1));
}

Result<control::LaunchRequest> ProcessingJobs::LaunchRequestFor(const Resource& job,
                                                                const control::JobDir& dir) {
  const Value& app = Member(job.body, "AppSpecification");
  Value argv = Value::MakeList();
  for (const Value& part : (*app.Find("ContainerEntrypoint")).list()) argv.Append(part);
  if (const Value* args = app.Find("ContainerArguments"); args && args->is_list()) {
    for (const Value& part : args->list()) argv.Append(part);
  }
  Value env = Value::MakeMap();
  if (const Value* environment = job.body.Find("Environment");
      environment && environment->is_map()) {
    env = *environment;
  }
  control::LaunchRequest request;
  request.job_id = JobId(job);
  request.kind = "command";
  request.job_dir = dir.root();
  request.spec =
      Value::Object({{"argv", std::move(argv)}, {"env", std::move(env)}, {"workdir", "/opt/ml"}});
  std::string type =
      Member(Member(job.body, "ProcessingResources"), "ClusterConfig").GetString("InstanceType");
  request.instance = control::FindInstanceType(type);
  request.network = !Member(job.body, "NetworkConfig").GetBool("EnableNetworkIsolation", false);
  request.max_runtime_seconds =
      Member(job.body, "StoppingCondition").GetInt("MaxRuntimeInSeconds", 86400);
  return request;
}

Status ProcessingJobs::Collect(const Resource& job, const control::JobDir& dir,
                               control::JobState state) {
  if (state != control::JobState::kSucceeded) return Status::Ok();
  const Value* config = job.body.Find("ProcessingOutputConfig");
  const Value* outputs = config ? config->Find("Outputs") : nullptr;
  if (outputs == nullptr || !outputs->is_list()) return Status::Ok();
  for (const Value& output : outputs->list()) {
    const Value& s3 = *output.Find("S3Output");
    NIMBUS_ASSIGN_OR_RETURN(std::string rel,
                            JobRelativePath("ProcessingOutput", s3.GetString("LocalPath")));
    NIMBUS_ASSIGN_OR_RETURN(objects::S3Location location,
                            objects::ParseS3Uri(s3.GetString("S3Uri")));
    auto uploaded = objects::UploadDirectory(*deps().objects, dir.root() + "/" + rel, location);
    if (!uploaded.ok()) {
      return Status::Validation("Cannot upload ProcessingOutput " + output.GetString("OutputName") +
                                " to " + s3.GetString("S3Uri") + ": " +
                                uploaded.status().message());
    }
  }
  return Status::Ok();
}

}  // namespace nimbus::services
