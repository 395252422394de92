#include <gtest/gtest.h>
#include <stdlib.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "core/strings.h"
#include "ml/dataset_readers.h"
#include "ml/xgboost/xgboost_algorithm.h"
#include "ml/xgboost/xgboost_model.h"
#include "ml/xgboost/xgboost_params.h"
#include "ml/xgboost/xgboost_train.h"

namespace nimbus::ml {
namespace {

namespace fs = std::filesystem;

class RecordingMetrics : public MetricsReporter {
 public:
  void Report(const std::string& name, double value) override {
    series[name].push_back(value);
    order.push_back(name);
  }
  double Last(const std::string& name) const {
    auto it = series.find(name);
    return it == series.end() || it->second.empty() ? NAN : it->second.back();
  }
  std::map<std::string, std::vector<double>> series;
  std::vector<std::string> order;
};

// y = 2x + 1 + N(0, noise) for x uniform in [0, 10].
Dataset Linear(int rows, unsigned seed, double noise = 0.1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> x(0, 10);
  std::normal_distribution<float> eps(0, static_cast<float>(noise));
  Dataset d;
  d.rows = rows;
  d.cols = 1;
  for (int i = 0; i < rows; ++i) {
    float v = x(rng);
    d.values.push_back(v);
    d.labels.push_back(2 * v + 1 + eps(rng));
  }
  return d;
}

// Gaussian blobs in 2-D around the given centres, label = blob index.
Dataset Blobs(const std::vector<std::pair<float, float>>& centres, int per_blob, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> eps(0, 1.0f);
  Dataset d;
  d.cols = 2;
  for (int i = 0; i < per_blob; ++i) {
    for (size_t c = 0; c < centres.size(); ++c) {
      d.values.push_back(centres[c].first + eps(rng));
      d.values.push_back(centres[c].second + eps(rng));
      d.labels.push_back(static_cast<float>(c));
      ++d.rows;
    }
  }
  return d;
}

class XgboostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-xgb-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  TrainingInput Input(Hyperparameters hp) {
    TrainingInput input;
    input.hyperparameters = std::move(hp);
    input.model_dir = root_ + "/model";
    input.output_data_dir = root_ + "/output";
    input.num_threads = 1;  // OpenMP barriers crawl on an oversubscribed test machine
    input.metrics = &metrics_;
    input.log = [this](const std::string& line) { log_.push_back(line); };
    return input;
  }

  Status Train(const Hyperparameters& hp, const Dataset& train, const Dataset* validation,
               const std::string& checkpoint_dir = "") {
    auto config = ParseXgboostHyperparameters(hp);
    if (!config.ok()) return config.status();
    TrainingInput input = Input(hp);
    input.checkpoint_dir = checkpoint_dir;
    return TrainXgboost(*config, train, validation, input);
  }

  std::unique_ptr<Model> Load() {
    auto model = LoadXgboostModel(root_ + "/model");
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    return model.ok() ? std::move(model).value() : nullptr;
  }

  std::vector<std::string> RoundLines() const {
    std::vector<std::string> rounds;
    for (const auto& line : log_) {
      if (!line.empty() && line[0] == '[') rounds.push_back(line);
    }
    return rounds;
  }

