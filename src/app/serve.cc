#include "app/serve.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "aws/dispatcher.h"
#include "aws/model/model.h"
#include "aws/service.h"
#include "control/controller.h"
#include "control/local_executor.h"
#include "control/resource_store.h"
#include "control/scalable.h"
#include "control/scheduler.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/logging.h"
#include "http/server.h"
#include "iam/iam_store.h"
#include "objects/local_object_store.h"
#include "services/autoscaling/autoscaling_service.h"
#include "services/cloudwatch/cloudwatch_service.h"
#include "services/iam/iam_service.h"
#include "services/logs/logs_service.h"
#include "services/s3/s3_service.h"
#include "services/sagemaker/sagemaker_service.h"
#include "services/sts/sts_service.h"
#include "store/database.h"
#include "telemetry/log_store.h"
#include "telemetry/metric_store.h"
#include "telemetry/server_metrics.h"

namespace nimbus::app {
namespace {

http::Response JsonResponse(int status, const Value& body) {
  http::Response response;
  response.status = status;
  response.headers.Set("Content-Type", "application/json");
  response.body = ToJson(body);
  return response;
}

// GET /_nimbus/health: the services this server answers for. "running" services have
// handlers; "available" ones are modelled (requests are parsed and validated) but their
// operations answer NotImplemented for now.
http::Response Health(const aws::model::ModelRegistry& models, const aws::ServiceRegistry& services,
                      const ServeConfig& config) {
  Value names = Value::MakeMap();
  for (const auto* model : models.services()) {
    names[model->name] = services.HasService(model->name) ? "running" : "available";
  }
  return JsonResponse(200, Value::Object({{"status", "running"},
                                          {"version", kVersion},
                                          {"region", config.region},
                                          {"services", std::move(names)}}));
}

void PrintCredentials(const iam::IamStore& iam, const ServeConfig& config, uint16_t port) {
  std::printf(
      "Nimbus %s is listening on http://%s:%u\n"
      "Use it with:\n"
      "  export AWS_ACCESS_KEY_ID=%s\n"
      "  export AWS_SECRET_ACCESS_KEY=%s\n"
      "  export AWS_DEFAULT_REGION=%s\n"
      "  aws --endpoint-url http://%s:%u sts get-caller-identity\n",
      kVersion, config.host.c_str(), port, iam.root_access_key_id().c_str(),
      iam.root_secret_access_key().c_str(), config.region.c_str(), config.host.c_str(), port);
  std::fflush(stdout);
}

}  // namespace

int RunServe(const ServeConfig& config) {
  SetLogLevel(config.log_level);
  // Block the stop signals in every thread (threads inherit the mask); the main thread
  // then waits for them with sigwait, outside any handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto fail = [](const char* step, const Status& status) {
    Log(LogLevel::kError, "startup_failed", {{"step", step}, {"error", status.ToString()}});
    return 1;
  };

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return fail("data_dir", Status::Internal(config.data_dir + ": " + ec.message()));

  auto db = store::Database::Open(config.data_dir);
  if (!db.ok()) return fail("metadata_store", db.status());
  iam::IamOptions iam_options;
  iam_options.account_id = config.account_id;
  auto iam = iam::IamStore::Open(**db, iam_options);
  if (!iam.ok()) return fail("iam", iam.status());
  if (Status s = (*iam)->BootstrapRoot(config.data_dir); !s.ok()) return fail("root_keys", s);

  auto logs = telemetry::LogStore::Open(**db, SystemClock::Instance());
  if (!logs.ok()) return fail("log_store", logs.status());
  auto metrics = telemetry::MetricStore::Open(**db, SystemClock::Instance());
  if (!metrics.ok()) return fail("metric_store", metrics.status());

