#include "services/sagemaker/training_jobs.h"

#include <re2/re2.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "control/job_samples.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/logging.h"
#include "core/strings.h"
#include "ml/algorithm.h"
#include "ml/builtin/builtin_algorithms.h"
#include "objects/archive.h"
#include "objects/transfer.h"
#include "services/sagemaker/sagemaker_common.h"

namespace nimbus::services {
namespace {

using control::Resource;

constexpr const char* kMetricNamespace = "/aws/sagemaker/TrainingJobs";
constexpr std::string_view kOptMl = "/opt/ml/";
constexpr double kCheckpointSyncSeconds = 60;

control::ResourceKind MakeKind() {
  control::StateMachine states;
  states.initial_status = kJobInProgress;
  states.initial_secondary_status = "Starting";
  // InProgress -> Stopped: a job that reaches MaxRuntimeInSeconds is stopped, as on AWS.
  states.transitions = {{kJobInProgress, {kJobCompleted, kJobFailed, kJobStopping, kJobStopped}},
                        {kJobStopping, {kJobStopped, kJobCompleted, kJobFailed}}};
  states.terminal = {kJobCompleted, kJobFailed, kJobStopped};
  control::ResourceKind kind =
      control::SageMakerKind("TrainingJob", "training job", "training-job", states);
  kind.errors.not_found = {"ValidationException", 400, "Requested resource not found."};
  kind.errors.in_use = {"ResourceInUse", 400,
                        "Training job names must be unique within an AWS account and region, "
                        "and a training job with this name already exists ({arn})"};
  return kind;
}

const Value& Hyperparameters(const Resource& job) { return Member(job.body, "HyperParameters"); }

// A path under /opt/ml/, as the path relative to the job directory (which the sandbox
// shows at /opt/ml).
Result<std::string> JobRelativePath(std::string_view what, const std::string& path) {
  if (!StartsWith(path, kOptMl) || path.find("/../") != std::string::npos ||
      path.ends_with("/..")) {
    return Invalid(std::string(what) + " " + path +
                   " must be an absolute path under /opt/ml/ (Nimbus shows jobs only their "
                   "SageMaker directories)");
  }
  std::string rel = path.substr(kOptMl.size());
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  return rel;
}

std::string CheckpointLocalPath(const Value& body) {
  return Member(Member(body, "CheckpointConfig"), "LocalPath").is_string()
             ? Member(Member(body, "CheckpointConfig"), "LocalPath").AsString()
             : "/opt/ml/checkpoints";
}

// The channels' data sources, checked.
Status ValidateChannels(const Value& in) {
  std::set<std::string> names;
  const Value& channels = Member(in, "InputDataConfig");
  if (!channels.is_list()) return Status::Ok();
  for (const Value& channel : channels.list()) {
    std::string name = channel.GetString("ChannelName");
    if (!names.insert(name).second) {
      return Invalid("Channel names must be unique: " + name + " appears twice");
    }
    const Value& s3 = Member(Member(channel, "DataSource"), "S3DataSource");
    if (!s3.is_map()) {
      return Invalid("Channel " + name +
                     ": only S3DataSource is supported by Nimbus (not FileSystemDataSource)");
    }
    std::string type = s3.GetString("S3DataType", "S3Prefix");
    if (type != "S3Prefix" && type != "ManifestFile") {
      return Invalid("Channel " + name + ": S3DataType " + type +
                     " is not supported by Nimbus; use S3Prefix or ManifestFile");
    }
    NIMBUS_RETURN_IF_ERROR(objects::ParseS3Uri(s3.GetString("S3Uri")).status());
    if (channel.GetString("CompressionType", "None") != "None") {
      return Invalid("Channel " + name + ": CompressionType Gzip is not supported by Nimbus");
    }
  }
  return Status::Ok();
}

// Decides what runs the job; the runtime record names it.
Result<Value> ResolveRunner(const Value& in) {
  const Value& spec = Member(in, "AlgorithmSpecification");
  const Value& hps = Member(in, "HyperParameters");
  std::string image = spec.GetString("TrainingImage");
  if (spec.Has("AlgorithmName")) {
    return Invalid(
        "AlgorithmSpecification.AlgorithmName (algorithm resources and AWS "
        "Marketplace algorithms) is not supported by Nimbus; give a TrainingImage");
  }
  if (const Value* entrypoint = spec.Find("ContainerEntrypoint");
      entrypoint && entrypoint->is_list() && !entrypoint->list().empty()) {
    return Value::Object({{"runner", "entrypoint"}});
  }
  if (hps.Has("sagemaker_program")) {
    std::string program = hps.GetString("sagemaker_program");
    // The SDK JSON-encodes script-mode hyperparameters: "\"train.py\"".
    if (auto decoded = ParseJson(program); decoded.ok() && decoded->is_string()) {
      program = decoded->AsString();
    }
    if (program.empty() || program.find("..") != std::string::npos || program[0] == '/') {
      return Invalid("HyperParameters.sagemaker_program '" + program +
                     "' must be a path inside the submitted source directory");
    }
    return Value::Object({{"runner", "script"}, {"program", program}});
  }
  ml::RegisterBuiltinAlgorithms();
  if (const ml::AlgorithmInfo* info = ml::FindAlgorithmForImage(image)) {
    return Value::Object({{"runner", "builtin"}, {"algorithm", info->name}});
  }
  std::string known;
  for (const ml::AlgorithmInfo* info : ml::AllAlgorithms()) {
    known += (known.empty() ? "" : ", ") + info->name;
  }
  return Invalid("Nimbus cannot run the training image " + image +
                 ": it is not the image of a SageMaker built-in algorithm Nimbus implements (" +
                 known +
                 "), and the job names no script (hyperparameter sagemaker_program) or "
                 "AlgorithmSpecification.ContainerEntrypoint to run");
}

Status ValidateCreate(const Value& in) {
  const Value& resources = Member(in, "ResourceConfig");
  if (resources.GetInt("InstanceCount", 1) > 1) {
    return Invalid(
        "ResourceConfig.InstanceCount > 1 is not supported: Nimbus trains on one instance "
        "(multi-node training is not available yet)");
  }
  if (resources.Has("InstanceGroups")) {
    return Invalid("ResourceConfig.InstanceGroups (heterogeneous clusters) is not supported");
  }
  std::string type = resources.GetString("InstanceType");
  if (control::FindInstanceType(type) == nullptr) {
    return Invalid("Instance type " + type + " is not one Nimbus knows");
  }
  NIMBUS_RETURN_IF_ERROR(ValidateChannels(in));
  NIMBUS_RETURN_IF_ERROR(
      objects::ParseS3Uri(Member(in, "OutputDataConfig").GetString("S3OutputPath")).status());
  if (in.Has("CheckpointConfig")) {
    NIMBUS_RETURN_IF_ERROR(
        objects::ParseS3Uri(Member(in, "CheckpointConfig").GetString("S3Uri")).status());
    NIMBUS_RETURN_IF_ERROR(
        JobRelativePath("CheckpointConfig.LocalPath", CheckpointLocalPath(in)).status());
  }
  return Status::Ok();
}

// File, Pipe or FastFile: the channel's InputMode, else the job's TrainingInputMode.
std::string ChannelMode(const Value& body, const Value& channel) {
  std::string mode = Member(body, "AlgorithmSpecification").GetString("TrainingInputMode", "File");
  return channel.GetString("InputMode", mode);
}

// The channels as inputdataconfig.json shows them to the container.
Value InputDataConfig(const Value& body) {
  Value config = Value::MakeMap();
  const Value& channels = Member(body, "InputDataConfig");
  if (!channels.is_list()) return config;
  for (const Value& channel : channels.list()) {
    Value entry = Value::Object(
        {{"TrainingInputMode", ChannelMode(body, channel)},
         {"S3DistributionType", Member(Member(channel, "DataSource"), "S3DataSource")
                                    .GetString("S3DataDistributionType", "FullyReplicated")},
         {"RecordWrapperType", channel.GetString("RecordWrapperType", "None")}});
    if (channel.Has("ContentType")) entry["ContentType"] = channel.GetString("ContentType");
    config[channel.GetString("ChannelName")] = std::move(entry);
  }
  return config;
}

// SageMaker's S3 layout of a job's outputs: <S3OutputPath>/<job-name>/output/.
objects::S3Location OutputLocation(const Resource& job) {
  auto location =
      objects::ParseS3Uri(Member(job.body, "OutputDataConfig").GetString("S3OutputPath"));
  objects::S3Location out = location.ok() ? *location : objects::S3Location{};
  if (!out.key.empty() && out.key.back() != '/') out.key += '/';
  out.key += job.name + "/output/";
  return out;
}

Value Summary(const Resource& job) {
  Value out = Value::Object({{"TrainingJobName", job.name},
                             {"TrainingJobArn", job.arn},
                             {"CreationTime", Value::Timestamp(job.created_at)},
                             {"LastModifiedTime", Value::Timestamp(job.modified_at)},
                             {"TrainingJobStatus", job.status},
                             {"SecondaryStatus", job.secondary_status}});
  const Value& runtime = JobController::Runtime(job);
  if (const Value* ended = runtime.Find("ended_at")) {
    out["TrainingEndTime"] = Value::Timestamp(ended->AsDouble());
  }
  return out;
}

Value SecondaryStatusTransitions(const Resource& job) {
  Value transitions = Value::MakeList();
  std::vector<const control::StatusTransition*> entries;
  for (const auto& entry : job.history) {
    if (entry.secondary_status.empty()) continue;
    if (!entries.empty() && entries.back()->secondary_status == entry.secondary_status) continue;
    entries.push_back(&entry);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    static const std::map<std::string, std::string> kDefaultMessages = {
        {"Starting", "Starting the training job"},
        {"Completed", "Training job completed"},
        {"Stopping", "Stopping the training job"},
        {"Stopped", "Training job stopped"},
        {"MaxRuntimeExceeded", "Job stopped because it exceeded its MaxRuntimeInSeconds"}};
    std::string message = entries[i]->message;
    if (auto d = kDefaultMessages.find(entries[i]->secondary_status);
        message.empty() && d != kDefaultMessages.end()) {
      message = d->second;
    }
    Value t = Value::Object({{"Status", entries[i]->secondary_status},
                             {"StartTime", Value::Timestamp(entries[i]->at)},
                             {"StatusMessage", message}});
    if (i + 1 < entries.size()) {
      t["EndTime"] = Value::Timestamp(entries[i + 1]->at);
    } else if (TrainingJobs::Kind().states.IsTerminal(job.status)) {
      t["EndTime"] = Value::Timestamp(entries[i]->at);
    }
    transitions.Append(std::move(t));
  }
  return transitions;
}

std::string SageMakerJson(const Value& v) { return ToJson(v); }

}  // namespace

const control::ResourceKind& TrainingJobs::Kind() {
  static const control::ResourceKind kind = MakeKind();
  return kind;
}

TrainingJobs::TrainingJobs(const SageMakerDeps& deps)
    : JobController(deps, Kind(),
                    JobControllerConfig{kControllerKind, "training", kLogGroup, kMetricNamespace,
                                        /*secondary_statuses=*/true,
                                        /*max_runtime_stops=*/true}) {}

void TrainingJobs::Register(aws::ServiceRegistry& registry) {
  auto bind = [this](auto method) {
    return [this, method](const Value& in, aws::RequestContext& ctx) {
      return (this->*method)(in, ctx);
    };
  };
  auto arn_of = [](const Value& in, const aws::RequestContext& ctx) {
    return Kind().Arn(ctx.account_id, ctx.region, in.GetString("TrainingJobName"));
  };
  registry.Register("sagemaker", "CreateTrainingJob", bind(&TrainingJobs::Create), arn_of);
  registry.Register("sagemaker", "DescribeTrainingJob", bind(&TrainingJobs::Describe), arn_of);
  registry.Register("sagemaker", "ListTrainingJobs", bind(&TrainingJobs::List));
  registry.Register("sagemaker", "StopTrainingJob", bind(&TrainingJobs::Stop), arn_of);
  registry.Register("sagemaker", "UpdateTrainingJob", bind(&TrainingJobs::Update), arn_of);
  deps().controllers->Register(kControllerKind, this);
}

// ---- Handlers ---------------------------------------------------------------------------

Result<Value> TrainingJobs::Create(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(ValidateCreate(in));
  NIMBUS_ASSIGN_OR_RETURN(Value runtime, ResolveRunner(in));
  NIMBUS_ASSIGN_OR_RETURN(control::Tags tags, ParseTags(in));
  Value body = in;
  body.Erase("Tags");
  if (!body.Has("EnableNetworkIsolation")) body["EnableNetworkIsolation"] = false;
  if (!body.Has("EnableInterContainerTrafficEncryption")) {
    body["EnableInterContainerTrafficEncryption"] = false;
  }
  if (!body.Has("EnableManagedSpotTraining")) body["EnableManagedSpotTraining"] = false;
  body["_runtime"] = std::move(runtime);
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps().resources->Create(Kind(), ctx.account_id, ctx.region,
                                                                 in.GetString("TrainingJobName"),
                                                                 std::move(body), std::move(tags)));
  Notify(job.arn);
  return Value::Object({{"TrainingJobArn", job.arn}});
}

