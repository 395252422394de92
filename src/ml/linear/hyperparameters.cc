#include "ml/linear/hyperparameters.h"

#include <sstream>

#include "core/strings.h"

namespace nimbus::ml {
namespace {

std::string FormatBound(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

bool IsAutoHyperparameter(const Hyperparameters& hp, const std::string& name) {
  auto it = hp.find(name);
  return it != hp.end() && ToLower(Trim(it->second)) == "auto";
}

Status CheckHyperparameterBounds(const Hyperparameters& hp, const std::string& name, double v,
                                 double lo, double hi, bool lo_open, bool hi_open) {
  bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (ok) return Status::Ok();
  std::string rule;
  if (hi == kUnbounded) {
    rule = std::string(lo_open ? "must be > " : "must be >= ") + FormatBound(lo);
  } else {
    rule = std::string("must be in ") + (lo_open ? "(" : "[") + FormatBound(lo) + ", " +
           FormatBound(hi) + (hi_open ? ")" : "]");
  }
  auto it = hp.find(name);
  return ClientError("Hyperparameter '" + name + "' = '" + (it == hp.end() ? "" : it->second) +
                     "' is out of range: " + rule);
}

Result<double> ReadFloat(HyperparameterReader& r, const Hyperparameters& hp,
                         const std::string& name, double fallback, double lo, double hi,
                         bool lo_open, bool hi_open) {
  NIMBUS_ASSIGN_OR_RETURN(double v, r.Float(name, fallback));
  if (hp.count(name)) {
    NIMBUS_RETURN_IF_ERROR(CheckHyperparameterBounds(hp, name, v, lo, hi, lo_open, hi_open));
  }
  return v;
}

Result<std::optional<double>> ReadOptionalFloat(HyperparameterReader& r, const Hyperparameters& hp,
                                                const std::string& name, double lo, double hi,
                                                bool lo_open, bool hi_open) {
  if (!hp.count(name)) {
    (void)r.String(name, "");
    return std::optional<double>();
  }
  NIMBUS_ASSIGN_OR_RETURN(double v, r.Float(name, std::nullopt));
  NIMBUS_RETURN_IF_ERROR(CheckHyperparameterBounds(hp, name, v, lo, hi, lo_open, hi_open));
  return std::optional<double>(v);
}

Result<std::optional<double>> ReadAutoFloat(HyperparameterReader& r, const Hyperparameters& hp,
                                            const std::string& name, double lo, double hi,
                                            bool lo_open, bool hi_open) {
  if (IsAutoHyperparameter(hp, name)) {
    (void)r.String(name, "");
    return std::optional<double>();
  }
  return ReadOptionalFloat(r, hp, name, lo, hi, lo_open, hi_open);
}

Result<std::optional<int64_t>> ReadAutoInt(HyperparameterReader& r, const Hyperparameters& hp,
                                           const std::string& name, int64_t lo, int64_t hi) {
  if (!hp.count(name) || IsAutoHyperparameter(hp, name)) {
    (void)r.String(name, "");
    return std::optional<int64_t>();
  }
  NIMBUS_ASSIGN_OR_RETURN(int64_t v, r.Int(name, std::nullopt, lo, hi));
  return std::optional<int64_t>(v);
}

Result<std::optional<bool>> ReadAutoBool(HyperparameterReader& r, const Hyperparameters& hp,
                                         const std::string& name) {
  if (!hp.count(name) || IsAutoHyperparameter(hp, name)) {
    (void)r.String(name, "");
    return std::optional<bool>();
  }
  NIMBUS_ASSIGN_OR_RETURN(bool v, r.Bool(name, std::nullopt));
  return std::optional<bool>(v);
}

}  // namespace nimbus::ml