  std::string WriteFile(const std::string& relative, const std::string& content) {
    fs::path path = fs::path(root_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  Channel MakeChannel(const std::string& name, const std::string& content_type) {
    Channel channel;
    channel.name = name;
    channel.dir = root_ + "/data/" + name;
    channel.content_type = content_type;
    return channel;
  }

  std::string root_;
  RecordingMetrics metrics_;
  std::vector<std::string> log_;
};

int BoostedRounds(const std::string& path) {
  BoosterHandle booster = nullptr;
  EXPECT_EQ(XGBoosterCreate(nullptr, 0, &booster), 0);
  EXPECT_EQ(XGBoosterLoadModel(booster, path.c_str()), 0) << XGBGetLastError();
  int rounds = -1;
  EXPECT_EQ(XGBoosterBoostedRounds(booster, &rounds), 0);
  XGBoosterFree(booster);
  return rounds;
}

void ExpectClientError(const Status& status, const std::vector<std::string>& fragments) {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), "ClientError") << status.ToString();
  for (const auto& fragment : fragments) {
    EXPECT_NE(status.message().find(fragment), std::string::npos)
        << "'" << fragment << "' not in: " << status.message();
  }
}

// --- Hyperparameters --------------------------------------------------------------------------

TEST(XgboostParamsTest, NumRoundIsRequired) {
  ExpectClientError(ParseXgboostHyperparameters({{"eta", "0.1"}}).status(), {"'num_round'"});
}

TEST(XgboostParamsTest, RejectsOutOfRangeValues) {
  ExpectClientError(ParseXgboostHyperparameters({{"num_round", "5"}, {"eta", "2"}}).status(),
                    {"'eta'", "'2'", "[0, 1]"});
  ExpectClientError(ParseXgboostHyperparameters({{"num_round", "0"}}).status(), {"'num_round'"});
  ExpectClientError(ParseXgboostHyperparameters({{"num_round", "5"}, {"subsample", "0"}}).status(),
                    {"'subsample'", "(0, 1]"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"tweedie_variance_power", "2"}}).status(),
      {"'tweedie_variance_power'", "(1, 2)"});
  ExpectClientError(ParseXgboostHyperparameters({{"num_round", "5"}, {"max_depth", "x"}}).status(),
                    {"'max_depth'", "not an integer"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"csv_weights", "2"}}).status(),
      {"'csv_weights'"});
}

TEST(XgboostParamsTest, RejectsUnknownObjectiveAndHyperparameter) {
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"objective", "reg:foo"}}).status(),
      {"'objective'", "'reg:foo'", "binary:logistic"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"learning_speed", "1"}}).status(),
      {"'learning_speed'"});
  ExpectClientError(ParseXgboostHyperparameters({{"num_round", "5"}, {"booster", "gbm"}}).status(),
                    {"'booster'", "gblinear"});
}

TEST(XgboostParamsTest, NumClassGoesWithMultiClassObjectives) {
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"objective", "multi:softprob"}}).status(),
      {"'num_class'", "multi:softprob"});
  ExpectClientError(ParseXgboostHyperparameters(
                        {{"num_round", "5"}, {"objective", "binary:logistic"}, {"num_class", "3"}})
                        .status(),
                    {"'num_class'"});
  ExpectClientError(ParseXgboostHyperparameters(
                        {{"num_round", "5"}, {"objective", "multi:softmax"}, {"num_class", "1"}})
                        .status(),
                    {"'num_class'"});
  auto ok = ParseXgboostHyperparameters(
      {{"num_round", "5"}, {"objective", "multi:softmax"}, {"num_class", "4"}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->num_class, 4);
}

TEST(XgboostParamsTest, ForwardsNormalizedBoosterParameters) {
  auto config = ParseXgboostHyperparameters({{"num_round", "10.0"},
                                             {"learning_rate", "0.05"},
                                             {"max_depth", "4"},
                                             {"reg_lambda", "2"},
                                             {"early_stopping_rounds", "3"},
                                             {"csv_weights", "1"},
                                             {"tree_method", "hist"},
                                             {"monotone_constraints", "[1, -1]"},
                                             {"interaction_constraints", "[[0, 1], [2]]"},
                                             {"sagemaker_program", "ignored"}});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->num_round, 10);
  EXPECT_EQ(config->early_stopping_rounds, 3);
  EXPECT_TRUE(config->csv_weights);
  std::map<std::string, std::string> params(config->params.begin(), config->params.end());
  EXPECT_EQ(params["eta"], "0.05");
  EXPECT_EQ(params["lambda"], "2");
  EXPECT_EQ(params["max_depth"], "4");
  EXPECT_EQ(params["seed"], "0");
  EXPECT_EQ(params["monotone_constraints"], "(1,-1)");
  EXPECT_EQ(params["interaction_constraints"], "[[0,1],[2]]");
  EXPECT_EQ(params.count("early_stopping_rounds"), 0u);
  EXPECT_EQ(params.count("csv_weights"), 0u);
  EXPECT_EQ(params.count("learning_rate"), 0u);
}