  objects::LocalObjectStoreOptions object_options;
  object_options.data_dir = config.data_dir;
  object_options.db = db->get();
  object_options.sync_writes = config.sync_writes;
  auto objects = objects::LocalObjectStore::Open(object_options);
  if (!objects.ok()) return fail("object_store", objects.status());
  // Before serving: drop what a crash left behind (temp files, unreferenced blobs).
  auto recovered = (*objects)->Recover();
  if (!recovered.ok()) return fail("object_store_recovery", recovered.status());
  Log(LogLevel::kInfo, "object_store_recovered",
      {{"temp_files_removed", recovered->temp_files_removed},
       {"orphan_blobs_removed", recovered->orphan_blobs_removed}});

  aws::ServiceRegistry services;
  services::RegisterIamService(services, **iam);
  services::RegisterStsService(services, **iam);
  services::RegisterS3Service(services, **objects);
  services::RegisterLogsService(services, **logs);
  services::RegisterCloudWatchService(services, **metrics);

  // The control plane: resources, the scheduler over this machine's capacity, the local
  // executor, and the controllers that run jobs (ARCHITECTURE.md §3-4).
  auto resources = control::ResourceStore::Open(**db);
  if (!resources.ok()) return fail("resource_store", resources.status());
  const control::Resources machine = control::DetectMachineCapacity();
  control::Resources capacity = machine;
  if (config.capacity_vcpus > 0) capacity.vcpus = config.capacity_vcpus;
  if (config.capacity_memory_mib > 0) capacity.memory_mib = config.capacity_memory_mib;
  if (config.capacity_gpus >= 0) capacity.gpus = config.capacity_gpus;
  control::Scheduler scheduler(capacity);
  // Endpoint instances are admitted apart from jobs: model servers are long-lived and
  // mostly idle, so hosting may use four times the vCPUs and twice the memory.
  control::Scheduler hosting_scheduler(
      control::Resources{capacity.vcpus * 4, capacity.memory_mib * 2, capacity.gpus});
  control::LocalExecutorOptions executor_options;
  executor_options.use_sandbox =
      config.sandbox == "on"    ? control::LocalExecutorOptions::Sandbox::kOn
      : config.sandbox == "off" ? control::LocalExecutorOptions::Sandbox::kOff
                                : control::LocalExecutorOptions::Sandbox::kAuto;
  control::LocalExecutor executor(executor_options);
  control::ControllerManagerOptions controller_options;
  controller_options.threads = 4;
  control::ControllerManager controllers(controller_options);
  control::ScalableResourceRegistry scalable;
  services::SageMakerDeps sagemaker_deps;
  sagemaker_deps.resources = resources->get();
  sagemaker_deps.controllers = &controllers;
  sagemaker_deps.scheduler = &scheduler;
  sagemaker_deps.executor = &executor;
  sagemaker_deps.objects = objects->get();
  sagemaker_deps.logs = logs->get();
  sagemaker_deps.metrics = metrics->get();
  sagemaker_deps.data_dir = config.data_dir;
  sagemaker_deps.container_paths = executor.sandboxed();
  sagemaker_deps.hosting_scheduler = &hosting_scheduler;
  sagemaker_deps.scalable = &scalable;
  services::SageMakerService sagemaker(sagemaker_deps);
  sagemaker.Register(services);
  // Application Auto Scaling over the providers in `scalable` (SageMaker variants, custom
  // resources); its engine runs every --autoscaling-period seconds (AWS: every minute).
  services::autoscaling::ScalingEngineOptions autoscaling_options;
  autoscaling_options.window_seconds = config.autoscaling_window_seconds;
  autoscaling_options.scale_out_datapoints = config.autoscaling_scale_out_datapoints;
  autoscaling_options.scale_in_datapoints = config.autoscaling_scale_in_datapoints;
  auto autoscaling = services::AutoScalingService::Open(
      **db, scalable, **metrics, SystemClock::Instance(), autoscaling_options);
  if (!autoscaling.ok()) return fail("autoscaling", autoscaling.status());
  (*autoscaling)->Register(services);
  controllers.Every("autoscaling", config.autoscaling_period_seconds,
                    [&autoscaling] { return (*autoscaling)->engine().RunOnce(); });
  SetLogBuffering(true);
  controllers.Every("log_flush", 0.1, [] {
    FlushLogs();
    return Status::Ok();
  });
  controllers.Every("logs_retention", 60, [&logs] {
    return (*logs)
        ->ExpireRetention(static_cast<int64_t>(SystemClock::Instance().Now() * 1000))
        .status();
  });
  controllers.Every("cloudwatch_alarms", 10, [&metrics] {
    return (*metrics)->EvaluateAlarms(SystemClock::Instance().Now());
  });
  controllers.Every("cloudwatch_retention", 600,
                    [&metrics] { return (*metrics)->ExpireData(SystemClock::Instance().Now()); });
  Log(LogLevel::kInfo, "control_plane",
      {{"capacity_vcpus", capacity.vcpus},
       {"capacity_memory_mib", capacity.memory_mib},
       {"capacity_gpus", capacity.gpus},
       {"sandbox", executor.sandboxed()}});

