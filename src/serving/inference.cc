#include "serving/inference.h"

namespace nimbus::serving {

Value ContainerSpecToValue(const ContainerSpec& spec) {
  Value environment = Value::MakeMap();
  for (const auto& [name, value] : spec.environment) environment[name] = value;
  return Value::Object({{"model_dir", spec.model_dir},
                        {"algorithm", spec.algorithm},
                        {"code_dir", spec.code_dir},
                        {"program", spec.program},
                        {"environment", std::move(environment)},
                        {"threads", int64_t{spec.threads}}});
}

ContainerSpec ContainerSpecFromValue(const Value& value) {
  ContainerSpec spec;
  spec.model_dir = value.GetString("model_dir");
  spec.algorithm = value.GetString("algorithm");
  spec.code_dir = value.GetString("code_dir");
  spec.program = value.GetString("program");
  if (const Value* environment = value.Find("environment"); environment && environment->is_map()) {
    for (const auto& [name, v] : environment->map()) {
      if (v.is_string()) spec.environment[name] = v.AsString();
    }
  }
  spec.threads = static_cast<int>(value.GetInt("threads", 1));
  return spec;
}

}  // namespace nimbus::serving