Result<Value> TrainingJobs::Describe(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps().resources->Get(Kind(), ctx.account_id, ctx.region,
                                                              in.GetString("TrainingJobName")));
  Value out = PublicBody(job.body);
  Value summary = Summary(job);
  for (auto& [name, value] : summary.map()) out[name] = value;
  if (!job.failure_reason.empty()) out["FailureReason"] = job.failure_reason;
  const Value& runtime = Runtime(job);
  if (const Value* started = runtime.Find("started_at")) {
    out["TrainingStartTime"] = Value::Timestamp(started->AsDouble());
    double end = runtime.Has("ended_at") ? runtime.Find("ended_at")->AsDouble()
                                         : SystemClock::Instance().Now();
    if (runtime.Has("ended_at")) {
      int64_t seconds = std::max<int64_t>(1, static_cast<int64_t>(end - started->AsDouble()));
      out["TrainingTimeInSeconds"] = seconds;
      out["BillableTimeInSeconds"] = seconds;
    }
  }
  out["SecondaryStatusTransitions"] = SecondaryStatusTransitions(job);
  if (const Value* metrics = runtime.Find("final_metrics"); metrics && metrics->is_list()) {
    out["FinalMetricDataList"] = *metrics;
  }
  if (runtime.Has("model_artifacts")) {
    out["ModelArtifacts"] =
        Value::Object({{"S3ModelArtifacts", runtime.GetString("model_artifacts")}});
  }
  return out;
}

