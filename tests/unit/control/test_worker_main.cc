// A stand-in for the nimbus binary in the executor tests: `nimbus_test_worker worker <kind>
// --spec FILE …` runs the real worker supervisor (worker/supervisor.h) without linking the
// whole server.
#include <cstdio>
#include <string>
#include <vector>

#include "worker/supervisor.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] != "worker") {
    std::fprintf(stderr, "usage: %s worker <kind> --spec FILE [flags]\n", argv[0]);
    return 2;
  }
  args.erase(args.begin());
  return nimbus::worker::WorkerMain(args);
}
