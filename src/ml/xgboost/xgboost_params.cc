#include "ml/xgboost/xgboost_params.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "core/strings.h"

namespace nimbus::ml {
namespace {

// libxgboost's own metrics that the container accepts in eval_metric.
const std::vector<std::string>& NativeMetrics() {
  static const std::vector<std::string> metrics = {"aft-nloglik",
                                                   "auc",
                                                   "aucpr",
                                                   "cox-nloglik",
                                                   "error",
                                                   "gamma-deviance",
                                                   "gamma-nloglik",
                                                   "interval-regression-accuracy",
                                                   "logloss",
                                                   "mae",
                                                   "map",
                                                   "mape",
                                                   "merror",
                                                   "mlogloss",
                                                   "mphe",
                                                   "ndcg",
                                                   "poisson-nloglik",
                                                   "rmse",
                                                   "rmsle",
                                                   "tweedie-nloglik"};
  return metrics;
}

// The metrics the container computes itself from predictions (its custom feval).
const std::vector<std::string>& CustomMetrics() {
  static const std::vector<std::string> metrics = {"accuracy",
                                                   "balanced_accuracy",
                                                   "f1",
                                                   "f1_binary",
                                                   "f1_macro",
                                                   "mse",
                                                   "precision",
                                                   "precision_macro",
                                                   "precision_micro",
                                                   "r2",
                                                   "recall",
                                                   "recall_macro",
                                                   "recall_micro"};
  return metrics;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string Join(const std::vector<std::string>& items, const std::string& sep,
                 const char* open = "", const char* close = "") {
  std::string out = open;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  out += close;
  return out;
}

std::string FormatBound(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// A numeric range; SageMaker's container uses open bounds in places (subsample in (0, 1]).
struct Interval {
  std::optional<double> min;
  bool min_open = false;
  std::optional<double> max;
  bool max_open = false;

  bool Holds(double v) const {
    if (min && (min_open ? v <= *min : v < *min)) return false;
    if (max && (max_open ? v >= *max : v > *max)) return false;
    return true;
  }
  std::string Describe() const {
    return std::string(min && min_open ? "(" : "[") + (min ? FormatBound(*min) : "-inf") + ", " +
           (max ? FormatBound(*max) : "inf") + (max && max_open ? ")" : "]");
  }
};

Interval Closed(double lo, double hi) { return {lo, false, hi, false}; }
Interval AtLeast(double lo) { return {lo, false, std::nullopt, false}; }
Interval Above(double lo) { return {lo, true, std::nullopt, false}; }
Interval OpenClosed(double lo, double hi) { return {lo, true, hi, false}; }
Interval Open(double lo, double hi) { return {lo, true, hi, true}; }

enum class Kind { kInt, kFloat, kChoice };

// A hyperparameter that maps one-to-one onto a booster parameter (or onto nothing, for the
// container's own switches).
struct Spec {
  std::string name;
  Kind kind;
  Interval range;
  std::vector<std::string> choices = {};
  bool forward = true;     // passed to XGBoosterSetParam
  std::string alias = {};  // the xgboost alias SageMaker also accepts
};

const std::vector<Spec>& SimpleSpecs() {
  static const std::vector<Spec> specs = {
      {"csv_weights", Kind::kInt, Closed(0, 1), {}, false},
      {"early_stopping_rounds", Kind::kInt, AtLeast(1), {}, false},
      {"booster", Kind::kChoice, {}, {"gbtree", "gblinear", "dart"}},
      {"silent", Kind::kInt, Closed(0, 1), {}, false},  // superseded by verbosity
      {"verbosity", Kind::kInt, Closed(0, 3)},
      {"nthread", Kind::kInt, AtLeast(1), {}, false},
      {"eta", Kind::kFloat, Closed(0, 1), {}, true, "learning_rate"},
      {"gamma", Kind::kFloat, AtLeast(0), {}, true, "min_split_loss"},
      {"max_depth", Kind::kInt, AtLeast(0)},
      {"min_child_weight", Kind::kFloat, AtLeast(0)},
      {"max_delta_step", Kind::kFloat, AtLeast(0)},
      {"subsample", Kind::kFloat, OpenClosed(0, 1)},
      {"colsample_bytree", Kind::kFloat, OpenClosed(0, 1)},
      {"colsample_bylevel", Kind::kFloat, OpenClosed(0, 1)},
      {"colsample_bynode", Kind::kFloat, OpenClosed(0, 1)},
      {"lambda", Kind::kFloat, AtLeast(0), {}, true, "reg_lambda"},
      {"alpha", Kind::kFloat, AtLeast(0), {}, true, "reg_alpha"},
      {"sketch_eps", Kind::kFloat, Open(0, 1)},
      {"scale_pos_weight", Kind::kFloat, Above(0)},
      // Row/column data splitting only matters to distributed training; one node ignores it.
      {"dsplit", Kind::kChoice, {}, {"row", "col"}, false},
      {"refresh_leaf", Kind::kInt, Closed(0, 1)},
      {"process_type", Kind::kChoice, {}, {"default", "update"}},
      {"grow_policy", Kind::kChoice, {}, {"depthwise", "lossguide"}},
      {"max_leaves", Kind::kInt, AtLeast(0)},
      {"max_bin", Kind::kInt, AtLeast(0)},
      {"sample_type", Kind::kChoice, {}, {"uniform", "weighted"}},
      {"normalize_type", Kind::kChoice, {}, {"tree", "forest"}},
      {"rate_drop", Kind::kFloat, Closed(0, 1)},
      {"one_drop", Kind::kInt, Closed(0, 1)},
      {"skip_drop", Kind::kFloat, Closed(0, 1)},
      {"lambda_bias", Kind::kFloat, Closed(0, 1)},
      {"tweedie_variance_power", Kind::kFloat, Open(1, 2)},
      {"base_score", Kind::kFloat, AtLeast(0)},
      {"num_parallel_tree", Kind::kInt, AtLeast(1)},
      {"save_model_on_termination", Kind::kChoice, {}, {"true", "false"}, false},
      {"aft_loss_distribution", Kind::kChoice, {}, {"normal", "logistic", "extreme"}},
      {"aft_loss_distribution_scale", Kind::kFloat, AtLeast(0)},
      {"huber_slope", Kind::kFloat, Above(0)},
      // GPU histogram switches: accepted as the container accepts them, meaningless on CPU.
      {"single_precision_histogram", Kind::kChoice, {}, {"true", "false"}, false},
      {"deterministic_histogram", Kind::kChoice, {}, {"true", "false"}, false},
      {"prob_buffer_row", Kind::kFloat, Above(1), {}, false},
  };
  return specs;
}

const std::vector<std::string>& Objectives() {
  static const std::vector<std::string> objectives = {"binary:logistic",
                                                      "binary:logitraw",
                                                      "binary:hinge",
                                                      "count:poisson",
                                                      "multi:softmax",
                                                      "multi:softprob",
                                                      "rank:pairwise",
                                                      "rank:ndcg",
                                                      "rank:map",
                                                      "reg:linear",
                                                      "reg:squarederror",
                                                      "reg:logistic",
                                                      "reg:gamma",
                                                      "reg:squaredlogerror",
                                                      "reg:tweedie",
                                                      "reg:absoluteerror",
                                                      "reg:pseudohubererror",
                                                      "survival:cox",
                                                      "survival:aft"};
  return objectives;
}

class ParamParser {
 public:
  explicit ParamParser(const Hyperparameters& values) : values_(values), reader_(values) {}

  Result<XgboostConfig> Parse() {
    XgboostConfig config;
    NIMBUS_ASSIGN_OR_RETURN(config.num_round, reader_.Int("num_round", std::nullopt, 1));
    for (const char* cv : {"_kfold", "_num_cv_round"}) {
      if (values_.count(cv)) {
        return ClientError(std::string("Hyperparameter '") + cv +
                           "': cross-validation training is not supported");
      }
    }
    NIMBUS_ASSIGN_OR_RETURN(config.objective,
                            reader_.Choice("objective", "reg:squarederror", Objectives()));
    if (reader_.Has("objective")) config.params.emplace_back("objective", config.objective);
    const bool multi = StartsWith(config.objective, "multi:");
    if (reader_.Has("num_class")) {
      NIMBUS_ASSIGN_OR_RETURN(config.num_class, reader_.Int("num_class", std::nullopt, 2));
      if (!multi) {
        return ClientError(
            "Hyperparameter 'num_class' applies only to multi-classification (objective "
            "multi:softmax or multi:softprob), not to objective '" +
            config.objective + "'");
      }
      config.params.emplace_back("num_class", std::to_string(config.num_class));
    } else if (multi) {
      return ClientError("Hyperparameter 'num_class' is required when objective is '" +
                         config.objective + "'");
    }

    for (const Spec& spec : SimpleSpecs()) NIMBUS_RETURN_IF_ERROR(ReadSimple(spec, config));
    config.csv_weights = given_.count("csv_weights") && given_["csv_weights"] == "1";
    if (given_.count("early_stopping_rounds")) {
      config.early_stopping_rounds = *ParseInt(given_["early_stopping_rounds"]);
    }
    if (given_.count("nthread")) config.nthread = *ParseInt(given_["nthread"]);
    if (given_.count("booster")) config.booster = given_["booster"];

    NIMBUS_RETURN_IF_ERROR(ReadGpuSensitive("tree_method", {"auto", "exact", "approx", "hist"},
                                            "tree_method", config));
    NIMBUS_RETURN_IF_ERROR(
        ReadGpuSensitive("predictor", {"auto", "cpu_predictor"}, "predictor", config));
    NIMBUS_RETURN_IF_ERROR(ReadGpuSensitive("sampling_method", {"uniform"}, "", config));

    if (reader_.Has("seed")) {
      NIMBUS_ASSIGN_OR_RETURN(
          int64_t seed,
          reader_.Int("seed", std::nullopt, -(int64_t{1} << 31) + 1, (int64_t{1} << 31) - 2));
      config.params.emplace_back("seed", std::to_string(seed));
    } else {
      // Deterministic by default, as xgboost's own default seed is 0.
      config.params.emplace_back("seed", "0");
    }

    NIMBUS_RETURN_IF_ERROR(ReadUpdater(config));
    NIMBUS_RETURN_IF_ERROR(ReadConstraints(config));
    NIMBUS_RETURN_IF_ERROR(ReadMetrics(config));
    NIMBUS_RETURN_IF_ERROR(reader_.CheckAllKnown());
    return config;
  }

 private:
  // The value as given, trimmed; REQUIRES: present.
  std::string Normalized(const std::string& name) const {
    return std::string(Trim(values_.at(name)));
  }

  Status ReadSimple(const Spec& spec, XgboostConfig& config) {
    std::string name = spec.name;
    if (!spec.alias.empty() && reader_.Has(spec.alias)) {
      if (reader_.Has(spec.name)) {
        return ClientError("Hyperparameters '" + spec.name + "' and '" + spec.alias +
                           "' are aliases of one another; set only one of them");
      }
      name = spec.alias;
    }
    if (!reader_.Has(name)) return Status::Ok();
    std::string value;
    switch (spec.kind) {
      case Kind::kInt: {
        int64_t min = spec.range.min ? static_cast<int64_t>(*spec.range.min) : INT64_MIN;
        int64_t max = spec.range.max ? static_cast<int64_t>(*spec.range.max) : INT64_MAX;
        NIMBUS_ASSIGN_OR_RETURN(int64_t v, reader_.Int(name, std::nullopt, min, max));
        value = std::to_string(v);
        break;
      }
      case Kind::kFloat: {
        NIMBUS_ASSIGN_OR_RETURN(double v, reader_.Float(name, std::nullopt));
        if (!spec.range.Holds(v)) {
          return ClientError("Hyperparameter '" + name + "' = '" + values_.at(name) +
                             "' is out of range: must be in " + spec.range.Describe());
        }
        value = Normalized(name);
        break;
      }
      case Kind::kChoice: {
        NIMBUS_ASSIGN_OR_RETURN(value, reader_.Choice(name, std::nullopt, spec.choices));
        break;
      }
    }
    if (spec.forward) config.params.emplace_back(spec.name, value);
    given_[spec.name] = value;
    return Status::Ok();
  }

  // A categorical hyperparameter whose GPU values get a clear "not supported" error rather
  // than "must be one of". forward_as empty: validated only.
  Status ReadGpuSensitive(const std::string& name, const std::vector<std::string>& allowed,
                          const std::string& forward_as, XgboostConfig& config) {
    if (!reader_.Has(name)) return Status::Ok();
    const std::string& raw = values_.at(name);
    if (raw.find("gpu") != std::string::npos || raw == "gradient_based") {
      (void)reader_.String(name, std::nullopt);
      return ClientError("Hyperparameter '" + name + "' = '" + raw +
                         "' needs GPU training, which is not supported: use one of " +
                         Join(allowed, ", "));
    }
    NIMBUS_ASSIGN_OR_RETURN(std::string value, reader_.Choice(name, std::nullopt, allowed));
    if (!forward_as.empty()) config.params.emplace_back(forward_as, value);
    return Status::Ok();
  }

  // updater: a comma list of plug-ins, checked against the booster and process_type as the
  // container checks them.
  Status ReadUpdater(XgboostConfig& config) {
    if (!reader_.Has("updater")) return Status::Ok();
    NIMBUS_ASSIGN_OR_RETURN(std::string raw, reader_.String("updater", std::nullopt));
    std::vector<std::string> plugins;
    for (const auto& part : Split(raw, ',')) {
      std::string p(Trim(part));
      if (!p.empty()) plugins.push_back(p);
    }
    static const std::vector<std::string> tree = {
        "grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker",   "grow_skmaker",
        "sync",          "refresh", "prune",          "grow_quantile_histmaker"};
    static const std::vector<std::string> tree_build = {"grow_colmaker", "distcol",
                                                        "grow_histmaker", "grow_local_histmaker",
                                                        "grow_quantile_histmaker"};
    static const std::vector<std::string> linear = {"shotgun", "coord_descent"};
    const std::string process_type =
        values_.count("process_type") ? values_.at("process_type") : "default";
    if (plugins.empty()) {
      return ClientError("Hyperparameter 'updater' = '" + raw + "' names no updater");
    }
    if (config.booster == "gblinear") {
      if (plugins.size() != 1 || !Contains(linear, plugins[0])) {
        return ClientError("Hyperparameter 'updater' = '" + raw +
                           "': the linear updater should be one of: shotgun, coord_descent");
      }
    } else if (process_type == "update") {
      for (const auto& p : plugins) {
        if (p != "refresh" && p != "prune") {
          return ClientError(
              "Hyperparameter 'updater' = '" + raw +
              "': process_type 'update' can only be used with updaters 'refresh' and 'prune'");
        }
      }
    } else {
      int builders = 0;
      for (const auto& p : plugins) {
        if (!Contains(tree, p)) {
          return ClientError("Hyperparameter 'updater' = '" + raw + "': tree updater '" + p +
                             "' should be one of: " + Join(tree, ", "));
        }
        builders += Contains(tree_build, p) ? 1 : 0;
      }
      if (builders > 1) {
        return ClientError(
            "Hyperparameter 'updater' = '" + raw +
            "': only one tree grow plug-in can be selected, one of: " + Join(tree_build, ", "));
      }
    }
    config.params.emplace_back("updater", Join(plugins, ","));
    return Status::Ok();
  }

  Status ReadConstraints(XgboostConfig& config) {
    const std::string tree_method =
        values_.count("tree_method") ? values_.at("tree_method") : "auto";
    if (reader_.Has("monotone_constraints")) {
      NIMBUS_ASSIGN_OR_RETURN(std::string raw, reader_.String("monotone_constraints", {}));
      std::string_view body = Trim(raw);
      if (!body.empty() && (body.front() == '(' || body.front() == '[')) body.remove_prefix(1);
      if (!body.empty() && (body.back() == ')' || body.back() == ']')) body.remove_suffix(1);
      std::vector<std::string> items;
      for (const auto& part : Split(body, ',')) {
        std::string item(Trim(part));
        if (item.empty()) continue;
        auto v = ParseInt(item);
        if (!v || *v < -1 || *v > 1) {
          return ClientError("Hyperparameter 'monotone_constraints' = '" + raw +
                             "' must be a tuple of -1, 0 and 1 values, e.g. (1,0,-1)");
        }
        items.push_back(std::to_string(*v));
      }
      if (tree_method != "exact" && tree_method != "hist") {
        return ClientError(
            "Hyperparameter 'monotone_constraints' can be used only when 'tree_method' is "
            "'exact' or 'hist'");
      }
      config.params.emplace_back("monotone_constraints", Join(items, ",", "(", ")"));
    }
    if (reader_.Has("interaction_constraints")) {
      NIMBUS_ASSIGN_OR_RETURN(std::string raw, reader_.String("interaction_constraints", {}));
      NIMBUS_ASSIGN_OR_RETURN(std::string normalized, ParseNestedList(raw));
      if (tree_method != "exact" && tree_method != "hist" && tree_method != "approx") {
        return ClientError(
            "Hyperparameter 'interaction_constraints' can be used only when 'tree_method' is "
            "'exact', 'hist' or 'approx'");
      }
      config.params.emplace_back("interaction_constraints", normalized);
    }
    return Status::Ok();
  }

  // "[[0, 1], [2, 3, 4]]": lists of feature indices; returned in xgboost's JSON form.
  static Result<std::string> ParseNestedList(const std::string& raw) {
    auto bad = [&] {
      return ClientError("Hyperparameter 'interaction_constraints' = '" + raw +
                         "' must be a nested list of feature indices, e.g. [[0, 1], [2, 3]]");
    };
    std::string_view s = Trim(raw);
    if (s.size() < 2 || s.front() != '[' || s.back() != ']') return bad();
    s = Trim(s.substr(1, s.size() - 2));
    std::vector<std::string> groups;
    while (!s.empty()) {
      if (s.front() != '[') return bad();
      size_t close = s.find(']');
      if (close == std::string_view::npos) return bad();
      std::vector<std::string> indices;
      for (const auto& part : Split(s.substr(1, close - 1), ',')) {
        auto v = ParseInt(Trim(part));
        if (!v || *v < 0) return bad();
        indices.push_back(std::to_string(*v));
      }
      if (indices.empty()) return bad();
      groups.push_back(Join(indices, ",", "[", "]"));
      s = Trim(s.substr(close + 1));
      if (!s.empty()) {
        if (s.front() != ',') return bad();
        s = Trim(s.substr(1));
        if (s.empty()) return bad();
      }
    }
    if (groups.empty()) return bad();
    return Join(groups, ",", "[", "]");
  }

  Result<std::string> CheckMetric(const std::string& metric, const std::string& hyperparameter) {
    if (size_t at = metric.find('@'); at != std::string::npos) {
      std::string name(Trim(metric.substr(0, at)));
      std::string threshold(Trim(metric.substr(at + 1)));
      if (name != "error" && name != "ndcg" && name != "map") {
        return ClientError("Hyperparameter '" + hyperparameter + "': metric '" + metric +
                           "' is not supported; a metric with a threshold must be one of: "
                           "error@t, ndcg@n, map@n");
      }
      char* end = nullptr;
      std::strtod(threshold.c_str(), &end);
      if (threshold.empty() || *end != '\0') {
        return ClientError("Hyperparameter '" + hyperparameter + "': threshold 't' in '" + name +
                           "@t' must be a number, got '" + threshold + "'");
      }
      return name + "@" + threshold;
    }
    if (!Contains(NativeMetrics(), metric) && !Contains(CustomMetrics(), metric)) {
      std::vector<std::string> all = NativeMetrics();
      all.insert(all.end(), CustomMetrics().begin(), CustomMetrics().end());
      std::sort(all.begin(), all.end());
      return ClientError("Hyperparameter '" + hyperparameter + "': metric '" + metric +
                         "' is not supported; use one of: " + Join(all, ", "));
    }
    return metric;
  }

  Status ReadMetrics(XgboostConfig& config) {
    std::optional<std::vector<std::string>> eval;
    if (reader_.Has("eval_metric")) {
      NIMBUS_ASSIGN_OR_RETURN(std::string raw, reader_.String("eval_metric", {}));
      eval.emplace();
      for (const auto& part : Split(raw, ',')) {
        std::string metric(Trim(part));
        if (metric.empty()) {
          return ClientError("Hyperparameter 'eval_metric' = '" + raw + "' has an empty metric");
        }
        NIMBUS_ASSIGN_OR_RETURN(metric, CheckMetric(metric, "eval_metric"));
        if (!Contains(*eval, metric)) eval->push_back(metric);
      }
    }
    std::optional<std::vector<std::string>> tuning;
    if (reader_.Has("_tuning_objective_metric")) {
      NIMBUS_ASSIGN_OR_RETURN(std::string raw, reader_.String("_tuning_objective_metric", {}));
      size_t colon = raw.find(':');
      std::string segment = colon == std::string::npos ? "" : raw.substr(0, colon);
      if (segment != "train" && segment != "validation") {
        return ClientError("Hyperparameter '_tuning_objective_metric' = '" + raw +
                           "' must be 'validation:<metric>' or 'train:<metric>'");
      }
      tuning.emplace();
      for (const auto& part : Split(raw.substr(colon + 1), ',')) {
        NIMBUS_ASSIGN_OR_RETURN(std::string metric,
                                CheckMetric(std::string(Trim(part)), "_tuning_objective_metric"));
        tuning->push_back(metric);
      }
    }
    // The container's union: sorted when both are given, else the one list as given.
    std::vector<std::string> metrics;
    if (eval && tuning) {
      std::set<std::string> both(eval->begin(), eval->end());
      both.insert(tuning->begin(), tuning->end());
      metrics.assign(both.begin(), both.end());
    } else if (eval) {
      metrics = *eval;
    } else if (tuning) {
      metrics = *tuning;
    }
    const std::string& objective = config.objective;
    for (const auto& metric : metrics) {
      if (metric == "auc" && !StartsWith(objective, "binary:") && !StartsWith(objective, "rank:")) {
        return ClientError(
            "Metric 'auc' can only be applied for classification and ranking problems (objective "
            "is '" +
            objective + "')");
      }
      if (metric == "aft-nloglik" && objective != "survival:aft") {
        return ClientError("Metric 'aft-nloglik' can only be applied for 'survival:aft' objective");
      }
      if (StartsWith(objective, "multi:") && (metric == "f1" || metric == "f1_binary" ||
                                              metric == "precision" || metric == "recall")) {
        return ClientError("Metric '" + metric + "' is binary but objective '" + objective +
                           "' is multi-class: use " +
                           (metric == "f1_binary" ? std::string("f1") : metric) + "_macro");
      }
      if (Contains(CustomMetrics(), metric)) {
        config.custom_metrics.push_back(metric);
      } else {
        config.eval_metrics.push_back(metric);
      }
    }
    return Status::Ok();
  }

  const Hyperparameters& values_;
  HyperparameterReader reader_;
  std::map<std::string, std::string> given_;  // simple hyperparameters, normalized, by name
};

}  // namespace

Result<XgboostConfig> ParseXgboostHyperparameters(const Hyperparameters& hyperparameters) {
  return ParamParser(hyperparameters).Parse();
}

bool XgboostMetricMaximizes(const std::string& metric) {
  static const std::vector<std::string> maximize = {"auc",
                                                    "aucpr",
                                                    "map",
                                                    "ndcg",
                                                    "accuracy",
                                                    "balanced_accuracy",
                                                    "f1",
                                                    "f1_binary",
                                                    "f1_macro",
                                                    "precision",
                                                    "precision_macro",
                                                    "precision_micro",
                                                    "recall",
                                                    "recall_macro",
                                                    "recall_micro",
                                                    "r2",
                                                    "interval-regression-accuracy"};
  std::string name = metric.substr(0, metric.find('@'));
  return Contains(maximize, name);
}

}  // namespace nimbus::ml