Result<Value> TrainingJobs::List(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(control::ListQuery query, control::ListQueryFromInput(Kind(), in));
  NIMBUS_ASSIGN_OR_RETURN(control::ListPage page,
                          deps().resources->List(Kind(), ctx.account_id, ctx.region, query));
  Value summaries = Value::MakeList();
  for (const Resource& job : page.items) summaries.Append(Summary(job));
  Value out = Value::Object({{"TrainingJobSummaries", std::move(summaries)}});
  if (!page.next_token.empty()) out["NextToken"] = page.next_token;
  return out;
}

Result<Value> TrainingJobs::Stop(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(RequestStop(ctx.account_id, ctx.region, in.GetString("TrainingJobName")));
  return Value::MakeMap();
}

Result<Value> TrainingJobs::Update(const Value& in, aws::RequestContext& ctx) {
  std::string name = in.GetString("TrainingJobName");
  NIMBUS_ASSIGN_OR_RETURN(Resource job,
                          deps().resources->Get(Kind(), ctx.account_id, ctx.region, name));
  if (Kind().states.IsTerminal(job.status)) {
    return Invalid("The request was rejected because the training job is in status " + job.status +
                   ".");
  }
  NIMBUS_ASSIGN_OR_RETURN(
      job, deps().resources->Update(Kind(), ctx.account_id, ctx.region, name, [&](Resource& r) {
        for (const char* member :
             {"ProfilerConfig", "ProfilerRuleConfigurations", "RemoteDebugConfig"}) {
          if (const Value* v = in.Find(member)) r.body[member] = *v;
        }
        if (const Value* keep = Member(in, "ResourceConfig").Find("KeepAlivePeriodInSeconds")) {
          r.body["ResourceConfig"]["KeepAlivePeriodInSeconds"] = *keep;
        }
        return Status::Ok();
      }));
  return Value::Object({{"TrainingJobArn", job.arn}});
}

