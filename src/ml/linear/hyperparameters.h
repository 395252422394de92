// Hyperparameter readers beyond HyperparameterReader's plain typed values, shared by the
// linear learner and factorization machines: "auto" (nullopt) alongside a number or a
// boolean, open intervals ("a float in (0, 1)"), optional values without a default. Errors
// keep SageMaker's wording: "Hyperparameter 'quantile' = '1' is out of range: must be in
// (0, 1)". Every reader marks the name as read, so CheckAllKnown() accepts it.
//
// Thread-safety: free functions over the caller's reader.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "core/result.h"
#include "ml/algorithm.h"

namespace nimbus::ml {

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();

// True when the hyperparameter is present and says "auto" (any case).
bool IsAutoHyperparameter(const Hyperparameters& hp, const std::string& name);

// ClientError unless v lies in the interval (hi may be kUnbounded).
Status CheckHyperparameterBounds(const Hyperparameters& hp, const std::string& name, double v,
                                 double lo, double hi, bool lo_open, bool hi_open);

Result<double> ReadFloat(HyperparameterReader& r, const Hyperparameters& hp,
                         const std::string& name, double fallback, double lo, double hi,
                         bool lo_open = false, bool hi_open = false);
// nullopt when absent.
Result<std::optional<double>> ReadOptionalFloat(HyperparameterReader& r, const Hyperparameters& hp,
                                                const std::string& name, double lo, double hi,
                                                bool lo_open = false, bool hi_open = false);
// nullopt when absent or "auto".
Result<std::optional<double>> ReadAutoFloat(HyperparameterReader& r, const Hyperparameters& hp,
                                            const std::string& name, double lo, double hi,
                                            bool lo_open = false, bool hi_open = false);
Result<std::optional<int64_t>> ReadAutoInt(HyperparameterReader& r, const Hyperparameters& hp,
                                           const std::string& name, int64_t lo, int64_t hi);
Result<std::optional<bool>> ReadAutoBool(HyperparameterReader& r, const Hyperparameters& hp,
                                         const std::string& name);

}  // namespace nimbus::ml
