#include "services/sagemaker/processing_jobs.h"

#include <filesystem>
#include <set>

#include "control/log_tail.h"
#include "control/usage_log.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/strings.h"
#include "objects/transfer.h"
#include "services/sagemaker/sagemaker_common.h"

namespace nimbus::services {
namespace {

using control::Resource;

constexpr const char* kInProgress = "InProgress";
constexpr const char* kCompleted = "Completed";
constexpr const char* kFailed = "Failed";
constexpr const char* kStopping = "Stopping";
constexpr const char* kStopped = "Stopped";
constexpr std::string_view kProcessingRoot = "/opt/ml/processing/";
constexpr double kPollSeconds = 1;

// Short jobs are common (a preprocessing step, a test): watch a young job closely, so
// its end is seen within ~100 ms, and an old one once a second.
double PollDelay(const Value& runtime) {
  const Value* started = runtime.Find("started_at");
  double age = started ? SystemClock::Instance().Now() - started->AsDouble() : 0;
  if (age < 3) return 0.1;
  if (age < 30) return 0.5;
  return kPollSeconds;
}

// Phases of the controller, kept in body._runtime.phase.
constexpr const char* kPhaseNew = "";
constexpr const char* kPhaseQueued = "queued";
constexpr const char* kPhaseRunning = "running";

control::ResourceKind MakeKind() {
  control::StateMachine states;
  states.initial_status = kInProgress;
  states.transitions = {{kInProgress, {kCompleted, kFailed, kStopping}},
                        {kStopping, {kStopped, kCompleted, kFailed}}};
  states.terminal = {kCompleted, kFailed, kStopped};
  control::ResourceKind kind =
      control::SageMakerKind("ProcessingJob", "processing job", "processing-job", states);
  kind.errors.not_found = {"ValidationException", 400,
                           "Could not find requested job with name {name}"};
  kind.errors.in_use = {"ResourceInUse", 400,
                        "Job name must be unique within an AWS account and region, and a job "
                        "with this name already exists ({arn})"};
  return kind;
}

Status Invalid(std::string message) {
  return Status::Aws("ValidationException", 400, std::move(message));
}

const Value& Runtime(const Resource& job) {
  static const Value kEmpty = Value::MakeMap();
  const Value* runtime = job.body.Find("_runtime");
  return runtime && runtime->is_map() ? *runtime : kEmpty;
}

// The job's id among all jobs of this server (job directories, scheduler): names are
// unique per account and region only, and may be reused once a job is gone.
std::string JobId(const Resource& job) {
  return job.account + "-" + job.region + "-" + ToLower(job.name) + "-" +
         std::to_string(static_cast<int64_t>(job.created_at * 1000));
}

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
  const Value& runtime = Runtime(job);
  if (runtime.Has("ended_at"))
    out["ProcessingEndTime"] = Value::Timestamp((*runtime.Find("ended_at")).AsDouble());
  if (!job.failure_reason.empty()) out["FailureReason"] = job.failure_reason;
  if (runtime.Has("exit_message")) out["ExitMessage"] = runtime.GetString("exit_message");
  return out;
}

}  // namespace

const control::ResourceKind& ProcessingJobs::Kind() {
  static const control::ResourceKind kind = MakeKind();
  return kind;
}

ProcessingJobs::ProcessingJobs(const SageMakerDeps& deps) : deps_(deps) {
  deps_.resources->RegisterKind(Kind());
}

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
  deps_.controllers->Register(kControllerKind, this);
}

// ---- Handlers ---------------------------------------------------------------------------

Result<Value> ProcessingJobs::Create(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(ValidateCreate(in));
  NIMBUS_ASSIGN_OR_RETURN(control::Tags tags, ParseTags(in));
  Value body = in;
  body.Erase("Tags");
  body["_runtime"] = Value::Object({{"phase", kPhaseNew}});
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps_.resources->Create(Kind(), ctx.account_id, ctx.region,
                                                                in.GetString("ProcessingJobName"),
                                                                std::move(body), std::move(tags)));
  deps_.controllers->Notify(kControllerKind, job.arn);
  return Value::Object({{"ProcessingJobArn", job.arn}});
}

Result<Value> ProcessingJobs::Describe(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps_.resources->Get(Kind(), ctx.account_id, ctx.region,
                                                             in.GetString("ProcessingJobName")));
  Value out = PublicBody(job.body);
  Value summary = Summary(job);
  for (auto& [name, value] : summary.map()) out[name] = value;
  const Value& runtime = Runtime(job);
  if (runtime.Has("started_at")) {
    out["ProcessingStartTime"] = Value::Timestamp(runtime.Find("started_at")->AsDouble());
  }
  return out;
}