// ---- Controller hooks -------------------------------------------------------------------

std::string TrainingJobs::InstanceType(const Resource& job) const {
  return Member(job.body, "ResourceConfig").GetString("InstanceType");
}

Status TrainingJobs::Stage(const Resource& job, const control::JobDir& dir) {
  NIMBUS_RETURN_IF_ERROR(dir.Create());
  const Value& channels = Member(job.body, "InputDataConfig");
  if (channels.is_list()) {
    for (const Value& channel : channels.list()) {
      std::string name = channel.GetString("ChannelName");
      const Value& s3 = Member(Member(channel, "DataSource"), "S3DataSource");
      NIMBUS_ASSIGN_OR_RETURN(objects::S3Location location,
                              objects::ParseS3Uri(s3.GetString("S3Uri")));
      // Pipe mode: staged out of the container's view; the worker streams it into the
      // channel's named pipes (worker/pipe_feeder.h).
      std::string target;
      if (ChannelMode(job.body, channel) == "Pipe") {
        target = dir.root() + "/input/pipe/" + name;
        NIMBUS_RETURN_IF_ERROR(control::MakeDirs(target));
      } else {
        NIMBUS_ASSIGN_OR_RETURN(target, dir.CreateChannel(name));
      }
      auto got = s3.GetString("S3DataType", "S3Prefix") == "ManifestFile"
                     ? objects::DownloadManifest(*deps().objects, location, target)
                     : objects::DownloadPrefix(*deps().objects, location, target);
      if (!got.ok()) {
        return Status::Validation("Cannot download channel " + name + " from " +
                                  s3.GetString("S3Uri") + ": " + got.status().message());
      }
    }
  }
  Value hyperparameters = Hyperparameters(job).is_map() ? Hyperparameters(job) : Value::MakeMap();
  NIMBUS_RETURN_IF_ERROR(dir.WriteInputConfig(hyperparameters,
                                              control::MakeResourceConfig(InstanceType(job), 1),
                                              InputDataConfig(job.body)));
  // Checkpoints of an earlier run are restored, as SageMaker does; none yet is fine.
  if (job.body.Has("CheckpointConfig")) {
    NIMBUS_ASSIGN_OR_RETURN(std::string rel, JobRelativePath("CheckpointConfig.LocalPath",
                                                             CheckpointLocalPath(job.body)));
    NIMBUS_ASSIGN_OR_RETURN(
        objects::S3Location location,
        objects::ParseS3Uri(Member(job.body, "CheckpointConfig").GetString("S3Uri")));
    NIMBUS_RETURN_IF_ERROR(control::MakeDirs(dir.root() + "/" + rel));
    auto restored = objects::DownloadPrefix(*deps().objects, location, dir.root() + "/" + rel);
    if (!restored.ok() && restored.status().kind() != ErrorKind::kValidation) {
      return Status::Validation("Cannot restore checkpoints from " + location.ToUri() + ": " +
                                restored.status().message());
    }
  }
  if (Runtime(job).GetString("runner") == "script") {
    std::string bundle = Hyperparameters(job).GetString("sagemaker_submit_directory");
    if (auto decoded = ParseJson(bundle); decoded.ok() && decoded->is_string()) {
      bundle = decoded->AsString();
    }
    NIMBUS_ASSIGN_OR_RETURN(objects::S3Location location, objects::ParseS3Uri(bundle));
    std::string archive = dir.root() + "/sourcedir.tar.gz";
    auto got = objects::DownloadObject(*deps().objects, location.bucket, location.key, archive);
    if (!got.ok()) {
      return Status::Validation("Cannot download the source directory " + bundle + ": " +
                                got.status().message());
    }
    NIMBUS_RETURN_IF_ERROR(objects::ExtractArchive(archive, dir.CodeDir()));
    std::error_code ec;
    std::filesystem::remove(archive, ec);
    std::string program = Runtime(job).GetString("program");
    if (!std::filesystem::exists(dir.CodeDir() + "/" + program)) {
      return Status::Validation("The entry point " + program + " is not in " + bundle);
    }
  }
  return Status::Ok();
}

