#include "services/sagemaker/job_controller.h"

#include <filesystem>

#include "control/job_samples.h"
#include "control/log_tail.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/strings.h"
#include "services/sagemaker/sagemaker_common.h"

namespace nimbus::services {
namespace {

using control::Resource;

constexpr const char* kPhaseQueued = "queued";
constexpr const char* kPhaseRunning = "running";
constexpr const char* kPhaseDone = "done";

double Now() { return SystemClock::Instance().Now(); }

// Short jobs are common (a preprocessing step, a test): watch a young job closely, so
// its end is seen within ~100 ms, and an old one once a second.
double PollDelay(const Value& runtime) {
  const Value* started = runtime.Find("started_at");
  double age = started ? Now() - started->AsDouble() : 0;
  if (age < 3) return 0.1;
  if (age < 30) return 0.5;
  return 1;
}

std::optional<double> Again(double seconds) { return seconds; }
std::optional<double> Idle() { return std::nullopt; }

}  // namespace

JobController::JobController(const SageMakerDeps& deps, const control::ResourceKind& kind,
                             JobControllerConfig config)
    : deps_(deps), kind_(kind), config_(std::move(config)) {
  deps_.resources->RegisterKind(kind_);
}

control::ResourceKind SageMakerJobKind(std::string kind, std::string display_name,
                                       std::string arn_resource_type) {
  control::StateMachine states;
  states.initial_status = kJobInProgress;
  states.transitions = {{kJobInProgress, {kJobCompleted, kJobFailed, kJobStopping}},
                        {kJobStopping, {kJobStopped, kJobCompleted, kJobFailed}}};
  states.terminal = {kJobCompleted, kJobFailed, kJobStopped};
  control::ResourceKind out = control::SageMakerKind(std::move(kind), std::move(display_name),
                                                     std::move(arn_resource_type), states);
  out.errors.not_found = {"ValidationException", 400,
                          "Could not find requested job with name {name}"};
  out.errors.in_use = {"ResourceInUse", 400,
                       "Job name must be unique within an AWS account and region, and a job "
                       "with this name already exists ({arn})"};
  return out;
}

const Value& JobController::Runtime(const Resource& job) {
  static const Value kEmpty = Value::MakeMap();
  const Value* runtime = job.body.Find("_runtime");
  return runtime && runtime->is_map() ? *runtime : kEmpty;
}

std::string JobController::JobId(const Resource& job) {
  // Names are unique per account and region only, and may be reused once a job is gone.
  return job.account + "-" + job.region + "-" + ToLower(job.name) + "-" +
         std::to_string(static_cast<int64_t>(job.created_at * 1000));
}

Result<control::JobDir> JobController::DirOf(const Resource& job) const {
  return control::JobDir::ForJob(deps_.data_dir, config_.job_dir_kind, JobId(job));
}

Status JobController::RequestStop(const std::string& account, const std::string& region,
                                  const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(Resource job, deps_.resources->Get(kind_, account, region, name));
  if (job.status == kJobStopping) return Status::Ok();
  control::StatusChange change{kJobStopping, config_.secondary_statuses ? kJobStopping : "",
                               "Stop requested"};
  NIMBUS_ASSIGN_OR_RETURN(job, deps_.resources->Transition(kind_, account, region, name, change));
  Notify(job.arn);
  return Status::Ok();
}

void JobController::Notify(const std::string& arn) {
  deps_.controllers->Notify(config_.controller_kind, arn);
}

Status JobController::OnPoll(const Resource&, const control::JobDir&, bool) { return Status::Ok(); }

void JobController::OnFinish(Resource&, const std::string&) {}

std::string JobController::FailureReason(const Resource&, const control::JobDir&,
                                         const std::string& reason) const {
  return reason;
}

bool JobController::ShouldRetry(const Resource&, control::JobState) const { return false; }

Result<std::vector<std::string>> JobController::Pending() {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<Resource> jobs, deps_.resources->ListNonTerminal(kind_));
  std::vector<std::string> arns;
  for (const Resource& job : jobs) arns.push_back(job.arn);
  return arns;
}

