// The nimbus binary: `nimbus serve` runs the server; later verbs (worker, admin) join here.
#include <cstdio>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/serve.h"
#include "worker/serve_kind.h"
#include "worker/supervisor.h"
#include "worker/train_kind.h"
#include "worker/transform_kind.h"

namespace {

constexpr const char* kUsage =
    "usage: nimbus <command> [flags]\n"
    "commands:\n"
    "  serve     run the AWS-compatible server (nimbus serve --help)\n"
    "  worker    run one job in its job directory (nimbus worker --help)\n"
    "  version   print the version\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "version" || command == "--version") {
    std::printf("nimbus %s\n", nimbus::app::kVersion);
    return 0;
  }
  if (command == "serve") {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::fputs(nimbus::app::ServeUsage().c_str(), stdout);
      return 0;
    }
    auto config = nimbus::app::ParseServeConfig(args, nimbus::app::RealEnv);
    if (!config.ok()) {
      std::fprintf(stderr, "nimbus serve: %s\n%s", config.status().message().c_str(),
                   nimbus::app::ServeUsage().c_str());
      return 2;
    }
    return nimbus::app::RunServe(*config);
  }
  if (command == "worker") {
    nimbus::worker::RegisterTrainWorkerKind();
    nimbus::worker::RegisterServeWorkerKind();
    nimbus::worker::RegisterTransformWorkerKind();
    return nimbus::worker::WorkerMain(args);
  }
  std::fprintf(stderr, "nimbus: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