Result<control::LaunchRequest> TrainingJobs::LaunchRequestFor(const Resource& job,
                                                              const control::JobDir& dir) {
  control::LaunchRequest request;
  request.job_id = JobId(job);
  request.job_dir = dir.root();
  request.instance = control::FindInstanceType(InstanceType(job));
  request.network = !job.body.GetBool("EnableNetworkIsolation");
  request.max_runtime_seconds =
      Member(job.body, "StoppingCondition").GetInt("MaxRuntimeInSeconds", 86400);
  int vcpus = request.instance ? request.instance->vcpus : 1;
  int threads =
      std::max(1, std::min<int>(vcpus, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN))));

  Value pipes = Value::MakeList();
  if (const Value& channels = Member(job.body, "InputDataConfig"); channels.is_list()) {
    for (const Value& channel : channels.list()) {
      if (ChannelMode(job.body, channel) == "Pipe") {
        Value pipe = Value::Object({{"channel", channel.GetString("ChannelName")}});
        if (const Value* seed = Member(channel, "ShuffleConfig").Find("Seed")) {
          pipe["shuffle_seed"] = seed->AsInt();
        }
        pipes.Append(std::move(pipe));
      }
    }
  }
  const Value& runtime = Runtime(job);
  std::string runner = runtime.GetString("runner");
  if (runner == "builtin") {
    request.kind = "train";
    request.spec = Value::Object({{"algorithm", runtime.GetString("algorithm")},
                                  {"num_threads", threads},
                                  {"checkpoints", job.body.Has("CheckpointConfig")},
                                  {"pipes", std::move(pipes)}});
    return request;
  }

  // Script mode and entrypoints see SageMaker's training environment.
  Value hps = Value::MakeMap();
  std::vector<std::string> args;
  if (Hyperparameters(job).is_map()) {
    for (const auto& [name, value] : Hyperparameters(job).map()) {
      std::string text = value.AsString();
      if (!StartsWith(name, "sagemaker_")) {
        auto decoded = ParseJson(text);
        Value v = decoded.ok() ? *decoded : Value(text);
        hps[name] = v;
        args.push_back("--" + name);
        args.push_back(v.is_string() ? v.AsString() : SageMakerJson(v));
      }
    }
  }
  Value channels = Value::MakeList();
  Value env = Value::MakeMap();
  const Value& input_channels = Member(job.body, "InputDataConfig");
  if (input_channels.is_list()) {
    for (const Value& channel : input_channels.list()) {
      std::string name = channel.GetString("ChannelName");
      channels.Append(name);
      env["SM_CHANNEL_" + ToUpper(name)] = "/opt/ml/input/data/" + name;
    }
  }
  env["SM_MODEL_DIR"] = "/opt/ml/model";
  env["SM_INPUT_DIR"] = "/opt/ml/input";
  env["SM_INPUT_CONFIG_DIR"] = "/opt/ml/input/config";
  env["SM_OUTPUT_DIR"] = "/opt/ml/output";
  env["SM_OUTPUT_DATA_DIR"] = "/opt/ml/output/data";
  env["SM_OUTPUT_INTERMEDIATE_DIR"] = "/opt/ml/output/intermediate";
  env["SM_CHANNELS"] = SageMakerJson(channels);
  env["SM_HPS"] = SageMakerJson(hps);
  for (const auto& [name, value] : hps.map()) {
    env["SM_HP_" + ToUpper(name)] = value.is_string() ? value.AsString() : SageMakerJson(value);
  }
  env["SM_CURRENT_HOST"] = "algo-1";
  env["SM_HOSTS"] = "[\"algo-1\"]";
  env["SM_NUM_CPUS"] = std::to_string(threads);
  env["SM_NUM_GPUS"] = std::to_string(request.instance ? request.instance->gpus : 0);
  env["SM_CURRENT_INSTANCE_TYPE"] = InstanceType(job);
  env["SM_RESOURCE_CONFIG"] = SageMakerJson(control::MakeResourceConfig(InstanceType(job), 1));
  env["SM_INPUT_DATA_CONFIG"] = SageMakerJson(InputDataConfig(job.body));
  env["SM_TRAINING_ENV"] = SageMakerJson(Value::Object({{"job_name", job.name},
                                                        {"hyperparameters", hps},
                                                        {"channel_input_dirs", channels},
                                                        {"model_dir", "/opt/ml/model"},
                                                        {"current_host", "algo-1"},
                                                        {"hosts", Value::List{"algo-1"}}}));
  env["TRAINING_JOB_NAME"] = job.name;
  env["TRAINING_JOB_ARN"] = job.arn;
  if (const Value* user = job.body.Find("Environment"); user && user->is_map()) {
    for (const auto& [name, value] : user->map()) env[name] = value;
  }

  Value argv = Value::MakeList();
  std::string workdir = "/opt/ml";
  if (runner == "script") {
    std::string program = runtime.GetString("program");
    env["SM_USER_ENTRY_POINT"] = program;
    env["SM_MODULE_DIR"] = "/opt/ml/code";
    Value list = Value::MakeList();
    for (const auto& a : args) list.Append(a);
    env["SM_USER_ARGS"] = SageMakerJson(list);
    argv.Append(program.ends_with(".sh") ? "sh" : "python3");
    argv.Append("/opt/ml/code/" + program);
    for (const auto& a : args) argv.Append(a);
    workdir = "/opt/ml/code";
  } else {
    const Value& spec = Member(job.body, "AlgorithmSpecification");
    for (const Value& part : Member(spec, "ContainerEntrypoint").list()) argv.Append(part);
    if (const Value& more = Member(spec, "ContainerArguments"); more.is_list()) {
      for (const Value& part : more.list()) argv.Append(part);
    }
  }
  request.kind = "command";
  request.spec = Value::Object({{"argv", std::move(argv)},
                                {"env", std::move(env)},
                                {"workdir", workdir},
                                {"pipes", std::move(pipes)}});
  return request;
}