Result<std::optional<double>> JobController::Reconcile(const std::string& arn) {
  auto found = deps_.resources->GetByArn(kind_, arn);
  if (!found.ok()) {
    if (found.status().kind() == ErrorKind::kNotFound) return Idle();
    return found.status();
  }
  const Resource& job = *found;
  if (kind_.states.IsTerminal(job.status)) return Idle();
  if (job.status == kJobStopping) return StopJob(job);
  std::string phase = Runtime(job).GetString("phase");
  if (phase == kPhaseRunning) return Watch(job);
  if (phase == kPhaseQueued) {
    EnsureScheduled(job, false);
    if (deps_.scheduler->Position(JobId(job)) == std::optional<size_t>(0)) {
      return StageAndLaunch(job);
    }
    return Idle();  // the scheduler notifies on admission
  }
  return Admit(job);
}

void JobController::EnsureScheduled(const Resource& job, bool running) {
  std::string id = JobId(job);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!scheduled_.insert(id).second) return;
  }
  control::JobRequest request;
  request.id = id;
  request.account = job.account;
  request.instance_type = InstanceType(job);
  request.instance_count = 1;
  std::string arn = job.arn;
  control::ControllerManager* controllers = deps_.controllers;
  std::string controller_kind = config_.controller_kind;
  request.on_admit = [controllers, controller_kind, arn](const std::string&) {
    controllers->Notify(controller_kind, arn);
  };
  Status s = running ? deps_.scheduler->Adopt(request) : deps_.scheduler->Submit(request);
  if (!s.ok() && s.kind() != ErrorKind::kConflict) {
    Log(LogLevel::kWarn, "schedule_failed", {{"job", job.arn}, {"error", s.ToString()}});
  }
}

void JobController::Unschedule(const Resource& job) {
  std::string id = JobId(job);
  // Release frees a running job's capacity; Cancel drops a queued one.
  if (!deps_.scheduler->Release(id).ok()) (void)deps_.scheduler->Cancel(id);
  std::lock_guard<std::mutex> lock(mu_);
  scheduled_.erase(id);
}

Result<std::optional<double>> JobController::Admit(const Resource& job) {
  Value runtime = Runtime(job);
  runtime["phase"] = kPhaseQueued;
  runtime["job_id"] = JobId(job);
  NIMBUS_ASSIGN_OR_RETURN(Resource queued, SetRuntime(job, runtime));
  EnsureScheduled(queued, false);
  if (deps_.scheduler->Position(JobId(queued)) == std::optional<size_t>(0)) {
    return StageAndLaunch(queued);
  }
  return Idle();
}

Result<std::optional<double>> JobController::StageAndLaunch(const Resource& queued) {
  NIMBUS_ASSIGN_OR_RETURN(control::JobDir dir, DirOf(queued));
  if (!deps_.container_paths) {
    return Finish(queued, kJobFailed, kJobFailed,
                  "ClientError: jobs need the bubblewrap sandbox (Debian package bubblewrap) to "
                  "show them SageMaker's /opt/ml paths; it is not available",
                  "");
  }
  NIMBUS_ASSIGN_OR_RETURN(
      Resource job, SetRuntime(queued, Runtime(queued), "Downloading", "Downloading input data"));
  if (Status staged = Stage(job, dir); !staged.ok()) {
    std::string message = staged.message();
    if (!StartsWith(message, "ClientError")) message = "ClientError: " + message;
    return Finish(job, kJobFailed, kJobFailed, message, "");
  }
  // A stop may have arrived while the inputs were downloading.
  NIMBUS_ASSIGN_OR_RETURN(Resource current, deps_.resources->GetByArn(kind_, job.arn));
  if (current.status != kJobInProgress) return StopJob(current);
  NIMBUS_ASSIGN_OR_RETURN(control::LaunchRequest request, LaunchRequestFor(current, dir));
  Value runtime = Runtime(current);
  runtime["phase"] = kPhaseRunning;
  if (!runtime.Has("started_at")) runtime["started_at"] = Now();
  // Recorded before the launch: a crash in between leaves a job that Watch() finds never
  // launched and fails, rather than a worker nobody watches.
  NIMBUS_ASSIGN_OR_RETURN(Resource running,
                          SetRuntime(current, runtime, "Training",
                                     "Training image download completed. Training in progress."));
  if (Status launched = deps_.executor->Launch(request); !launched.ok()) {
    return Finish(running, kJobFailed, kJobFailed,
                  "InternalServerError: cannot start the job: " + launched.message(), "");
  }
  return Again(PollDelay(runtime));
}