TEST(XgboostParamsTest, ChecksCrossParameterRules) {
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"eta", "0.1"}, {"learning_rate", "0.2"}})
          .status(),
      {"'eta'", "'learning_rate'"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"tree_method", "gpu_hist"}}).status(),
      {"'tree_method'", "GPU"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"monotone_constraints", "(1,-1)"}})
          .status(),
      {"'monotone_constraints'", "'exact' or 'hist'"});
  ExpectClientError(
      ParseXgboostHyperparameters(
          {{"num_round", "5"}, {"tree_method", "hist"}, {"monotone_constraints", "(1,2)"}})
          .status(),
      {"'monotone_constraints'"});
  ExpectClientError(ParseXgboostHyperparameters(
                        {{"num_round", "5"}, {"booster", "gblinear"}, {"updater", "grow_colmaker"}})
                        .status(),
                    {"'updater'", "shotgun"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"updater", "grow_colmaker,grow_histmaker"}})
          .status(),
      {"'updater'", "only one"});
  ExpectClientError(ParseXgboostHyperparameters({{"num_round", "5"}, {"_kfold", "5"}}).status(),
                    {"'_kfold'"});
}

TEST(XgboostParamsTest, SplitsEvalMetricsAsTheContainerDoes) {
  auto config = ParseXgboostHyperparameters(
      {{"num_round", "5"}, {"eval_metric", "rmse, mae,r2,mse,error@0.7"}});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->eval_metrics, (std::vector<std::string>{"rmse", "mae", "error@0.7"}));
  EXPECT_EQ(config->custom_metrics, (std::vector<std::string>{"r2", "mse"}));

  // With a tuning objective, the union is sorted.
  auto tuned = ParseXgboostHyperparameters({{"num_round", "5"},
                                            {"objective", "binary:logistic"},
                                            {"eval_metric", "logloss"},
                                            {"_tuning_objective_metric", "validation:auc"}});
  ASSERT_TRUE(tuned.ok()) << tuned.status().ToString();
  EXPECT_EQ(tuned->eval_metrics, (std::vector<std::string>{"auc", "logloss"}));

  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"eval_metric", "rmse,bogus"}}).status(),
      {"'eval_metric'", "'bogus'"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"eval_metric", "auc"}}).status(),
      {"'auc'", "classification"});
  ExpectClientError(
      ParseXgboostHyperparameters({{"num_round", "5"}, {"eval_metric", "rmse@3"}}).status(),
      {"'rmse@3'"});
  ExpectClientError(ParseXgboostHyperparameters({{"num_round", "5"},
                                                 {"objective", "multi:softprob"},
                                                 {"num_class", "3"},
                                                 {"eval_metric", "f1"}})
                        .status(),
                    {"'f1'", "f1_macro"});
  EXPECT_TRUE(XgboostMetricMaximizes("auc"));
  EXPECT_TRUE(XgboostMetricMaximizes("ndcg@5"));
  EXPECT_TRUE(XgboostMetricMaximizes("f1"));
  EXPECT_FALSE(XgboostMetricMaximizes("rmse"));
  EXPECT_FALSE(XgboostMetricMaximizes("error@0.3"));
}