Result<Value> ProcessingJobs::List(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(control::ListQuery query, control::ListQueryFromInput(Kind(), in));
  NIMBUS_ASSIGN_OR_RETURN(control::ListPage page,
                          deps_.resources->List(Kind(), ctx.account_id, ctx.region, query));
  Value summaries = Value::MakeList();
  for (const Resource& job : page.items) summaries.Append(Summary(job));
  Value out = Value::Object({{"ProcessingJobSummaries", std::move(summaries)}});
  if (!page.next_token.empty()) out["NextToken"] = page.next_token;
  return out;
}

Result<Value> ProcessingJobs::Stop(const Value& in, aws::RequestContext& ctx) {
  std::string name = in.GetString("ProcessingJobName");
  NIMBUS_ASSIGN_OR_RETURN(Resource job,
                          deps_.resources->Get(Kind(), ctx.account_id, ctx.region, name));
  if (job.status == kStopping) return Value::MakeMap();
  if (job.status != kInProgress) {
    return Invalid("The request was rejected because the processing job is in status " +
                   job.status + ".");
  }
  NIMBUS_ASSIGN_OR_RETURN(job, deps_.resources->Transition(Kind(), ctx.account_id, ctx.region, name,
                                                           {kStopping, "", "Stop requested"}));
  deps_.controllers->Notify(kControllerKind, job.arn);
  return Value::MakeMap();
}

// ---- Controller -------------------------------------------------------------------------

Result<std::vector<std::string>> ProcessingJobs::Pending() {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<Resource> jobs, deps_.resources->ListNonTerminal(Kind()));
  std::vector<std::string> arns;
  for (const Resource& job : jobs) arns.push_back(job.arn);
  return arns;
}

Result<std::optional<double>> ProcessingJobs::Reconcile(const std::string& arn) {
  auto found = deps_.resources->GetByArn(Kind(), arn);
  if (!found.ok()) {
    if (found.status().kind() == ErrorKind::kNotFound) return std::optional<double>();
    return found.status();
  }
  const Resource& job = *found;
  if (Kind().states.IsTerminal(job.status)) return std::optional<double>();
  if (job.status == kStopping) return StopJob(job);
  std::string phase = Runtime(job).GetString("phase");
  if (phase == kPhaseRunning) return Watch(job);
  if (phase == kPhaseQueued) {
    EnsureScheduled(job, false);
    if (deps_.scheduler->Position(JobId(job)) == std::optional<size_t>(0)) {
      return StageAndLaunch(job);
    }
    return std::optional<double>();  // the scheduler notifies on admission
  }
  return Admit(job);
}

void ProcessingJobs::EnsureScheduled(const Resource& job, bool running) {
  std::string id = JobId(job);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!scheduled_.insert(id).second) return;
  }
  control::JobRequest request;
  request.id = id;
  request.account = job.account;
  request.instance_type =
      Member(Member(job.body, "ProcessingResources"), "ClusterConfig").GetString("InstanceType");
  request.instance_count = 1;
  std::string arn = job.arn;
  control::ControllerManager* controllers = deps_.controllers;
  request.on_admit = [controllers, arn](const std::string&) {
    controllers->Notify(kControllerKind, arn);
  };
  Status s = running ? deps_.scheduler->Adopt(request) : deps_.scheduler->Submit(request);
  if (!s.ok() && s.kind() != ErrorKind::kConflict) {
    Log(LogLevel::kWarn, "schedule_failed", {{"job", job.arn}, {"error", s.ToString()}});
  }
}

Result<std::optional<double>> ProcessingJobs::Admit(const Resource& job) {
  Value runtime = Runtime(job);
  runtime["phase"] = kPhaseQueued;
  runtime["job_id"] = JobId(job);
  NIMBUS_ASSIGN_OR_RETURN(Resource queued, SetRuntime(job, runtime));
  EnsureScheduled(queued, false);
  if (deps_.scheduler->Position(JobId(queued)) == std::optional<size_t>(0)) {
    return StageAndLaunch(queued);
  }
  return std::optional<double>();
}

Result<control::JobDir> ProcessingJobs::DirOf(const Resource& job) const {
  return control::JobDir::ForJob(deps_.data_dir, "processing", JobId(job));
}