Status TrainingJobs::SyncCheckpoints(const Resource& job, const control::JobDir& dir) {
  if (!job.body.Has("CheckpointConfig")) return Status::Ok();
  NIMBUS_ASSIGN_OR_RETURN(std::string rel, JobRelativePath("CheckpointConfig.LocalPath",
                                                           CheckpointLocalPath(job.body)));
  NIMBUS_ASSIGN_OR_RETURN(
      objects::S3Location location,
      objects::ParseS3Uri(Member(job.body, "CheckpointConfig").GetString("S3Uri")));
  return objects::UploadDirectory(*deps().objects, dir.root() + "/" + rel, location).status();
}

Status TrainingJobs::Collect(const Resource& job, const control::JobDir& dir,
                             control::JobState state) {
  NIMBUS_RETURN_IF_ERROR(SyncCheckpoints(job, dir));
  objects::S3Location output = OutputLocation(job);
  std::string archive = dir.root() + "/model.tar.gz";
  NIMBUS_RETURN_IF_ERROR(objects::CreateTarGz(dir.ModelDir(), archive));
  NIMBUS_RETURN_IF_ERROR(
      objects::UploadFile(*deps().objects, archive, output.bucket, output.key + "model.tar.gz")
          .status());
  std::error_code ec;
  if (!std::filesystem::is_empty(dir.OutputDataDir(), ec) && !ec) {
    std::string data = dir.root() + "/output.tar.gz";
    NIMBUS_RETURN_IF_ERROR(objects::CreateTarGz(dir.OutputDataDir(), data));
    NIMBUS_RETURN_IF_ERROR(
        objects::UploadFile(*deps().objects, data, output.bucket, output.key + "output.tar.gz")
            .status());
  }
  // Read back by OnFinish, in the transaction that ends the job.
  return control::WriteFileAtomic(dir.root() + "/model_artifacts",
                                  "s3://" + output.bucket + "/" + output.key + "model.tar.gz");
}

