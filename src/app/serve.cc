#include "app/serve.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "aws/dispatcher.h"
#include "aws/model/model.h"
#include "aws/service.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/logging.h"
#include "http/server.h"
#include "iam/iam_store.h"
#include "objects/local_object_store.h"
#include "services/iam/iam_service.h"
#include "services/s3/s3_service.h"
#include "services/sts/sts_service.h"
#include "store/database.h"

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

  objects::LocalObjectStoreOptions object_options;
  object_options.data_dir = config.data_dir;
  object_options.db = db->get();
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

  const auto& models = aws::model::ModelRegistry::Embedded();
  aws::DispatcherOptions dispatcher_options;
  dispatcher_options.default_region = config.region;
  dispatcher_options.account_id = config.account_id;
  aws::Dispatcher dispatcher(models, services, **iam, **iam, SystemClock::Instance(),
                             dispatcher_options);

  http::ServerOptions server_options;
  server_options.host = config.host;
  server_options.port = config.port;
  http::Server server(server_options, [&](http::Request& request) {
    if (request.path == "/_nimbus/health" &&
        (request.method == "GET" || request.method == "HEAD")) {
      return Health(models, services, config);
    }
    return dispatcher.Handle(request);
  });
  if (Status s = server.Start(); !s.ok()) return fail("listen", s);

  PrintCredentials(**iam, config, server.port());
  Log(LogLevel::kInfo, "listening",
      {{"host", config.host},
       {"port", static_cast<int64_t>(server.port())},
       {"data_dir", config.data_dir},
       {"region", config.region},
       {"version", kVersion}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  Log(LogLevel::kInfo, "stopping", {{"signal", signal_number}});
  server.Stop();
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace nimbus::app