  const auto& models = aws::model::ModelRegistry::Embedded();
  aws::DispatcherOptions dispatcher_options;
  dispatcher_options.default_region = config.region;
  dispatcher_options.account_id = config.account_id;
  aws::Dispatcher dispatcher(models, services, **iam, **iam, SystemClock::Instance(),
                             dispatcher_options);

  http::ServerOptions server_options;
  server_options.host = config.host;
  server_options.port = config.port;
  // I/O threads only move bytes (handlers run on the worker pool); every thread hand-off
  // costs a wake-up, so small machines do best with one. A pool of a few handler threads
  // per core keeps the workers busy under load (a worker that finishes takes the next
  // queued request without sleeping) where one thread per connection would wake a sleeping
  // thread for every request: 8.5k -> 10.3k InvokeEndpoint/s at 64 connections on 2 cores.
  // Four per core rather than eight: the same rate with a p99 two thirds as long (8 -> 16
  // threads on 2 cores: 7-9 ms -> 11-15 ms at 64 connections). Handlers that block for long
  // make the pool grow past that, up to 32 per core.
  server_options.io_threads = static_cast<size_t>(std::max(1, machine.vcpus / 4));
  server_options.handler_threads = static_cast<size_t>(std::max(8, 4 * machine.vcpus));
  server_options.max_handler_threads = static_cast<size_t>(std::max(64, 32 * machine.vcpus));
  // GET /metrics (Prometheus) answers unsigned requests only, so that a signed S3
  // request for a bucket named "metrics" still reaches S3.
  telemetry::ServerMetrics server_metrics;
  telemetry::HttpServerMetrics http_metrics(server_metrics, SystemClock::Instance());
  auto route = [&](http::Request& request) {
    if (request.path == "/_nimbus/health" &&
        (request.method == "GET" || request.method == "HEAD")) {
      return Health(models, services, config);
    }
    if (request.path == "/metrics" && request.method == "GET" &&
        !request.headers.Has("Authorization") &&
        request.query.find("X-Amz-") == std::string::npos) {
      http::Response response;
      response.headers.Set("Content-Type", std::string(telemetry::ServerMetrics::kContentType));
      response.body = server_metrics.Render();
      return response;
    }
    return dispatcher.Handle(request);
  };
  http::Server server(server_options, telemetry::InstrumentHandler(http_metrics, route));
  if (Status s = server.Start(); !s.ok()) return fail("listen", s);
  // After the listener: a controller may call back into services (S3) as jobs run.
  controllers.Start();

  PrintCredentials(**iam, config, server.port());
  Log(LogLevel::kInfo, "listening",
      {{"host", config.host},
       {"port", static_cast<int64_t>(server.port())},
       {"data_dir", config.data_dir},
       {"region", config.region},
       {"version", kVersion}});
  FlushLogs();

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  Log(LogLevel::kInfo, "stopping", {{"signal", signal_number}});
  server.Stop();
  controllers.Stop();
  Log(LogLevel::kInfo, "stopped");
  FlushLogs();
  return 0;
}

}  // namespace nimbus::app
