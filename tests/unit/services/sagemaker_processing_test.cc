// The processing-job controller against a scripted executor: every step of the job's life
// (admission, staging, launch, polling, outputs, stop, restart, lost workers) is driven by
// calling Reconcile directly, so each transition is checked deterministically.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "control/controller.h"
#include "control/executor.h"
#include "control/resource_store.h"
#include "control/scheduler.h"
#include "objects/local_object_store.h"
#include "services/sagemaker/processing_jobs.h"
#include "services/sagemaker/sagemaker_service.h"
#include "store/database.h"
#include "telemetry/log_store.h"

namespace nimbus::services {
namespace {

namespace fs = std::filesystem;

// An executor whose jobs are in whatever state the test says.
class ScriptedExecutor : public control::Executor {
 public:
  Status Launch(const control::LaunchRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    launches[request.job_id] = request;
    states[request.job_id].state = control::JobState::kRunning;
    return Status::Ok();
  }
  Result<control::JobStatus> Poll(const std::string& job_id, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states.find(job_id);
    if (it == states.end()) return Status::NotFound("never launched");
    return it->second;
  }
  Status Stop(const std::string& job_id, const std::string&, double grace) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++stops[job_id];
    states[job_id].state = control::JobState::kStopping;
    return Status::Ok();
  }

  std::mutex mu_;
  std::map<std::string, control::LaunchRequest> launches;
  std::map<std::string, control::JobStatus> states;
  std::map<std::string, int> stops;
};

class ProcessingJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-processing-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    objects::LocalObjectStoreOptions object_options;
    object_options.data_dir = dir_;
    object_options.db = db_.get();
    object_options.sync_writes = false;
    auto objects = objects::LocalObjectStore::Open(object_options);
    ASSERT_TRUE(objects.ok());
    objects_ = std::move(objects).value();
    auto logs = telemetry::LogStore::Open(*db_, clock_);
    ASSERT_TRUE(logs.ok());
    logs_ = std::move(logs).value();
    auto resources = control::ResourceStore::Open(*db_);
    ASSERT_TRUE(resources.ok());
    resources_ = std::move(resources).value();
    ASSERT_TRUE(objects_->CreateBucket("bkt", "us-east-1", "000000000000").ok());
    Restart();
  }
  void TearDown() override {
    jobs_.reset();
    fs::remove_all(dir_);
  }

  // A fresh controller and scheduler over the same stores and executor: what a server
  // restart looks like to the job.
  void Restart(int vcpus = 2) {
    jobs_.reset();
    registry_ = std::make_unique<aws::ServiceRegistry>();
    scheduler_ = std::make_unique<control::Scheduler>(control::Resources{vcpus, 65536, 0});
    SageMakerDeps deps;
    deps.resources = resources_.get();
    deps.controllers = &controllers_;
    deps.scheduler = scheduler_.get();
    deps.executor = &executor_;
    deps.objects = objects_.get();
    deps.logs = logs_.get();
    deps.data_dir = dir_;
    jobs_ = std::make_unique<ProcessingJobs>(deps);
    jobs_->Register(*registry_);
  }

  Result<Value> Call(const std::string& op, const Value& input) {
    aws::RequestContext ctx;
    ctx.account_id = "000000000000";
    ctx.region = "us-east-1";
    ctx.service = "sagemaker";
    ctx.operation = op;
    ctx.clock = &clock_;
    return registry_->Find("sagemaker", op)->handler(input, ctx);
  }

  static Value Request(const std::string& name, const std::string& instance = "ml.m5.large") {
    return Value::Object(
        {{"ProcessingJobName", name},
         {"RoleArn", "arn:aws:iam::000000000000:role/r"},
         {"AppSpecification",
          Value::Object({{"ImageUri", "img"},
                         {"ContainerEntrypoint", Value::List{"python3", "run.py"}},
                         {"ContainerArguments", Value::List{"--n", "3"}}})},
         {"ProcessingResources",
          Value::Object({{"ClusterConfig", Value::Object({{"InstanceCount", 1},
                                                          {"InstanceType", instance},
                                                          {"VolumeSizeInGB", 1}})}})},
         {"Environment", Value::Object({{"A", "1"}})},
         {"NetworkConfig", Value::Object({{"EnableNetworkIsolation", true}})},
         {"StoppingCondition", Value::Object({{"MaxRuntimeInSeconds", 600}})}});
  }

  std::string Arn(const std::string& name) {
    return "arn:aws:sagemaker:us-east-1:000000000000:processing-job/" + name;
  }
  Value Describe(const std::string& name) {
    auto out = Call("DescribeProcessingJob", Value::Object({{"ProcessingJobName", name}}));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : Value();
  }
  std::optional<double> Reconcile(const std::string& name) {
    auto next = jobs_->Reconcile(Arn(name));
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    return next.ok() ? *next : std::nullopt;
  }
  std::string LaunchedId(const std::string& name) {
    for (const auto& [id, request] : executor_.launches) {
      if (id.find("-" + name + "-") != std::string::npos) return id;
    }
    return "";
  }
  void Put(const std::string& key, const std::string& body) {
    http::StringBodyReader reader(body);
    ASSERT_TRUE(objects_->PutObject("bkt", key, reader, {}).ok());
  }

  std::string dir_;
  FakeClock clock_{1700000000};
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<objects::LocalObjectStore> objects_;
  std::unique_ptr<telemetry::LogStore> logs_;
  std::unique_ptr<control::ResourceStore> resources_;
  control::ControllerManager controllers_;  // never started: the tests reconcile by hand
  std::unique_ptr<control::Scheduler> scheduler_;
  ScriptedExecutor executor_;
  std::unique_ptr<aws::ServiceRegistry> registry_;
  std::unique_ptr<ProcessingJobs> jobs_;
};

