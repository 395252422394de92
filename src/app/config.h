// ServeConfig: the settings of `nimbus serve`, from command-line flags and the matching
// NIMBUS_* environment variables (a flag wins over its variable, which wins over the
// default).
//
//   flag            variable          default
//   --host          NIMBUS_HOST       127.0.0.1
//   --port          NIMBUS_PORT       4566 (0 picks a free port)
//   --data-dir      NIMBUS_DATA       ./nimbus-data (NIMBUS_DATA_DIR is accepted too)
//   --region        NIMBUS_REGION     us-east-1
//   --account-id    NIMBUS_ACCOUNT_ID 000000000000
//   --log-level     NIMBUS_LOG_LEVEL  info (debug|info|warn|error)
//   --capacity-vcpus       NIMBUS_CAPACITY_VCPUS       this machine's CPUs
//   --capacity-memory-mib  NIMBUS_CAPACITY_MEMORY_MIB  this machine's memory
//   --capacity-gpus        NIMBUS_CAPACITY_GPUS        this machine's NVIDIA GPUs
//   --sandbox              NIMBUS_SANDBOX    auto (auto|on|off: jobs under bubblewrap)
//   --sync-writes          NIMBUS_SYNC_WRITES  on (on|off: fsync object bodies before
//                          they are acknowledged; see objects/local_object_store.h)
//   --autoscaling-period   NIMBUS_AUTOSCALING_PERIOD   10 (seconds between evaluations)
//   --autoscaling-window   NIMBUS_AUTOSCALING_WINDOW   60 (seconds of metric per datapoint)
//   --autoscaling-scale-out-datapoints  NIMBUS_AUTOSCALING_SCALE_OUT_DATAPOINTS  3
//   --autoscaling-scale-in-datapoints   NIMBUS_AUTOSCALING_SCALE_IN_DATAPOINTS   15
// The capacity is what the scheduler admits jobs against (instance types map to vCPUs,
// memory and GPUs); 0 means "detect". The autoscaling settings time Application Auto
// Scaling's engine (services/autoscaling/scaling_engine.h): AWS evaluates every minute on
// one-minute datapoints, 3 above the target to scale out and 15 below it to scale in.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/logging.h"
#include "core/result.h"

namespace nimbus::app {

struct ServeConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 4566;
  std::string data_dir = "./nimbus-data";
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  LogLevel log_level = LogLevel::kInfo;
  int capacity_vcpus = 0;
  int64_t capacity_memory_mib = 0;
  int capacity_gpus = -1;  // -1: detect (0 is a real answer: no GPUs)
  std::string sandbox = "auto";
  bool sync_writes = true;
  int autoscaling_period_seconds = 10;
  int autoscaling_window_seconds = 60;
  int autoscaling_scale_out_datapoints = 3;
  int autoscaling_scale_in_datapoints = 15;
};

// Reads a variable; returns "" when unset. Passed in so tests need no real environment.
using EnvLookup = std::function<std::string(const std::string& name)>;
std::string RealEnv(const std::string& name);

// args are the arguments after `serve`. Errors name the bad flag or value.
Result<ServeConfig> ParseServeConfig(const std::vector<std::string>& args, const EnvLookup& env);

std::string ServeUsage();

}  // namespace nimbus::app