Status JobController::ShipLogs(const Resource& job, const control::JobDir& dir, bool final) {
  const Value* started = Runtime(job).Find("started_at");
  std::string suffix =
      std::to_string(static_cast<int64_t>(started ? started->AsDouble() : job.created_at));
  telemetry::LogStore* logs = deps_.logs;
  control::LogTail tail(
      dir.root(), [&](const std::string& stream, const std::vector<control::LogEvent>& events) {
        std::vector<telemetry::LogEvent> batch;
        batch.reserve(events.size());
        for (const auto& [ms, message] : events) batch.push_back({ms, message});
        return logs->Append(job.account, job.region, config_.log_group,
                            job.name + "/" + stream + "-" + suffix, batch);
      });
  return tail.Poll(final).status();
}

Status JobController::ShipUsage(const Resource& job, const control::JobDir& dir) {
  if (deps_.metrics == nullptr) return Status::Ok();
  control::LineTail tail(control::UsageLogPath(dir.root()));
  NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> lines, tail.Read());
  std::vector<control::UsageSample> samples;
  for (const std::string& line : lines) {
    if (auto sample = control::ParseUsageSample(line)) samples.push_back(*sample);
  }
  if (samples.empty()) return tail.Commit();
  const control::InstanceType* instance = control::FindInstanceType(InstanceType(job));
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
  NIMBUS_RETURN_IF_ERROR(
      deps_.metrics->Put(job.account, job.region, config_.metric_namespace, data));
  return tail.Commit();
}

Result<std::optional<double>> JobController::Watch(const Resource& job) {
  NIMBUS_ASSIGN_OR_RETURN(control::JobDir dir, DirOf(job));
  EnsureScheduled(job, true);
  auto polled = deps_.executor->Poll(JobId(job), dir.root());
  if (!polled.ok()) {
    if (polled.status().kind() == ErrorKind::kNotFound) {
      return Finish(job, kJobFailed, kJobFailed,
                    "InternalServerError: the job's worker was never started (the server "
                    "stopped while launching it)",
                    "");
    }
    return polled.status();
  }
  const bool over = control::IsTerminal(polled->state);
  if (Status s = ShipLogs(job, dir, over); !s.ok()) {
    Log(LogLevel::kWarn, "job_logs_failed", {{"job", job.arn}, {"error", s.ToString()}});
  }
  if (Status s = ShipUsage(job, dir); !s.ok()) {
    Log(LogLevel::kWarn, "job_usage_failed", {{"job", job.arn}, {"error", s.ToString()}});
  }
  if (Status s = OnPoll(job, dir, over); !s.ok()) {
    Log(LogLevel::kWarn, "job_poll_hook_failed", {{"job", job.arn}, {"error", s.ToString()}});
  }
  const std::string& reason = polled->reason;
  switch (polled->state) {
    case control::JobState::kStarting:
    case control::JobState::kRunning:
    case control::JobState::kStopping:
      return Again(PollDelay(Runtime(job)));
    case control::JobState::kSucceeded: {
      NIMBUS_ASSIGN_OR_RETURN(Resource uploading, SetRuntime(job, Runtime(job), "Uploading",
                                                             "Uploading generated training model"));
      if (Status s = Collect(uploading, dir, polled->state); !s.ok()) {
        return Finish(uploading, kJobFailed, kJobFailed, "ClientError: " + s.message(), "");
      }
      return Finish(uploading, kJobCompleted, kJobCompleted, "", "");
    }
    case control::JobState::kStopped:
      if (job.status != kJobStopping) {
        // Stopped without a Stop* request: someone else signalled the worker.
        return Finish(job, kJobFailed, kJobFailed, "InternalServerError: " + reason, reason);
      }
      (void)Collect(job, dir, polled->state);
      return Finish(job, kJobStopped, kJobStopped, "", reason);
    case control::JobState::kFailed:
    case control::JobState::kLost: {
      if (StartsWith(reason, "MaxRuntimeExceeded") && config_.max_runtime_stops) {
        (void)Collect(job, dir, control::JobState::kStopped);
        return Finish(job, kJobStopped, "MaxRuntimeExceeded", "", reason);
      }
      if (ShouldRetry(job, polled->state)) return Retry(job, reason);
      std::string failure = FailureReason(job, dir, reason);
      if (polled->state == control::JobState::kFailed &&
          !StartsWith(reason, "MaxRuntimeExceeded") && !StartsWith(reason, "ClientError") &&
          !StartsWith(reason, "AlgorithmError")) {
        failure = "AlgorithmError: " + failure;
      }
      return Finish(job, kJobFailed, kJobFailed, failure, reason);
    }
  }
  return Again(1);
}

