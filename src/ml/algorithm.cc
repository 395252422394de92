#include "ml/algorithm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/strings.h"

namespace nimbus::ml {
namespace {

std::vector<AlgorithmInfo>& Registry() {
  static std::vector<AlgorithmInfo> registry;
  return registry;
}

std::string FormatNumber(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

Status ClientError(std::string message) {
  return Status::Aws("ClientError", 400, std::move(message));
}

Status CheckFeatures(const Dataset& data, int64_t dim, const std::string& what) {
  if (data.rows > 0 && (data.cols > dim || (!data.sparse && data.cols != dim))) {
    return ClientError("The " + what + " has " + std::to_string(data.cols) +
                       " features per record, but feature_dim is " + std::to_string(dim));
  }
  return Status::Ok();
}

bool AllFinite(const float* values, size_t count) {
  // A value is NaN or infinite when its exponent bits are all ones. The blocks have no early
  // exit, so that the compiler vectorizes them.
  constexpr size_t kBlock = 4096;
  for (size_t begin = 0; begin < count; begin += kBlock) {
    const size_t end = std::min(count, begin + kBlock);
    uint32_t bad = 0;
    for (size_t i = begin; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, values + i, sizeof bits);
      bad |= (~bits & 0x7f800000u) == 0 ? 1u : 0u;
    }
    if (bad != 0) return false;
  }
  return true;
}

void LogTrainRecordsRead(const TrainingInput& input, int64_t rows) {
  if (input.log) input.log("Read " + std::to_string(rows) + " records from the train channel");
}

Status CheckFinite(const Dataset& data, const std::string& what) {
  if (!AllFinite(data.values.data(), data.values.size())) {
    return ClientError("The " + what + " has a value that is not a finite number");
  }
  return Status::Ok();
}

Status WriteArtifact(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path final_path = std::filesystem::path(dir) / name;
  const std::filesystem::path temp_path = std::filesystem::path(dir) / ("." + name + ".tmp");
  {
    std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.good()) return Status::Internal("cannot write " + temp_path.string());
  }
  std::filesystem::rename(temp_path, final_path, ec);
  if (ec) return Status::Internal("cannot write " + final_path.string() + ": " + ec.message());
  return Status::Ok();
}

std::vector<std::string> Channel::Files() const {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::end(it); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file(ec) && !name.empty() && name[0] != '.') {
      files.push_back(it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

void RegisterAlgorithm(AlgorithmInfo info) {
  auto& registry = Registry();
  for (auto& existing : registry) {
    if (existing.name == info.name) {
      existing = std::move(info);
      return;
    }
  }
  registry.push_back(std::move(info));
}

const AlgorithmInfo* FindAlgorithm(std::string_view name) {
  for (const auto& info : Registry()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

const AlgorithmInfo* FindAlgorithmForImage(std::string_view image_uri) {
  // <registry>/<repo>[:tag][@digest]; the repository's last path component names it.
  std::string_view uri = image_uri;
  if (size_t at = uri.find('@'); at != std::string_view::npos) uri = uri.substr(0, at);
  size_t slash = uri.rfind('/');
  std::string_view last = slash == std::string_view::npos ? uri : uri.substr(slash + 1);
  if (size_t colon = last.find(':'); colon != std::string_view::npos) last = last.substr(0, colon);
  for (const auto& info : Registry()) {
    for (const auto& repo : info.image_repositories) {
      if (repo == last) return &info;
    }
  }
  return nullptr;
}

std::vector<const AlgorithmInfo*> AllAlgorithms() {
  std::vector<const AlgorithmInfo*> all;
  for (const auto& info : Registry()) all.push_back(&info);
  return all;
}

Result<int64_t> HyperparameterReader::Int(const std::string& name, std::optional<int64_t> fallback,
                                          int64_t min, int64_t max) {
  read_.push_back(name);
  auto it = values_.find(name);
  if (it == values_.end()) {
    if (!fallback) return ClientError("Hyperparameter '" + name + "' is required");
    return *fallback;
  }
  // SageMaker passes every hyperparameter as a string; "10.0" is an integer too.
  auto parsed = ParseInt(Trim(it->second));
  if (!parsed) {
    char* end = nullptr;
    double d = std::strtod(it->second.c_str(), &end);
    if (end != it->second.c_str() && *end == '\0' && std::floor(d) == d && std::isfinite(d)) {
      parsed = static_cast<int64_t>(d);
    }
  }
  if (!parsed) {
    return ClientError("Hyperparameter '" + name + "' = '" + it->second + "' is not an integer");
  }
  if (*parsed < min || *parsed > max) {
    return ClientError("Hyperparameter '" + name + "' = '" + it->second +
                       "' is out of range: must be in [" + std::to_string(min) + ", " +
                       (max == INT64_MAX ? std::string("inf") : std::to_string(max)) + "]");
  }
  return *parsed;
}

Result<double> HyperparameterReader::Float(const std::string& name, std::optional<double> fallback,
                                           double min, double max) {
  read_.push_back(name);
  auto it = values_.find(name);
  if (it == values_.end()) {
    if (!fallback) return ClientError("Hyperparameter '" + name + "' is required");
    return *fallback;
  }
  std::string text(Trim(it->second));
  char* end = nullptr;
  double d = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(d)) {
    return ClientError("Hyperparameter '" + name + "' = '" + it->second + "' is not a number");
  }
  if (d < min || d > max) {
    return ClientError("Hyperparameter '" + name + "' = '" + it->second +
                       "' is out of range: must be in [" + FormatNumber(min) + ", " +
                       (max >= 1e308 ? std::string("inf") : FormatNumber(max)) + "]");
  }
  return d;
}

Result<std::string> HyperparameterReader::Choice(const std::string& name,
                                                 std::optional<std::string> fallback,
                                                 const std::vector<std::string>& allowed) {
  read_.push_back(name);
  auto it = values_.find(name);
  if (it == values_.end()) {
    if (!fallback) return ClientError("Hyperparameter '" + name + "' is required");
    return *fallback;
  }
  if (std::find(allowed.begin(), allowed.end(), it->second) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return ClientError("Hyperparameter '" + name + "' = '" + it->second +
                       "' must be one of: " + list);
  }
  return it->second;
}

Result<bool> HyperparameterReader::Bool(const std::string& name, std::optional<bool> fallback) {
  read_.push_back(name);
  auto it = values_.find(name);
  if (it == values_.end()) {
    if (!fallback) return ClientError("Hyperparameter '" + name + "' is required");
    return *fallback;
  }
  std::string v = ToLower(Trim(it->second));
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return ClientError("Hyperparameter '" + name + "' = '" + it->second + "' must be true or false");
}

Result<std::string> HyperparameterReader::String(const std::string& name,
                                                 std::optional<std::string> fallback) {
  read_.push_back(name);
  auto it = values_.find(name);
  if (it == values_.end()) {
    if (!fallback) return ClientError("Hyperparameter '" + name + "' is required");
    return *fallback;
  }
  return it->second;
}

Status HyperparameterReader::CheckAllKnown(const std::vector<std::string>& also_allowed) const {
  for (const auto& [name, value] : values_) {
    // SageMaker's own entries (sagemaker_*, _tuning_objective_metric) are not the algorithm's.
    if (StartsWith(name, "sagemaker_") || StartsWith(name, "_")) continue;
    if (std::find(read_.begin(), read_.end(), name) != read_.end()) continue;
    if (std::find(also_allowed.begin(), also_allowed.end(), name) != also_allowed.end()) continue;
    return ClientError("Additional hyperparameters are not allowed ('" + name +
                       "' was unexpected)");
  }
  return Status::Ok();
}

}  // namespace nimbus::ml