Result<std::optional<double>> ProcessingJobs::StageAndLaunch(const Resource& job) {
  NIMBUS_ASSIGN_OR_RETURN(control::JobDir dir, DirOf(job));
  if (!deps_.container_paths) {
    return Finish(job, kFailed,
                  "ClientError: processing jobs need the bubblewrap sandbox (Debian package "
                  "bubblewrap) to show the job /opt/ml/processing paths; it is not available",
                  "");
  }
  if (Status staged = Stage(job, dir); !staged.ok()) {
    return Finish(job, kFailed, "ClientError: " + staged.message(), "");
  }
  // A stop may have arrived while the inputs were downloading.
  NIMBUS_ASSIGN_OR_RETURN(Resource current, deps_.resources->GetByArn(Kind(), job.arn));
  if (current.status != kInProgress) return StopJob(current);
  NIMBUS_ASSIGN_OR_RETURN(control::LaunchRequest request, LaunchRequestFor(current, dir));
  Value runtime = Runtime(current);
  runtime["phase"] = kPhaseRunning;
  runtime["started_at"] = SystemClock::Instance().Now();
  // Recorded before the launch: a crash in between leaves a job that Watch() finds
  // never launched and fails, rather than a worker nobody watches.
  NIMBUS_ASSIGN_OR_RETURN(Resource running, SetRuntime(current, runtime));
  if (Status launched = deps_.executor->Launch(request); !launched.ok()) {
    return Finish(running, kFailed,
                  "InternalServerError: cannot start the job: " + launched.message(), "");
  }
  return std::optional<double>(PollDelay(runtime));
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
              ? objects::DownloadManifest(*deps_.objects, location, target)
              : objects::DownloadPrefix(*deps_.objects, location, target);
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

Status ProcessingJobs::ShipLogs(const Resource& job, const control::JobDir& dir, bool final) {
  std::string suffix = std::to_string(static_cast<int64_t>(
      Runtime(job).Find("started_at") ? Runtime(job).Find("started_at")->AsDouble()
                                      : job.created_at));
  telemetry::LogStore* logs = deps_.logs;
  control::LogTail tail(
      dir.root(), [&](const std::string& stream, const std::vector<control::LogEvent>& events) {
        std::vector<telemetry::LogEvent> batch;
        batch.reserve(events.size());
        for (const auto& [ms, message] : events) batch.push_back({ms, message});
        return logs->Append(job.account, job.region, kLogGroup,
                            job.name + "/" + stream + "-" + suffix, batch);
      });
  return tail.Poll(final).status();
}

Status ProcessingJobs::ShipUsage(const Resource& job, const control::JobDir& dir) {
  if (deps_.metrics == nullptr) return Status::Ok();
  control::UsageTail tail(dir.root());
  NIMBUS_ASSIGN_OR_RETURN(std::vector<control::UsageSample> samples, tail.Read());
  if (samples.empty()) return Status::Ok();
  const control::InstanceType* instance = control::FindInstanceType(
      Member(Member(job.body, "ProcessingResources"), "ClusterConfig").GetString("InstanceType"));
  std::vector<telemetry::Dimension> host = {{"Host", job.name + "/algo-1"}};
  std::vector<telemetry::MetricDatum> data;
  for (const control::UsageSample& sample : samples) {
    telemetry::MetricDatum cpu;
    cpu.metric_name = "CPUUtilization";
    cpu.dimensions = host;
    cpu.timestamp = static_cast<double>(sample.time_ms) / 1000;
    cpu.value = sample.cpu_percent;
    cpu.unit = "Percent";
    data.push_back(cpu);
    if (instance != nullptr && instance->memory_mib > 0) {
      telemetry::MetricDatum memory = cpu;
      memory.metric_name = "MemoryUtilization";
      memory.value = static_cast<double>(sample.rss_bytes) /
                     (static_cast<double>(instance->memory_mib) * 1024 * 1024) * 100;
      data.push_back(memory);
    }
  }
  NIMBUS_RETURN_IF_ERROR(deps_.metrics->Put(job.account, job.region, kMetricNamespace, data));
  return tail.Commit();
}

Result<std::optional<double>> ProcessingJobs::Watch(const Resource& job) {
  NIMBUS_ASSIGN_OR_RETURN(control::JobDir dir, DirOf(job));
  EnsureScheduled(job, true);
  auto polled = deps_.executor->Poll(JobId(job), dir.root());
  if (!polled.ok()) {
    if (polled.status().kind() == ErrorKind::kNotFound) {
      return Finish(job, kFailed,
                    "InternalServerError: the job's worker was never started (the server "
                    "stopped while launching it)",
                    "");
    }
    return polled.status();
  }
  if (Status shipped = ShipLogs(job, dir, control::IsTerminal(polled->state)); !shipped.ok()) {
    Log(LogLevel::kWarn, "job_logs_failed", {{"job", job.arn}, {"error", shipped.ToString()}});
  }
  if (Status shipped = ShipUsage(job, dir); !shipped.ok()) {
    Log(LogLevel::kWarn, "job_metrics_failed", {{"job", job.arn}, {"error", shipped.ToString()}});
  }
  switch (polled->state) {
    case control::JobState::kStarting:
    case control::JobState::kRunning:
    case control::JobState::kStopping:
      return std::optional<double>(PollDelay(Runtime(job)));
    case control::JobState::kSucceeded: {
      if (Status uploaded = UploadOutputs(job, dir); !uploaded.ok()) {
        return Finish(job, kFailed, "ClientError: " + uploaded.message(), "");
      }
      return Finish(job, kCompleted, "", "");
    }
    case control::JobState::kStopped:
      // Stopped without a StopProcessingJob: someone else signalled the worker.
      if (job.status != kStopping) {
        return Finish(job, kFailed, "InternalServerError: " + polled->reason, polled->reason);
      }
      return Finish(job, kStopped, "", polled->reason);
    case control::JobState::kFailed:
    case control::JobState::kLost: {
      std::string reason = polled->reason;
      if (polled->state == control::JobState::kFailed &&
          !StartsWith(reason, "MaxRuntimeExceeded")) {
        reason = "AlgorithmError: " + reason;
      }
      return Finish(job, kFailed, reason, polled->reason);
    }
  }
  return std::optional<double>(kPollSeconds);
}

Result<std::optional<double>> ProcessingJobs::StopJob(const Resource& job) {
  std::string phase = Runtime(job).GetString("phase");
  if (phase != kPhaseRunning) {
    (void)deps_.scheduler->Cancel(JobId(job));
    return Finish(job, kStopped, "", "");
  }
  NIMBUS_ASSIGN_OR_RETURN(control::JobDir dir, DirOf(job));
  if (!Runtime(job).GetBool("stop_sent")) {
    NIMBUS_RETURN_IF_ERROR(deps_.executor->Stop(JobId(job), dir.root(), deps_.stop_grace_seconds));
    Value runtime = Runtime(job);
    runtime["stop_sent"] = true;
    NIMBUS_RETURN_IF_ERROR(SetRuntime(job, runtime).status());
  }
  return Watch(job);
}

Status ProcessingJobs::UploadOutputs(const Resource& job, const control::JobDir& dir) {
  const Value* config = job.body.Find("ProcessingOutputConfig");
  const Value* outputs = config ? config->Find("Outputs") : nullptr;
  if (outputs == nullptr || !outputs->is_list()) return Status::Ok();
  for (const Value& output : outputs->list()) {
    const Value& s3 = *output.Find("S3Output");
    NIMBUS_ASSIGN_OR_RETURN(std::string rel,
                            JobRelativePath("ProcessingOutput", s3.GetString("LocalPath")));
    NIMBUS_ASSIGN_OR_RETURN(objects::S3Location location,
                            objects::ParseS3Uri(s3.GetString("S3Uri")));
    auto uploaded = objects::UploadDirectory(*deps_.objects, dir.root() + "/" + rel, location);
    if (!uploaded.ok()) {
      return Status::Validation("Cannot upload ProcessingOutput " + output.GetString("OutputName") +
                                " to " + s3.GetString("S3Uri") + ": " +
                                uploaded.status().message());
    }
  }
  return Status::Ok();
}

Result<std::optional<double>> ProcessingJobs::Finish(const Resource& job, const std::string& status,
                                                     const std::string& failure_reason,
                                                     const std::string& exit_message) {
  control::StatusChange change;
  change.status = status;
  change.message = failure_reason.empty() ? exit_message : failure_reason;
  if (status == kFailed) change.failure_reason = failure_reason;
  double now = SystemClock::Instance().Now();
  auto finished = deps_.resources->Transition(
      Kind(), job.account, job.region, job.name, change, [&](Resource& r) {
        Value& runtime = r.body["_runtime"];
        runtime["phase"] = "done";
        runtime["ended_at"] = now;
        if (!exit_message.empty()) runtime["exit_message"] = exit_message.substr(0, 1024);
        return Status::Ok();
      });
  if (!finished.ok()) return finished.status();
  std::string id = JobId(job);
  (void)deps_.scheduler->Release(id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    scheduled_.erase(id);
  }
  // The inputs are copies of S3 data; the rest of the job directory stays for inspection.
  if (auto dir = DirOf(job); dir.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(dir->root() + "/processing/input", ec);
  }
  return std::optional<double>();
}

Result<Resource> ProcessingJobs::SetRuntime(const Resource& job, const Value& runtime) {
  return deps_.resources->Update(Kind(), job.account, job.region, job.name, [&](Resource& r) {
    r.body["_runtime"] = runtime;
    return Status::Ok();
  });
}

}  // namespace nimbus::services
