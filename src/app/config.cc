#include "app/config.h"

#include <cstdlib>
#include <map>

#include "core/strings.h"

namespace nimbus::app {
namespace {

Status Apply(ServeConfig& config, const std::string& name, const std::string& value,
             const std::string& source) {
  auto bad = [&](const std::string& why) {
    return Status::Validation("invalid " + source + " '" + value + "': " + why);
  };
  if (name == "host") {
    if (value.empty()) return bad("empty host");
    config.host = value;
  } else if (name == "port") {
    auto port = ParseInt(value);
    if (!port || *port < 0 || *port > 65535) return bad("must be a port number 0-65535");
    config.port = static_cast<uint16_t>(*port);
  } else if (name == "data-dir") {
    if (value.empty()) return bad("empty path");
    config.data_dir = value;
  } else if (name == "region") {
    if (value.empty()) return bad("empty region");
    config.region = value;
  } else if (name == "account-id") {
    if (value.size() != 12 || value.find_first_not_of("0123456789") != std::string::npos) {
      return bad("must be 12 digits");
    }
    config.account_id = value;
  } else if (name == "log-level") {
    static const std::map<std::string, LogLevel> kLevels = {{"debug", LogLevel::kDebug},
                                                            {"info", LogLevel::kInfo},
                                                            {"warn", LogLevel::kWarn},
                                                            {"error", LogLevel::kError}};
    auto it = kLevels.find(value);
    if (it == kLevels.end()) return bad("must be debug, info, warn or error");
    config.log_level = it->second;
  } else if (name == "capacity-vcpus" || name == "capacity-memory-mib" || name == "capacity-gpus") {
    auto n = ParseInt(value);
    if (!n || *n < (name == "capacity-gpus" ? 0 : 1)) return bad("must be a positive number");
    if (name == "capacity-vcpus") config.capacity_vcpus = static_cast<int>(*n);
    if (name == "capacity-memory-mib") config.capacity_memory_mib = *n;
    if (name == "capacity-gpus") config.capacity_gpus = static_cast<int>(*n);
  } else if (name == "sandbox") {
    if (value != "auto" && value != "on" && value != "off") return bad("must be auto, on or off");
    config.sandbox = value;
  } else if (name == "sync-writes") {
    if (value != "on" && value != "off") return bad("must be on or off");
    config.sync_writes = value == "on";
  } else if (name == "autoscaling-period" || name == "autoscaling-window" ||
             name == "autoscaling-scale-out-datapoints" ||
             name == "autoscaling-scale-in-datapoints") {
    auto n = ParseInt(value);
    if (!n || *n < 1 || *n > 86400) return bad("must be a whole number from 1 to 86400");
    const int v = static_cast<int>(*n);
    if (name == "autoscaling-period") config.autoscaling_period_seconds = v;
    if (name == "autoscaling-window") config.autoscaling_window_seconds = v;
    if (name == "autoscaling-scale-out-datapoints") config.autoscaling_scale_out_datapoints = v;
    if (name == "autoscaling-scale-in-datapoints") config.autoscaling_scale_in_datapoints = v;
  } else {
    return Status::Validation("unknown flag --" + name);
  }
  return Status::Ok();
}

}  // namespace

std::string RealEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

Result<ServeConfig> ParseServeConfig(const std::vector<std::string>& args, const EnvLookup& env) {
  ServeConfig config;
  static const std::pair<const char*, const char*> kEnv[] = {
      {"host", "NIMBUS_HOST"},
      {"port", "NIMBUS_PORT"},
      {"data-dir", "NIMBUS_DATA_DIR"},
      {"data-dir", "NIMBUS_DATA"},
      {"region", "NIMBUS_REGION"},
      {"account-id", "NIMBUS_ACCOUNT_ID"},
      {"log-level", "NIMBUS_LOG_LEVEL"},
      {"capacity-vcpus", "NIMBUS_CAPACITY_VCPUS"},
      {"capacity-memory-mib", "NIMBUS_CAPACITY_MEMORY_MIB"},
      {"capacity-gpus", "NIMBUS_CAPACITY_GPUS"},
      {"sync-writes", "NIMBUS_SYNC_WRITES"},
      {"sandbox", "NIMBUS_SANDBOX"},
      {"autoscaling-period", "NIMBUS_AUTOSCALING_PERIOD"},
      {"autoscaling-window", "NIMBUS_AUTOSCALING_WINDOW"},
      {"autoscaling-scale-out-datapoints", "NIMBUS_AUTOSCALING_SCALE_OUT_DATAPOINTS"},
      {"autoscaling-scale-in-datapoints", "NIMBUS_AUTOSCALING_SCALE_IN_DATAPOINTS"},
  };
  for (const auto& [flag, var] : kEnv) {
    std::string v = env(var);
    if (!v.empty()) NIMBUS_RETURN_IF_ERROR(Apply(config, flag, v, var));
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!StartsWith(arg, "--")) return Status::Validation("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Status::Validation("flag " + arg + " needs a value");
    }
    NIMBUS_RETURN_IF_ERROR(Apply(config, name, value, "--" + name));
  }
  return config;
}

std::string ServeUsage() {
  return "usage: nimbus serve [--host H] [--port P] [--data-dir DIR] [--region R]\n"
         "                    [--account-id ID] [--log-level debug|info|warn|error]\n"
         "                    [--capacity-vcpus N] [--capacity-memory-mib N]\n"
         "                    [--capacity-gpus N] [--sandbox auto|on|off] [--sync-writes on|off]\n"
         "                    [--autoscaling-period S] [--autoscaling-window S]\n"
         "                    [--autoscaling-scale-out-datapoints N]\n"
         "                    [--autoscaling-scale-in-datapoints N]\n"
         "Each flag may also be set with NIMBUS_HOST, NIMBUS_PORT, NIMBUS_DATA,\n"
         "NIMBUS_REGION, NIMBUS_ACCOUNT_ID, NIMBUS_LOG_LEVEL, NIMBUS_CAPACITY_VCPUS,\n"
         "NIMBUS_CAPACITY_MEMORY_MIB, NIMBUS_CAPACITY_GPUS, NIMBUS_SANDBOX,\n"
         "NIMBUS_AUTOSCALING_PERIOD, NIMBUS_AUTOSCALING_WINDOW,\n"
         "NIMBUS_AUTOSCALING_SCALE_OUT_DATAPOINTS, NIMBUS_AUTOSCALING_SCALE_IN_DATAPOINTS.\n";
}

}  // namespace nimbus::app