TEST_F(ProcessingJobsTest, StagesLaunchesAndCompletesWithOutputsUploaded) {
  Put("in/a.csv", "1,2\n");
  Value request = Request("job1");
  request["ProcessingInputs"] = Value::List{
      Value::Object({{"InputName", "data"},
                     {"S3Input", Value::Object({{"S3Uri", "s3://bkt/in/"},
                                                {"LocalPath", "/opt/ml/processing/input/data"},
                                                {"S3DataType", "S3Prefix"},
                                                {"S3InputMode", "File"}})}})};
  request["ProcessingOutputConfig"] = Value::Object(
      {{"Outputs", Value::List{Value::Object(
                       {{"OutputName", "out"},
                        {"S3Output", Value::Object({{"S3Uri", "s3://bkt/out"},
                                                    {"LocalPath", "/opt/ml/processing/out"},
                                                    {"S3UploadMode", "EndOfJob"}})}})}}});
  ASSERT_TRUE(Call("CreateProcessingJob", request).ok());
  EXPECT_EQ(Describe("job1").GetString("ProcessingJobStatus"), "InProgress");

  EXPECT_TRUE(Reconcile("job1").has_value());  // launched: it polls
  std::string id = LaunchedId("job1");
  ASSERT_FALSE(id.empty());
  const control::LaunchRequest& launch = executor_.launches[id];
  EXPECT_EQ(launch.kind, "command");
  EXPECT_EQ(*launch.spec.Find("argv"), Value(Value::List{"python3", "run.py", "--n", "3"}));
  EXPECT_EQ(*launch.spec.Find("env"), Value::Object({{"A", "1"}}));
  EXPECT_FALSE(launch.network);
  EXPECT_EQ(launch.max_runtime_seconds, 600);
  ASSERT_NE(launch.instance, nullptr);
  EXPECT_EQ(launch.instance->name, "ml.m5.large");
  std::ifstream staged(launch.job_dir + "/processing/input/data/a.csv");
  std::string line;
  std::getline(staged, line);
  EXPECT_EQ(line, "1,2");
  EXPECT_TRUE(fs::exists(launch.job_dir + "/config/processingjobconfig.json"));
  EXPECT_TRUE(Describe("job1").Has("ProcessingStartTime"));

  EXPECT_TRUE(Reconcile("job1").has_value());  // still running
  std::ofstream(launch.job_dir + "/processing/out/result.txt") << "42";
  executor_.states[id].state = control::JobState::kSucceeded;
  EXPECT_FALSE(Reconcile("job1").has_value());
  Value done = Describe("job1");
  EXPECT_EQ(done.GetString("ProcessingJobStatus"), "Completed");
  EXPECT_TRUE(done.Has("ProcessingEndTime"));
  auto out = objects_->GetObject("bkt", "out/result.txt", {});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out->body->ReadAll(100), "42");
  EXPECT_EQ(scheduler_->Snapshot().used.vcpus, 0);  // capacity given back
  EXPECT_FALSE(fs::exists(launch.job_dir + "/processing/input"));
}

TEST_F(ProcessingJobsTest, QueuesWhenTheMachineIsFullAndStartsWhenCapacityFrees) {
  ASSERT_TRUE(Call("CreateProcessingJob", Request("first")).ok());
  ASSERT_TRUE(Call("CreateProcessingJob", Request("second")).ok());
  Reconcile("first");
  EXPECT_FALSE(Reconcile("second").has_value());  // queued: waits for the scheduler
  EXPECT_EQ(executor_.launches.size(), 1u);
  executor_.states[LaunchedId("first")].state = control::JobState::kSucceeded;
  Reconcile("first");
  EXPECT_TRUE(Reconcile("second").has_value());
  EXPECT_FALSE(LaunchedId("second").empty());
}

TEST_F(ProcessingJobsTest, StopOfAQueuedJobStopsItWithoutLaunching) {
  ASSERT_TRUE(Call("CreateProcessingJob", Request("busy")).ok());
  ASSERT_TRUE(Call("CreateProcessingJob", Request("waiting")).ok());
  Reconcile("busy");
  Reconcile("waiting");
  ASSERT_TRUE(Call("StopProcessingJob", Value::Object({{"ProcessingJobName", "waiting"}})).ok());
  EXPECT_EQ(Describe("waiting").GetString("ProcessingJobStatus"), "Stopping");
  Reconcile("waiting");
  EXPECT_EQ(Describe("waiting").GetString("ProcessingJobStatus"), "Stopped");
  EXPECT_TRUE(LaunchedId("waiting").empty());
}