Status TrainingJobs::ScanMetricDefinitions(const Resource& job, const control::JobDir& dir) {
  const Value& definitions =
      Member(Member(job.body, "AlgorithmSpecification"), "MetricDefinitions");
  if (!definitions.is_list() || definitions.list().empty()) return Status::Ok();
  std::vector<std::pair<std::string, std::unique_ptr<RE2>>> patterns;
  for (const Value& d : definitions.list()) {
    auto re = std::make_unique<RE2>(d.GetString("Regex"), RE2::Quiet);
    if (re->ok() && re->NumberOfCapturingGroups() >= 1) {
      patterns.emplace_back(d.GetString("Name"), std::move(re));
    }
  }
  control::LineTail tail(dir.LogPath("algo-1"));
  NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> lines, tail.Read());
  for (const std::string& line : lines) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    int64_t ms = ParseInt(std::string_view(line).substr(0, tab)).value_or(0);
    std::string_view text = std::string_view(line).substr(tab + 1);
    for (const auto& [name, re] : patterns) {
      std::string captured;
      if (RE2::PartialMatch(text, *re, &captured)) {
        char* end = nullptr;
        double value = std::strtod(captured.c_str(), &end);
        if (end != captured.c_str()) {
          NIMBUS_RETURN_IF_ERROR(control::AppendMetricSample(dir.root(), {ms, name, value}));
        }
      }
    }
  }
  return tail.Commit();
}