TEST(XgboostParamsTest, CustomMetricsMatchTheirDefinitions) {
  std::vector<float> labels = {1, 1, 0, 0, 1};
  std::vector<float> probs = {0.9f, 0.2f, 0.6f, 0.1f, 0.8f};  // predicted 1, 0, 1, 0, 1
  auto metric = [&](const std::string& name) {
    auto v = ComputeXgboostCustomMetric(name, probs, labels, "binary:logistic", 0);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : NAN;
  };
  EXPECT_DOUBLE_EQ(metric("accuracy"), 0.6);
  EXPECT_DOUBLE_EQ(metric("precision"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(metric("recall"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(metric("f1"), 2.0 / 3);
  // Class 0: precision 1/2, recall 1/2.
  EXPECT_DOUBLE_EQ(metric("precision_macro"), (2.0 / 3 + 0.5) / 2);
  EXPECT_DOUBLE_EQ(metric("balanced_accuracy"), (2.0 / 3 + 0.5) / 2);

  std::vector<float> softprob = {0.8f, 0.1f, 0.1f, 0.1f, 0.7f, 0.2f, 0.3f, 0.3f, 0.4f};
  auto acc = ComputeXgboostCustomMetric("accuracy", softprob, {0, 1, 1}, "multi:softprob", 3);
  ASSERT_TRUE(acc.ok());
  EXPECT_DOUBLE_EQ(*acc, 2.0 / 3);

  auto mse = ComputeXgboostCustomMetric("mse", {1, 2, 4}, {1, 2, 3}, "reg:squarederror", 0);
  ASSERT_TRUE(mse.ok());
  EXPECT_DOUBLE_EQ(*mse, 1.0 / 3);
  auto r2 = ComputeXgboostCustomMetric("r2", {1, 2, 4}, {1, 2, 3}, "reg:squarederror", 0);
  ASSERT_TRUE(r2.ok());
  EXPECT_DOUBLE_EQ(*r2, 1.0 - 1.0 / 2.0);
}

// --- Training ---------------------------------------------------------------------------------

TEST_F(XgboostTest, RegressionLearnsALine) {
  Dataset train = Linear(400, 1), validation = Linear(100, 2);
  ASSERT_TRUE(
      Train({{"num_round", "40"}, {"max_depth", "4"}, {"eta", "0.3"}}, train, &validation).ok());
  const auto& rmse = metrics_.series["validation:rmse"];
  ASSERT_EQ(rmse.size(), 40u);
  EXPECT_EQ(metrics_.series["train:rmse"].size(), 40u);
  EXPECT_GT(rmse.front(), 5.0);  // the base score 0.5 is far from 2x + 1
  EXPECT_LT(rmse.back(), 0.35);
  auto rounds = RoundLines();
  ASSERT_EQ(rounds.size(), 40u);
  EXPECT_TRUE(std::regex_match(
      rounds[0],
      std::regex(R"(\[0\]\ttrain-rmse:[0-9]+\.[0-9]{5}\tvalidation-rmse:[0-9]+\.[0-9]{5})")))
      << rounds[0];
  EXPECT_TRUE(StartsWith(rounds[39], "[39]\t"));

  // The artifact is libxgboost's binary model, and predicts what training measured.
  std::ifstream in(root_ + "/model/xgboost-model", std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  EXPECT_EQ(std::string(magic, 4), "binf");
  auto model = Load();
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->feature_dim(), 1);
  Dataset features = validation;
  features.labels.clear();
  auto predictions = model->Predict(features);
  ASSERT_TRUE(predictions.ok()) << predictions.status().ToString();
  ASSERT_EQ(predictions->size(), 100u);
  double se = 0;
  for (size_t i = 0; i < 100; ++i) {
    const Value& p = (*predictions)[i];
    ASSERT_TRUE(p.Find("score") != nullptr);
    double d = p.Find("score")->AsDouble() - validation.labels[i];
    se += d * d;
  }
  EXPECT_NEAR(std::sqrt(se / 100), rmse.back(), 1e-4);
}

TEST_F(XgboostTest, BinaryLogisticSeparatesBlobs) {
  Dataset train = Blobs({{-2, -2}, {2, 2}}, 150, 3), validation = Blobs({{-2, -2}, {2, 2}}, 50, 4);
  ASSERT_TRUE(Train({{"num_round", "20"},
                     {"objective", "binary:logistic"},
                     {"eval_metric", "auc,error,accuracy"}},
                    train, &validation)
                  .ok());
  EXPECT_GT(metrics_.Last("validation:auc"), 0.97);
  EXPECT_LT(metrics_.Last("validation:error"), 0.08);
  EXPECT_GT(metrics_.Last("validation:accuracy"), 0.92);
  EXPECT_NEAR(metrics_.Last("validation:accuracy"), 1 - metrics_.Last("validation:error"), 1e-9);
  auto model = Load();
  ASSERT_NE(model, nullptr);
  auto predictions = model->Predict(validation);
  ASSERT_TRUE(predictions.ok());
  int correct = 0;
  for (size_t i = 0; i < predictions->size(); ++i) {
    double p = (*predictions)[i].Find("score")->AsDouble();
    ASSERT_GE(p, 0.0);
    ASSERT_LE(p, 1.0);
    correct += (p > 0.5) == (validation.labels[i] == 1);
  }
  EXPECT_GT(correct, 92);
}

TEST_F(XgboostTest, MultiSoftprobRecoversThreeBlobs) {
  const std::vector<std::pair<float, float>> centres = {{0, 5}, {5, -3}, {-5, -3}};
  Dataset train = Blobs(centres, 100, 5), validation = Blobs(centres, 40, 6);
  ASSERT_TRUE(Train({{"num_round", "15"}, {"objective", "multi:softprob"}, {"num_class", "3"}},
                    train, &validation)
                  .ok());
  EXPECT_LT(metrics_.Last("validation:mlogloss"), 0.15);
  auto model = Load();
  ASSERT_NE(model, nullptr);
  auto predictions = model->Predict(validation);
  ASSERT_TRUE(predictions.ok());
  int correct = 0;
  for (size_t i = 0; i < predictions->size(); ++i) {
    const Value* scores = (*predictions)[i].Find("score");
    ASSERT_TRUE(scores != nullptr && scores->is_list());
    ASSERT_EQ(scores->size(), 3u);
    double sum = 0;
    size_t best = 0;
    for (size_t k = 0; k < 3; ++k) {
      sum += scores->list()[k].AsDouble();
      if (scores->list()[k].AsDouble() > scores->list()[best].AsDouble()) best = k;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    correct += static_cast<float>(best) == validation.labels[i];
  }
  EXPECT_GE(correct, 114);  // of 120
}

TEST_F(XgboostTest, MultiSoftmaxPredictsLabels) {
  const std::vector<std::pair<float, float>> centres = {{0, 5}, {5, -3}, {-5, -3}};
  Dataset train = Blobs(centres, 60, 7);
  ASSERT_TRUE(Train({{"num_round", "10"},
                     {"objective", "multi:softmax"},
                     {"num_class", "3"},
                     {"eval_metric", "merror,f1_macro"}},
                    train, nullptr)
                  .ok());
  EXPECT_LT(metrics_.Last("train:merror"), 0.05);
  EXPECT_GT(metrics_.Last("train:f1_macro"), 0.95);
  EXPECT_TRUE(metrics_.series.count("validation:merror") == 0);
  auto model = Load();
  ASSERT_NE(model, nullptr);
  auto predictions = model->Predict(train.Slice(0, 3));
  ASSERT_TRUE(predictions.ok());
  for (int i = 0; i < 3; ++i) {
    const Value* label = (*predictions)[i].Find("predicted_label");
    ASSERT_TRUE(label != nullptr && label->is_int());
    EXPECT_EQ(label->AsInt(), i);  // Blobs interleaves the classes
  }
}

TEST_F(XgboostTest, EarlyStoppingKeepsTheBestRound) {
  // Labels are noise: validation error grows once the trees fit the training noise.
  Dataset train = Linear(200, 8), validation = Linear(200, 9);
  std::mt19937 rng(10);
  std::normal_distribution<float> noise(0, 1);
  for (auto& y : train.labels) y = noise(rng);
  for (auto& y : validation.labels) y = noise(rng);
  ASSERT_TRUE(Train({{"num_round", "200"},
                     {"max_depth", "6"},
                     {"eta", "0.5"},
                     {"early_stopping_rounds", "5"},
                     {"eval_metric", "mae,rmse"}},
                    train, &validation)
                  .ok());
  const auto& watched = metrics_.series["validation:rmse"];
  ASSERT_LT(watched.size(), 200u);
  ASSERT_GT(watched.size(), 5u);
  size_t best = std::min_element(watched.begin(), watched.end()) - watched.begin();
  EXPECT_EQ(watched.size(), best + 6);  // stopped after 5 rounds without improvement
  bool logged = false;
  for (const auto& line : log_) logged |= line == "Stopping. Best iteration:";
  EXPECT_TRUE(logged);
  EXPECT_EQ(BoostedRounds(root_ + "/model/xgboost-model"), static_cast<int>(best) + 1);
}

TEST_F(XgboostTest, EvalMetricListIsReportedInOrder) {
  Dataset train = Linear(200, 11), validation = Linear(50, 12);
  ASSERT_TRUE(
      Train({{"num_round", "3"}, {"eval_metric", "rmse,mae,mse"}}, train, &validation).ok());
  auto rounds = RoundLines();
  ASSERT_EQ(rounds.size(), 3u);
  EXPECT_TRUE(std::regex_match(
      rounds[2], std::regex(R"(\[2\]\ttrain-rmse:\S+\ttrain-mae:\S+\ttrain-mse:\S+)"
                            R"(\tvalidation-rmse:\S+\tvalidation-mae:\S+\tvalidation-mse:\S+)")))
      << rounds[2];
  EXPECT_EQ(metrics_.order.size(), 18u);
  EXPECT_EQ(metrics_.order[0], "train:rmse");
  EXPECT_EQ(metrics_.order[5], "validation:mse");
  double rmse = metrics_.Last("validation:rmse");
  EXPECT_NEAR(metrics_.Last("validation:mse"), rmse * rmse, 1e-3 * rmse * rmse);
}

TEST_F(XgboostTest, BadLabelsAreClientErrors) {
  Dataset train = Linear(50, 13);  // labels up to 21: not probabilities
  ExpectClientError(Train({{"num_round", "2"}, {"objective", "binary:logistic"}}, train, nullptr),
                    {"label must be in [0,1]"});
  Dataset blobs = Blobs({{0, 0}, {1, 1}, {2, 2}}, 10, 14);
  ExpectClientError(Train({{"num_round", "2"}, {"objective", "multi:softprob"}, {"num_class", "2"}},
                          blobs, nullptr),
                    {"num_class"});
}

TEST_F(XgboostTest, SparseInputTrains) {
  // 50 sparse features, 3 set per row; the label is whether feature 7 is set.
  std::mt19937 rng(15);
  std::uniform_int_distribution<int> feature(0, 49);
  Dataset d;
  d.sparse = true;
  d.cols = 50;
  d.indptr = {0};
  for (int r = 0; r < 400; ++r) {
    std::set<int> set = {r % 2 == 0 ? 7 : 8};
    while (set.size() < 3) set.insert(feature(rng));
    for (int f : set) {
      d.indices.push_back(f);
      d.values.push_back(1.0f);
    }
    d.indptr.push_back(static_cast<int64_t>(d.indices.size()));
    d.labels.push_back(set.count(7) ? 1.0f : 0.0f);
    ++d.rows;
  }
  Dataset train = d.Slice(0, 300), validation = d.Slice(300, 400);
  ASSERT_TRUE(
      Train({{"num_round", "10"}, {"objective", "binary:logistic"}, {"eval_metric", "error"}},
            train, &validation)
          .ok());
  EXPECT_EQ(metrics_.Last("validation:error"), 0.0);
  auto model = Load();
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->feature_dim(), 50);
  auto predictions = model->Predict(validation.Slice(0, 2));
  ASSERT_TRUE(predictions.ok());
  EXPECT_EQ((*predictions)[0].Find("score")->AsDouble() > 0.5, validation.labels[0] == 1);
  // More features than the model knows is the caller's error.
  Dataset wide = validation.Slice(0, 1).ToDense();
  wide.cols = 60;
  wide.values.resize(60, 0.0f);
  ExpectClientError(model->Predict(wide).status(), {"60"});
}

TEST_F(XgboostTest, CheckpointsResumeTraining) {
  Dataset train = Linear(200, 16);
  const std::string checkpoints = root_ + "/checkpoints";
  ASSERT_TRUE(Train({{"num_round", "4"}}, train, nullptr, checkpoints).ok());
  EXPECT_TRUE(fs::exists(checkpoints + "/xgboost-checkpoint.3"));
  log_.clear();
  ASSERT_TRUE(Train({{"num_round", "7"}}, train, nullptr, checkpoints).ok());
  auto rounds = RoundLines();
  ASSERT_EQ(rounds.size(), 3u);
  EXPECT_TRUE(StartsWith(rounds[0], "[4]\t"));
  EXPECT_EQ(BoostedRounds(root_ + "/model/xgboost-model"), 7);
  int kept = 0;
  for (const auto& entry : fs::directory_iterator(checkpoints)) {
    kept += StartsWith(entry.path().filename().string(), "xgboost-checkpoint.");
  }
  EXPECT_EQ(kept, 5);
}

TEST_F(XgboostTest, ModelLoadErrorsAreClientErrors) {
  ExpectClientError(LoadXgboostModel(root_ + "/nothing").status(), {"xgboost-model"});
  WriteFile("pickled/xgboost-model", std::string("\x80\x04\x95", 3));
  ExpectClientError(LoadXgboostModel(root_ + "/pickled").status(), {"pickle"});
  WriteFile("garbage/xgboost-model", "not a model at all");
  ExpectClientError(LoadXgboostModel(root_ + "/garbage").status(), {"Cannot load"});
}

// --- The algorithm on channel files -----------------------------------------------------------

TEST_F(XgboostTest, CsvWeightsComeFromTheSecondColumn) {
  // At x = 0, label 0 weighs 100 and label 10 weighs 1: the weighted mean is about 0.1.
  std::string csv;
  for (int i = 0; i < 40; ++i) csv += i % 2 ? "0,100,0\n" : "10,1,0\n";
  for (int i = 0; i < 40; ++i) csv += "5,1,1\n";
  WriteFile("data/train/train.csv", csv);
  TrainingInput input = Input({{"num_round", "30"}, {"csv_weights", "1"}, {"eta", "0.5"}});
  input.channels["train"] = MakeChannel("train", "text/csv");
  auto algorithm = MakeXgboostAlgorithm();
  ASSERT_TRUE(algorithm->Train(input).ok());
  auto model = Load();
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->feature_dim(), 1);  // the weight column is not a feature
  Dataset probe;
  probe.rows = 2;
  probe.cols = 1;
  probe.values = {0, 1};
  auto predictions = model->Predict(probe);
  ASSERT_TRUE(predictions.ok());
  EXPECT_LT((*predictions)[0].Find("score")->AsDouble(), 0.5);
  EXPECT_NEAR((*predictions)[1].Find("score")->AsDouble(), 5.0, 0.2);
}

TEST_F(XgboostTest, LibsvmIsTheDefaultContentType) {
  std::string train, validation;
  for (int i = 0; i < 200; ++i) {
    std::string row = std::string(i % 2 ? "1" : "0") + " " + (i % 2 ? "3:1.5" : "4:2") +
                      " 9:" + std::to_string(i % 7) + "\n";
    (i < 150 ? train : validation) += row;
  }
  WriteFile("data/train/part-0.libsvm", train);
  WriteFile("data/validation/part-0.libsvm", validation);
  TrainingInput input = Input({{"num_round", "5"}, {"objective", "binary:logistic"}});
  input.channels["train"] = MakeChannel("train", "");
  input.channels["validation"] = MakeChannel("validation", "");
  ASSERT_TRUE(MakeXgboostAlgorithm()->Train(input).ok());
  EXPECT_LT(metrics_.Last("validation:logloss"), 0.2);  // xgboost 1.7's default binary metric
}

TEST_F(XgboostTest, RecordIOProtobufTrains) {
  Dataset train = Linear(200, 17);
  WriteFile("data/train/train.pbr", WriteRecordIOProtobuf(train));
  TrainingInput input = Input({{"num_round", "20"}});
  input.channels["train"] = MakeChannel("train", "application/x-recordio-protobuf");
  ASSERT_TRUE(MakeXgboostAlgorithm()->Train(input).ok());
  EXPECT_LT(metrics_.Last("train:rmse"), 0.5);
}

TEST_F(XgboostTest, UnsupportedChannelsAndContentTypesAreClientErrors) {
  WriteFile("data/train/a.csv", "1,2\n");
  WriteFile("data/test/a.csv", "1,2\n");
  auto algorithm = MakeXgboostAlgorithm();
  TrainingInput input = Input({{"num_round", "2"}});
  input.channels["train"] = MakeChannel("train", "application/x-parquet");
  ExpectClientError(algorithm->Train(input), {"application/x-parquet"});
  input.channels["train"] = MakeChannel("train", "application/jsonlines");
  ExpectClientError(algorithm->Train(input), {"application/jsonlines"});
  input.channels["train"] = MakeChannel("train", "text/csv");
  input.channels["test"] = MakeChannel("test", "text/csv");
  ExpectClientError(algorithm->Train(input), {"'test'"});
  input.channels.erase("train");
  input.channels.erase("test");
  input.channels["validation"] = MakeChannel("test", "text/csv");
  ExpectClientError(algorithm->Train(input), {"'train'"});
  // Hyperparameters are checked before any data is read.
  input.hyperparameters = {{"num_round", "2"}, {"eta", "2"}};
  ExpectClientError(algorithm->Train(input), {"'eta'"});
}

TEST_F(XgboostTest, RegistersForSageMakerImages) {
  RegisterXgboostAlgorithm();
  const AlgorithmInfo* info =
      FindAlgorithmForImage("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "xgboost");
  EXPECT_EQ(FindAlgorithmForImage("811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1"), info);
  EXPECT_EQ(info->training_content_types.front(), "text/libsvm");
  ASSERT_TRUE(info->make);
  EXPECT_NE(info->make(), nullptr);
  ASSERT_TRUE(info->load);
  EXPECT_FALSE(info->load(root_ + "/missing").ok());
}

// Python's xgboost, when installed, loads the artifact and predicts the same.
TEST_F(XgboostTest, PythonXgboostLoadsTheArtifact) {
  if (std::system("python3 -c 'import xgboost' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 has no xgboost module";
  }
  Dataset train = Linear(200, 18);
  ASSERT_TRUE(Train({{"num_round", "10"}}, train, nullptr).ok());
  auto model = Load();
  ASSERT_NE(model, nullptr);
  Dataset probe;
  probe.rows = 1;
  probe.cols = 1;
  probe.values = {3.0f};
  auto predictions = model->Predict(probe);
  ASSERT_TRUE(predictions.ok());
  const std::string script =
      WriteFile("check.py",
                "import sys, xgboost as xgb, numpy as np\n"
                "b = xgb.Booster(model_file=sys.argv[1])\n"
                "print('%.6f' % b.predict(xgb.DMatrix(np.array([[3.0]], dtype=np.float32)))[0])\n");
  const std::string out_path = root_ + "/python.out";
  ASSERT_EQ(std::system(
                ("python3 " + script + " " + root_ + "/model/xgboost-model > " + out_path).c_str()),
            0);
  std::ifstream out(out_path);
  double python_score = NAN;
  out >> python_score;
  EXPECT_NEAR(python_score, (*predictions)[0].Find("score")->AsDouble(), 1e-4);
}

}  // namespace
}  // namespace nimbus::ml