TEST_F(ProcessingJobsTest, StopOfARunningJobSignalsItOnceAndEndsStopped) {
  ASSERT_TRUE(Call("CreateProcessingJob", Request("run")).ok());
  Reconcile("run");
  std::string id = LaunchedId("run");
  ASSERT_TRUE(Call("StopProcessingJob", Value::Object({{"ProcessingJobName", "run"}})).ok());
  EXPECT_TRUE(Reconcile("run").has_value());
  EXPECT_TRUE(Reconcile("run").has_value());
  EXPECT_EQ(executor_.stops[id], 1);
  EXPECT_EQ(Describe("run").GetString("ProcessingJobStatus"), "Stopping");
  executor_.states[id].state = control::JobState::kStopped;
  EXPECT_FALSE(Reconcile("run").has_value());
  EXPECT_EQ(Describe("run").GetString("ProcessingJobStatus"), "Stopped");
  auto again = Call("StopProcessingJob", Value::Object({{"ProcessingJobName", "run"}}));
  EXPECT_EQ(again.status().code(), "ValidationException");
}

TEST_F(ProcessingJobsTest, AFailedWorkerFailsTheJobWithItsReason) {
  ASSERT_TRUE(Call("CreateProcessingJob", Request("bad")).ok());
  Reconcile("bad");
  std::string id = LaunchedId("bad");
  executor_.states[id] = {control::JobState::kFailed, 2, "division by zero", 1, 2};
  Reconcile("bad");
  Value job = Describe("bad");
  EXPECT_EQ(job.GetString("ProcessingJobStatus"), "Failed");
  EXPECT_EQ(job.GetString("FailureReason"), "AlgorithmError: division by zero");
  EXPECT_EQ(job.GetString("ExitMessage"), "division by zero");
}

TEST_F(ProcessingJobsTest, ARestartReattachesRunningJobsAndFailsLostOnes) {
  Restart(8);
  ASSERT_TRUE(Call("CreateProcessingJob", Request("alive")).ok());
  ASSERT_TRUE(Call("CreateProcessingJob", Request("lost")).ok());
  Reconcile("alive");
  Reconcile("lost");
  ASSERT_FALSE(LaunchedId("lost").empty());
  Restart(8);
  auto pending = jobs_->Pending();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), 2u);
  executor_.states[LaunchedId("lost")] = {control::JobState::kLost, 0,
                                          "The worker process exited unexpectedly", 1, 2};
  EXPECT_TRUE(Reconcile("alive").has_value());
  EXPECT_EQ(scheduler_->Snapshot().running.size(), 1u);  // adopted, not relaunched
  EXPECT_EQ(executor_.launches.size(), 2u);
  Reconcile("lost");
  Value lost = Describe("lost");
  EXPECT_EQ(lost.GetString("ProcessingJobStatus"), "Failed");
  EXPECT_NE(lost.GetString("FailureReason").find("exited unexpectedly"), std::string::npos);
}

TEST_F(ProcessingJobsTest, AJobRecordedAsRunningButNeverLaunchedFails) {
  ASSERT_TRUE(Call("CreateProcessingJob", Request("crashed")).ok());
  Reconcile("crashed");
  executor_.states.erase(LaunchedId("crashed"));  // as if the launch never happened
  Restart();
  Reconcile("crashed");
  EXPECT_EQ(Describe("crashed").GetString("ProcessingJobStatus"), "Failed");
}

TEST_F(ProcessingJobsTest, CreateRejectsWhatNimbusCannotRun) {
  Value no_entrypoint = Request("a");
  no_entrypoint["AppSpecification"].Erase("ContainerEntrypoint");
  EXPECT_EQ(Call("CreateProcessingJob", no_entrypoint).status().code(), "ValidationException");

  Value two = Request("b");
  two["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 2;
  EXPECT_EQ(Call("CreateProcessingJob", two).status().code(), "ValidationException");

  Value outside = Request("c");
  outside["ProcessingInputs"] = Value::List{
      Value::Object({{"InputName", "x"},
                     {"S3Input", Value::Object({{"S3Uri", "s3://bkt/in/"},
                                                {"LocalPath", "/opt/ml/processing/../../etc"},
                                                {"S3DataType", "S3Prefix"},
                                                {"S3InputMode", "File"}})}})};
  EXPECT_EQ(Call("CreateProcessingJob", outside).status().code(), "ValidationException");

  ASSERT_TRUE(Call("CreateProcessingJob", Request("d")).ok());
  EXPECT_EQ(Call("CreateProcessingJob", Request("D")).status().code(), "ResourceInUse");
  EXPECT_EQ(
      Call("DescribeProcessingJob", Value::Object({{"ProcessingJobName", "nope"}})).status().code(),
      "ValidationException");
}

}  // namespace
}  // namespace nimbus::services