Result<std::optional<double>> JobController::Retry(const Resource& job, const std::string& reason) {
  NIMBUS_ASSIGN_OR_RETURN(control::JobDir dir, DirOf(job));
  Value runtime = Runtime(job);
  runtime["attempts"] = runtime.GetInt("attempts", 1) + 1;
  NIMBUS_ASSIGN_OR_RETURN(
      Resource again,
      SetRuntime(job, runtime, "Restarting", "Retrying the job after: " + reason.substr(0, 512)));
  NIMBUS_ASSIGN_OR_RETURN(control::LaunchRequest request, LaunchRequestFor(again, dir));
  if (Status launched = deps_.executor->Launch(request); !launched.ok()) {
    return Finish(again, kJobFailed, kJobFailed,
                  "InternalServerError: cannot restart the job: " + launched.message(), reason);
  }
  NIMBUS_RETURN_IF_ERROR(SetRuntime(again, runtime, "Training", "Training restarted").status());
  return Again(0.1);
}

Result<std::optional<double>> JobController::StopJob(const Resource& job) {
  if (Runtime(job).GetString("phase") != kPhaseRunning) {
    Unschedule(job);
    return Finish(job, kJobStopped, kJobStopped, "", "");
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

Result<std::optional<double>> JobController::Finish(const Resource& job, const std::string& status,
                                                    const std::string& secondary,
                                                    const std::string& failure_reason,
                                                    const std::string& exit_message) {
  control::StatusChange change;
  change.status = status;
  if (config_.secondary_statuses) change.secondary_status = secondary;
  change.message = failure_reason.empty() ? exit_message : failure_reason;
  if (status == kJobFailed) change.failure_reason = failure_reason;
  double now = Now();
  auto finished = deps_.resources->Transition(
      kind_, job.account, job.region, job.name, change, [&](Resource& r) {
        Value& runtime = r.body["_runtime"];
        runtime["phase"] = kPhaseDone;
        runtime["ended_at"] = now;
        if (!exit_message.empty()) runtime["exit_message"] = exit_message.substr(0, 1024);
        OnFinish(r, status);
        return Status::Ok();
      });
  if (!finished.ok()) return finished.status();
  Unschedule(job);
  // The inputs are copies of S3 data; the rest of the job directory stays for inspection.
  if (auto dir = DirOf(job); dir.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(dir->DataDir(), ec);
    std::filesystem::remove_all(dir->root() + "/processing/input", ec);
  }
  return Idle();
}

Result<Resource> JobController::SetRuntime(const Resource& job, const Value& runtime,
                                           const std::string& secondary,
                                           const std::string& message) {
  auto apply = [&](Resource& r) {
    r.body["_runtime"] = runtime;
    return Status::Ok();
  };
  if (config_.secondary_statuses && !secondary.empty() && secondary != job.secondary_status) {
    return deps_.resources->Transition(kind_, job.account, job.region, job.name,
                                       {job.status, secondary, message}, apply);
  }
  return deps_.resources->Update(kind_, job.account, job.region, job.name, apply);
}

}  // namespace nimbus::services