Status TrainingJobs::ShipMetrics(const Resource& job, const control::JobDir& dir) {
  control::LineTail tail(control::MetricLogPath(dir.root()));
  NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> lines, tail.Read());
  std::vector<telemetry::MetricDatum> data;
  for (const std::string& line : lines) {
    auto sample = control::ParseMetricSample(line);
    if (!sample) continue;
    telemetry::MetricDatum datum;
    datum.metric_name = sample->name;
    datum.dimensions = {{"Host", job.name + "/algo-1"}};
    datum.timestamp = static_cast<double>(sample->time_ms) / 1000;
    datum.value = sample->value;
    data.push_back(std::move(datum));
  }
  if (!data.empty() && deps().metrics != nullptr) {
    NIMBUS_RETURN_IF_ERROR(deps().metrics->Put(job.account, job.region, kMetricNamespace, data));
  }
  return tail.Commit();
}

Status TrainingJobs::OnPoll(const Resource& job, const control::JobDir& dir, bool final) {
  NIMBUS_RETURN_IF_ERROR(ScanMetricDefinitions(job, dir));
  NIMBUS_RETURN_IF_ERROR(ShipMetrics(job, dir));
  double now = SystemClock::Instance().Now();
  double last_sync = 0;
  if (auto stamp = control::ReadWholeFile(dir.root() + "/checkpoints.synced"); stamp.ok()) {
    last_sync = std::strtod(stamp->c_str(), nullptr);
  }
  if (!final && job.body.Has("CheckpointConfig") && now - last_sync >= kCheckpointSyncSeconds) {
    NIMBUS_RETURN_IF_ERROR(SyncCheckpoints(job, dir));
    return control::WriteFileAtomic(dir.root() + "/checkpoints.synced", std::to_string(now));
  }
  return Status::Ok();
}

void TrainingJobs::OnFinish(Resource& job, const std::string& status) {
  auto dir = DirOf(job);
  if (!dir.ok()) return;
  Value& runtime = job.body["_runtime"];
  // FinalMetricDataList: the last value of each metric.
  std::map<std::string, control::MetricSample> last;
  if (auto all = control::ReadWholeFile(control::MetricLogPath(dir->root())); all.ok()) {
    for (const std::string& line : Split(*all, '\n')) {
      if (auto sample = control::ParseMetricSample(line)) last[sample->name] = *sample;
    }
  }
  Value metrics = Value::MakeList();
  for (const auto& [name, sample] : last) {
    metrics.Append(Value::Object({{"MetricName", name},
                                  {"Value", sample.value},
                                  {"Timestamp", Value::Timestamp(sample.time_ms / 1000.0)}}));
  }
  runtime["final_metrics"] = std::move(metrics);
  if (status == kJobCompleted || status == kJobStopped) {
    if (auto uri = control::ReadWholeFile(dir->root() + "/model_artifacts"); uri.ok()) {
      runtime["model_artifacts"] = *uri;
    }
  }
}

std::string TrainingJobs::FailureReason(const Resource& job, const control::JobDir& dir,
                                        const std::string& reason) const {
  std::string runner = Runtime(job).GetString("runner");
  if (runner == "builtin" || !StartsWith(reason, "exit code ")) return reason;
  // As SageMaker's training toolkit reports a script that failed: its exit code, the
  // tail of its output, and the command.
  std::vector<std::string> tail;
  if (auto log = control::ReadWholeFile(dir.LogPath("algo-1")); log.ok()) {
    for (const std::string& line : Split(*log, '\n')) {
      size_t tab = line.find('\t');
      if (!line.empty()) tail.push_back(tab == std::string::npos ? line : line.substr(tab + 1));
      if (tail.size() > 10) tail.erase(tail.begin());
    }
  }
  std::string message;
  for (const std::string& line : tail) message += (message.empty() ? "" : "\n") + line;
  if (message.size() > 800) message = message.substr(message.size() - 800);
  std::string command = runner == "script"
                            ? "python3 /opt/ml/code/" + Runtime(job).GetString("program")
                            : "the ContainerEntrypoint";
  return "ExecuteUserScriptError:\nExitCode " + reason.substr(std::string("exit code ").size()) +
         "\nErrorMessage \"" + message + "\"\nCommand \"" + command + "\"";
}

bool TrainingJobs::ShouldRetry(const Resource& job, control::JobState state) const {
  // SageMaker retries jobs that failed for an internal reason, not the algorithm's.
  if (state != control::JobState::kLost) return false;
  int64_t allowed = Member(job.body, "RetryStrategy").GetInt("MaximumRetryAttempts", 0);
  return Runtime(job).GetInt("attempts", 1) <= allowed;
}

}  // namespace nimbus::services
