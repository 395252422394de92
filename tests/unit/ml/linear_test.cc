#include "ml/linear/linear_learner.h"

#include "ml/dataset_readers.h"
#include "ml/linear/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <unistd.h>

namespace nimbus::ml {
namespace {

namespace fs = std::filesystem;

class RecordingMetrics : public MetricsReporter {
 public:
  void Report(const std::string& name, double value) override { values[name].push_back(value); }
  double Last(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? NAN : it->second.back();
  }
  std::map<std::string, std::vector<double>> values;
};

// Rows of `dim` standard-normal features, row-major.
Dataset Gaussian(int64_t rows, int64_t dim, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 1);
  Dataset d;
  d.rows = rows;
  d.cols = dim;
  for (int64_t i = 0; i < rows * dim; ++i) d.values.push_back(static_cast<float>(normal(rng)));
  return d;
}

// Binary labels from a fixed hyperplane plus logistic-ish noise of `noise` sd.
Dataset BinaryData(int64_t rows, uint64_t seed, double noise = 0.3) {
  std::mt19937_64 rng(seed);
  Dataset d = Gaussian(rows, 6, rng);
  std::normal_distribution<double> normal(0, noise);
  const double w[6] = {2.0, -1.5, 1.0, 0.0, 0.5, 0.0};
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0.3;
    for (int c = 0; c < 6; ++c) s += w[c] * d.values[static_cast<size_t>(r * 6 + c)];
    d.labels.push_back(s + normal(rng) > 0 ? 1.0f : 0.0f);
  }
  return d;
}

// y = 3 x0 - 2 x1 + 5 + noise, with x0 on a large offset scale to exercise normalization.
Dataset RegressionData(int64_t rows, uint64_t seed, double noise = 0.05, int64_t dim = 4) {
  std::mt19937_64 rng(seed);
  Dataset d = Gaussian(rows, dim, rng);
  std::normal_distribution<double> normal(0, noise);
  for (int64_t r = 0; r < rows; ++r) {
    float& x0 = d.values[static_cast<size_t>(r * dim)];
    x0 = x0 * 5 + 10;
    double x1 = d.values[static_cast<size_t>(r * dim + 1)];
    d.labels.push_back(static_cast<float>(3 * x0 - 2 * x1 + 5 + normal(rng)));
  }
  return d;
}

// Three Gaussian blobs in 4 dimensions, labels 0..2.
Dataset MulticlassData(int64_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 0.7);
  const double centre[3][4] = {{2, 0, 0, 1}, {0, 2, 0, -1}, {0, 0, 2, 0}};
  Dataset d;
  d.rows = rows;
  d.cols = 4;
  for (int64_t r = 0; r < rows; ++r) {
    int c = static_cast<int>(r % 3);
    for (int j = 0; j < 4; ++j) d.values.push_back(static_cast<float>(centre[c][j] + normal(rng)));
    d.labels.push_back(static_cast<float>(c));
  }
  return d;
}

Result<LinearLearnerFit> Fit(const Hyperparameters& hp, const Dataset& train,
                             const Dataset* validation = nullptr, const Dataset* test = nullptr,
                             RecordingMetrics* metrics = nullptr,
                             std::vector<std::string>* log = nullptr) {
  NIMBUS_ASSIGN_OR_RETURN(LinearLearnerParams params, ParseLinearLearnerHyperparameters(hp));
  LinearLearnerEnv env;
  env.num_threads = 2;
  env.metrics = metrics;
  if (log) env.log = [log](const std::string& line) { log->push_back(line); };
  return TrainLinearLearner(params, train, validation, test, env);
}

double Accuracy(LinearLearnerModel& model, const Dataset& data) {
  auto predictions = model.Predict(data);
  EXPECT_TRUE(predictions.ok());
  double correct = 0;
  for (size_t i = 0; i < predictions->size(); ++i) {
    correct += (*predictions)[i].GetInt("predicted_label") == static_cast<int64_t>(data.labels[i]);
  }
  return correct / static_cast<double>(data.rows);
}

TEST(LinearLearnerTest, BinaryClassifierLearnsAndReportsDocumentedMetrics) {
  Dataset train = BinaryData(2000, 1), validation = BinaryData(500, 2), test = BinaryData(500, 3);
  RecordingMetrics metrics;
  std::vector<std::string> log;
  auto fit = Fit({{"predictor_type", "binary_classifier"}, {"mini_batch_size", "100"}}, train,
                 &validation, &test, &metrics, &log);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_GE(Accuracy(*fit->model, test), 0.9);
  EXPECT_EQ(fit->model->state().score_function, "sigmoid");
  EXPECT_EQ(fit->candidates.size(), 8u);  // num_models=auto

  for (const char* name :
       {"validation:binary_classification_accuracy", "validation:precision", "validation:recall",
        "validation:binary_f_beta", "validation:roc_auc_score", "validation:objective_loss",
        "test:binary_classification_accuracy", "test:binary_f_beta", "test:roc_auc_score",
        "test:precision", "test:recall", "test:objective_loss", "train:objective_loss"}) {
    EXPECT_TRUE(metrics.values.count(name)) << name;
  }
  EXPECT_GE(metrics.Last("test:binary_classification_accuracy"), 0.9);
  EXPECT_GE(metrics.Last("test:roc_auc_score"), 0.97);
  EXPECT_LT(metrics.Last("test:objective_loss"), 0.3);
  const auto& train_loss = metrics.values["train:objective_loss"];
  EXPECT_LT(train_loss.back(), train_loss.front());

  bool epoch_line = false, validation_line = false, test_line = false;
  for (const auto& line : log) {
    epoch_line |=
        line.rfind("#quality_metric: host=algo-1, epoch=0, train objective_loss <loss>=", 0) == 0;
    validation_line |=
        line.rfind(
            "#quality_metric: host=algo-1, validation binary_classification_accuracy "
            "<score>=",
            0) == 0;
    test_line |= line.rfind("#test_score (algo-1) : ('binary_f_beta', ", 0) == 0;
  }
  EXPECT_TRUE(epoch_line && validation_line && test_line);

  auto predictions = fit->model->Predict(test.Slice(0, 3));
  ASSERT_TRUE(predictions.ok());
  ASSERT_EQ(predictions->size(), 3u);
  const Value& p = (*predictions)[0];
  ASSERT_TRUE(p.Find("score") && p.Find("score")->is_number());
  double score = p.Find("score")->AsDouble();
  EXPECT_GE(score, 0.0);
  EXPECT_LE(score, 1.0);
  EXPECT_EQ(p.GetInt("predicted_label"), score > fit->model->state().threshold ? 1 : 0);
}

TEST(LinearLearnerTest, MulticlassClassifierLearnsSoftmax) {
  Dataset train = MulticlassData(1500, 4), test = MulticlassData(600, 5);
  RecordingMetrics metrics;
  auto fit = Fit({{"predictor_type", "multiclass_classifier"},
                  {"num_classes", "3"},
                  {"mini_batch_size", "100"},
                  {"epochs", "10"}},
                 train, nullptr, &test, &metrics);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_GE(Accuracy(*fit->model, test), 0.9);
  EXPECT_GE(metrics.Last("test:multiclass_accuracy"), 0.9);
  EXPECT_DOUBLE_EQ(metrics.Last("test:multiclass_top_k_accuracy"), 1.0);  // k=3 of 3 classes
  for (const char* name : {"test:macro_precision", "test:macro_recall", "test:macro_f_beta",
                           "test:dcg", "test:objective_loss"}) {
    EXPECT_TRUE(metrics.values.count(name)) << name;
  }
  auto predictions = fit->model->Predict(test.Slice(0, 1));
  ASSERT_TRUE(predictions.ok());
  const Value* score = (*predictions)[0].Find("score");
  ASSERT_TRUE(score && score->is_list());
  ASSERT_EQ(score->size(), 3u);
  double sum = 0;
  size_t argmax = 0;
  for (size_t c = 0; c < 3; ++c) {
    sum += score->list()[c].AsDouble();
    if (score->list()[c].AsDouble() > score->list()[argmax].AsDouble()) argmax = c;
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_EQ((*predictions)[0].GetInt("predicted_label"), static_cast<int64_t>(argmax));
}

TEST(LinearLearnerTest, RegressorRecoversCoefficientsInRawFeatureSpace) {
  Dataset train = RegressionData(3000, 6), test = RegressionData(500, 7);
  RecordingMetrics metrics;
  auto fit = Fit({{"predictor_type", "regressor"}, {"mini_batch_size", "100"}, {"epochs", "20"}},
                 train, nullptr, &test, &metrics);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  // Normalization of features and labels is folded back into the saved weights.
  const auto& st = fit->model->state();
  EXPECT_NEAR(st.weights[0], 3.0, 0.05);
  EXPECT_NEAR(st.weights[1], -2.0, 0.05);
  EXPECT_NEAR(st.bias[0], 5.0, 0.3);
  EXPECT_LT(metrics.Last("test:rmse"), 0.2);
  EXPECT_NEAR(metrics.Last("test:mse"), std::pow(metrics.Last("test:rmse"), 2), 1e-9);
  EXPECT_TRUE(metrics.values.count("test:absolute_loss"));
  auto predictions = fit->model->Predict(test.Slice(0, 1));
  ASSERT_TRUE(predictions.ok());
  EXPECT_FALSE((*predictions)[0].Has("predicted_label"));
  EXPECT_NEAR((*predictions)[0].Find("score")->AsDouble(), test.labels[0], 0.5);
}

TEST(LinearLearnerTest, WithoutBiasTheInterceptStaysZero) {
  Dataset train = RegressionData(1000, 30);
  auto fit = Fit({{"predictor_type", "regressor"},
                  {"use_bias", "false"},
                  {"num_models", "2"},
                  {"mini_batch_size", "50"}},
                 train);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_EQ(fit->model->state().bias[0], 0.0f);
  // The intercept (5) is then absorbed by x0 (mean 10, mean square 125): least squares
  // through the origin gives w0 = (3 * 125 + 5 * 10) / 125 = 3.4.
  EXPECT_NEAR(fit->model->state().weights[0], 3.4, 0.1);
}

TEST(LinearLearnerTest, BalancedPositiveWeightRaisesRecallOnImbalancedData) {
  // About 10% positives, heavily overlapping.
  std::mt19937_64 rng(31);
  Dataset train = Gaussian(3000, 3, rng);
  std::normal_distribution<double> noise(0, 1);
  for (int64_t r = 0; r < train.rows; ++r) {
    train.labels.push_back(train.values[static_cast<size_t>(r * 3)] + noise(rng) > 1.8 ? 1.0f
                                                                                       : 0.0f);
  }
  Hyperparameters hp = {{"predictor_type", "binary_classifier"},
                        {"binary_classifier_model_selection_criteria", "loss_function"},
                        {"num_models", "1"},
                        {"mini_batch_size", "100"}};
  auto plain = Fit(hp, train);
  hp["positive_example_weight_mult"] = "balanced";
  auto balanced = Fit(hp, train);
  ASSERT_TRUE(plain.ok() && balanced.ok());
  EXPECT_GT(balanced->candidates[0].positive_weight, 5.0);
  auto recall = [&](LinearLearnerModel& m) {
    auto scores = m.Scores(train);
    return ComputeBinaryMetrics(*scores, train.labels, m.state().threshold).recall;
  };
  EXPECT_GT(recall(*balanced->model), recall(*plain->model) + 0.2);
}

TEST(LinearLearnerTest, QuantileLossCoversTheRequestedQuantile) {
  Dataset train = RegressionData(3000, 8, /*noise=*/1.0), test = RegressionData(2000, 9, 1.0);
  auto fit = Fit({{"predictor_type", "regressor"},
                  {"loss", "quantile_loss"},
                  {"quantile", "0.9"},
                  {"mini_batch_size", "100"},
                  {"epochs", "20"}},
                 train);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  auto predictions = fit->model->Predict(test);
  ASSERT_TRUE(predictions.ok());
  double below = 0;
  for (size_t i = 0; i < predictions->size(); ++i) {
    below += test.labels[i] <= (*predictions)[i].Find("score")->AsDouble() ? 1 : 0;
  }
  EXPECT_NEAR(below / static_cast<double>(test.rows), 0.9, 0.04);
}

TEST(LinearLearnerTest, HingeLossAndSgdLearn) {
  Dataset train = BinaryData(2000, 10), test = BinaryData(500, 11);
  auto fit = Fit({{"predictor_type", "binary_classifier"},
                  {"loss", "hinge_loss"},
                  {"optimizer", "sgd"},
                  {"momentum", "0.5"},
                  {"num_models", "2"},
                  {"mini_batch_size", "50"}},
                 train);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_EQ(fit->model->state().score_function, "identity");
  EXPECT_GE(Accuracy(*fit->model, test), 0.9);
}

TEST(LinearLearnerTest, SparseInputTrains) {
  // 200 sparse features, 3 of them informative.
  std::mt19937_64 rng(12);
  std::uniform_int_distribution<int64_t> feature(0, 199);
  std::normal_distribution<double> normal(0, 1);
  auto make = [&](int64_t rows) {
    Dataset d;
    d.sparse = true;
    d.rows = rows;
    d.cols = 200;
    d.indptr.push_back(0);
    for (int64_t r = 0; r < rows; ++r) {
      std::map<int64_t, float> row;
      row[0] = static_cast<float>(normal(rng));
      row[1] = static_cast<float>(normal(rng));
      for (int i = 0; i < 5; ++i) row[feature(rng)] = static_cast<float>(normal(rng));
      for (const auto& [c, v] : row) {
        d.indices.push_back(c);
        d.values.push_back(v);
      }
      d.indptr.push_back(static_cast<int64_t>(d.indices.size()));
      d.labels.push_back(row[0] - row[1] > 0 ? 1.0f : 0.0f);
    }
    return d;
  };
  Dataset train = make(2000), test = make(500);
  auto fit = Fit({{"predictor_type", "binary_classifier"}, {"mini_batch_size", "100"}}, train);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_GE(Accuracy(*fit->model, test), 0.93);
  EXPECT_EQ(fit->model->feature_dim(), 200);
}

TEST(LinearLearnerTest, NumModelsKeepsTheBestCandidate) {
  Dataset train = BinaryData(1000, 13), validation = BinaryData(500, 14);
  // A learning rate far too small for one model; the others try larger ones.
  Hyperparameters hp = {{"predictor_type", "binary_classifier"},
                        {"learning_rate", "0.00001"},
                        {"mini_batch_size", "200"},
                        {"epochs", "5"},
                        {"init_method", "normal"},
                        {"init_sigma", "0.001"},
                        {"num_models", "1"}};
  auto single = Fit(hp, train, &validation);
  ASSERT_TRUE(single.ok()) << single.status().message();
  hp["num_models"] = "6";
  auto several = Fit(hp, train, &validation);
  ASSERT_TRUE(several.ok()) << several.status().message();
  ASSERT_EQ(several->candidates.size(), 6u);
  size_t best = 0;
  for (size_t i = 0; i < several->candidates.size(); ++i) {
    if (several->candidates[i].selection_value > several->candidates[best].selection_value) {
      best = i;
    }
  }
  EXPECT_EQ(several->chosen, best);
  EXPECT_NE(several->chosen, 0u);
  EXPECT_GT(several->candidates[best].learning_rate, 0.00001);
  EXPECT_EQ(several->selection_metric, "validation accuracy");
  EXPECT_GT(Accuracy(*several->model, validation), Accuracy(*single->model, validation) + 0.05);
}

TEST(LinearLearnerTest, SelectionCriteriaMoveTheThreshold) {
  Dataset train = BinaryData(2000, 15, /*noise=*/1.5);
  Hyperparameters hp = {
      {"predictor_type", "binary_classifier"}, {"mini_batch_size", "100"}, {"num_models", "1"}};
  hp["binary_classifier_model_selection_criteria"] = "precision_at_target_recall";
  hp["target_recall"] = "0.95";
  auto high_recall = Fit(hp, train);
  ASSERT_TRUE(high_recall.ok()) << high_recall.status().message();
  hp["binary_classifier_model_selection_criteria"] = "recall_at_target_precision";
  hp["target_precision"] = "0.95";
  hp.erase("target_recall");
  auto high_precision = Fit(hp, train);
  ASSERT_TRUE(high_precision.ok()) << high_precision.status().message();
  hp["binary_classifier_model_selection_criteria"] = "loss_function";
  auto by_loss = Fit(hp, train);
  ASSERT_TRUE(by_loss.ok());

  double t_recall = high_recall->model->state().threshold;
  double t_precision = high_precision->model->state().threshold;
  EXPECT_LT(t_recall, t_precision - 0.2);
  EXPECT_DOUBLE_EQ(by_loss->model->state().threshold, 0.5);

  // The targets hold on the data the threshold was chosen on (the training data here).
  auto recall_scores = high_recall->model->Scores(train);
  auto precision_scores = high_precision->model->Scores(train);
  ASSERT_TRUE(recall_scores.ok() && precision_scores.ok());
  EXPECT_GE(ComputeBinaryMetrics(*recall_scores, train.labels, t_recall).recall, 0.95);
  EXPECT_GE(ComputeBinaryMetrics(*precision_scores, train.labels, t_precision).precision, 0.95);
}

TEST(LinearLearnerTest, L1ZeroesIrrelevantWeights) {
  Dataset train = RegressionData(2000, 16, 0.05, /*dim=*/10);
  auto fit = Fit({{"predictor_type", "regressor"},
                  {"l1", "0.02"},
                  {"num_models", "1"},
                  {"mini_batch_size", "100"}},
                 train);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  const auto& w = fit->model->state().weights;
  EXPECT_NE(w[0], 0.0f);
  EXPECT_NE(w[1], 0.0f);
  for (size_t i = 2; i < 10; ++i) EXPECT_EQ(w[i], 0.0f) << "feature " << i;

  auto plain = Fit({{"predictor_type", "regressor"},
                    {"l1", "0"},
                    {"num_models", "1"},
                    {"mini_batch_size", "100"}},
                   train);
  ASSERT_TRUE(plain.ok());
  int zeros = 0;
  for (size_t i = 2; i < 10; ++i) zeros += plain->model->state().weights[i] == 0.0f;
  EXPECT_EQ(zeros, 0);
}

TEST(LinearLearnerTest, EarlyStoppingEndsTrainingBeforeTheLastEpoch) {
  Dataset train = BinaryData(1000, 17), validation = BinaryData(300, 18);
  std::vector<std::string> log;
  auto fit = Fit({{"predictor_type", "binary_classifier"},
                  {"epochs", "60"},
                  {"early_stopping_patience", "2"},
                  {"early_stopping_tolerance", "0.01"},
                  {"num_models", "2"}},
                 train, &validation, nullptr, nullptr, &log);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  for (const auto& c : fit->candidates) EXPECT_LT(c.epochs_run, 60);
  bool stopped = false;
  for (const auto& line : log) stopped |= line.rfind("Early stop condition met", 0) == 0;
  EXPECT_TRUE(stopped);
}

TEST(LinearLearnerTest, ArtifactRoundTripPredictsTheSame) {
  Dataset train = MulticlassData(600, 19);
  auto fit = Fit({{"predictor_type", "multiclass_classifier"},
                  {"num_classes", "3"},
                  {"num_models", "2"},
                  {"epochs", "3"}},
                 train);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  fs::path dir = fs::temp_directory_path() / ("nimbus-ll-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE(fit->model->Save(dir.string()).ok());
  EXPECT_TRUE(fs::exists(dir / LinearLearnerModel::kArtifactName));
  auto loaded = LinearLearnerModel::Load(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  Dataset batch = train.Slice(0, 20);
  auto a = fit->model->Predict(batch);
  auto b = (*loaded)->Predict(batch);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].GetInt("predicted_label"), (*b)[i].GetInt("predicted_label"));
    for (size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR((*a)[i].Find("score")->list()[c].AsDouble(),
                  (*b)[i].Find("score")->list()[c].AsDouble(), 1e-6);
    }
  }
  // A batch of the wrong width is a ClientError, not a crash.
  Dataset wide;
  wide.rows = 1;
  wide.cols = 5;
  wide.values.assign(5, 1.0f);
  auto bad = (*loaded)->Predict(wide);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "ClientError");
  EXPECT_FALSE(LinearLearnerModel::Load((dir / "missing").string()).ok());
  fs::remove_all(dir);
}

TEST(LinearLearnerTest, RejectsBadHyperparametersNamingThem) {
  struct Case {
    Hyperparameters hp;
    std::string mention;
  };
  const std::vector<Case> cases = {
      {{}, "'predictor_type' is required"},
      {{{"predictor_type", "ranker"}}, "'predictor_type' = 'ranker' must be one of"},
      {{{"predictor_type", "multiclass_classifier"}}, "'num_classes' is required"},
      {{{"predictor_type", "multiclass_classifier"}, {"num_classes", "2"}}, "'num_classes'"},
      {{{"predictor_type", "regressor"}, {"epochs", "0"}}, "'epochs' = '0' is out of range"},
      {{{"predictor_type", "regressor"}, {"learning_rate", "0"}}, "'learning_rate' = '0'"},
      {{{"predictor_type", "regressor"}, {"learning_rate", "fast"}}, "'learning_rate'"},
      {{{"predictor_type", "binary_classifier"}, {"loss", "squared_loss"}},
       "'loss' = 'squared_loss' is not valid for predictor_type 'binary_classifier'"},
      {{{"predictor_type", "regressor"}, {"loss", "nope"}}, "'loss' = 'nope'"},
      {{{"predictor_type", "regressor"}, {"optimizer", "adagrad"}}, "'optimizer'"},
      {{{"predictor_type", "regressor"}, {"momentum", "1"}}, "'momentum' = '1'"},
      {{{"predictor_type", "regressor"}, {"wd", "-1"}}, "'wd' = '-1'"},
      {{{"predictor_type", "regressor"}, {"l1", "x"}}, "'l1'"},
      {{{"predictor_type", "regressor"}, {"quantile", "1"}}, "'quantile' = '1'"},
      {{{"predictor_type", "regressor"}, {"use_bias", "maybe"}}, "'use_bias'"},
      {{{"predictor_type", "regressor"}, {"normalize_data", "yes"}}, "'normalize_data'"},
      {{{"predictor_type", "regressor"}, {"num_models", "0"}}, "'num_models'"},
      {{{"predictor_type", "regressor"}, {"mini_batch_size", "-5"}}, "'mini_batch_size'"},
      {{{"predictor_type", "regressor"}, {"feature_dim", "0"}}, "'feature_dim'"},
      {{{"predictor_type", "binary_classifier"}, {"target_recall", "1.5"}}, "'target_recall'"},
      {{{"predictor_type", "binary_classifier"}, {"positive_example_weight_mult", "-1"}},
       "'positive_example_weight_mult'"},
      {{{"predictor_type", "binary_classifier"},
        {"binary_classifier_model_selection_criteria", "auc"}},
       "'binary_classifier_model_selection_criteria'"},
      {{{"predictor_type", "regressor"}, {"early_stopping_tolerance", "0"}},
       "'early_stopping_tolerance'"},
      {{{"predictor_type", "regressor"}, {"lr_scheduler_factor", "1"}}, "'lr_scheduler_factor'"},
      {{{"predictor_type", "regressor"}, {"init_method", "xavier"}}, "'init_method'"},
      {{{"predictor_type", "regressor"}, {"accuracy_top_k", "0"}}, "'accuracy_top_k'"},
      {{{"predictor_type", "regressor"}, {"eta", "0.1"}}, "'eta' was unexpected"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseLinearLearnerHyperparameters(c.hp);
    ASSERT_FALSE(parsed.ok()) << c.mention;
    EXPECT_EQ(parsed.status().code(), "ClientError");
    EXPECT_NE(parsed.status().message().find(c.mention), std::string::npos)
        << parsed.status().message();
  }
}

TEST(LinearLearnerTest, AcceptsEveryDocumentedHyperparameter) {
  Hyperparameters hp = {
      {"predictor_type", "binary_classifier"},
      {"num_classes", "3"},
      {"feature_dim", "auto"},
      {"mini_batch_size", "100"},
      {"epochs", "2"},
      {"learning_rate", "auto"},
      {"optimizer", "rmsprop"},
      {"l1", "auto"},
      {"wd", "0.001"},
      {"momentum", "auto"},
      {"beta_1", "0.8"},
      {"beta_2", "auto"},
      {"bias_lr_mult", "2"},
      {"bias_wd_mult", "auto"},
      {"use_bias", "True"},
      {"normalize_data", "true"},
      {"normalize_label", "auto"},
      {"unbias_data", "false"},
      {"unbias_label", "auto"},
      {"num_models", "auto"},
      {"loss", "auto"},
      {"binary_classifier_model_selection_criteria", "f_beta"},
      {"target_recall", "0.7"},
      {"target_precision", "0.6"},
      {"positive_example_weight_mult", "balanced"},
      {"early_stopping_patience", "5"},
      {"early_stopping_tolerance", "0.01"},
      {"num_point_for_scaler", "500"},
      {"margin", "1.5"},
      {"quantile", "0.3"},
      {"loss_insensitivity", "0.1"},
      {"huber_delta", "2"},
      {"use_lr_scheduler", "false"},
      {"lr_scheduler_step", "auto"},
      {"lr_scheduler_factor", "0.5"},
      {"lr_scheduler_minimum_lr", "auto"},
      {"init_method", "normal"},
      {"init_scale", "0.1"},
      {"init_sigma", "0.02"},
      {"init_bias", "0.1"},
      {"f_beta", "2"},
      {"num_calibration_samples", "1000"},
      {"accuracy_top_k", "2"},
      {"balance_multiclass_weights", "false"},
      {"_tuning_objective_metric", "validation:binary_f_beta"},
      {"sagemaker_region", "us-east-1"},
  };
  auto parsed = ParseLinearLearnerHyperparameters(hp);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->loss, "logistic");
  EXPECT_EQ(parsed->optimizer, "rmsprop");
  EXPECT_EQ(parsed->num_models, 1);  // automatic model tuning turns internal tuning off
  EXPECT_EQ(parsed->positive_weight_mode, "balanced");
  EXPECT_FALSE(parsed->learning_rate.has_value());
  EXPECT_DOUBLE_EQ(*parsed->wd, 0.001);
  Dataset train = BinaryData(400, 20);
  LinearLearnerEnv env;
  auto fit = TrainLinearLearner(*parsed, train, nullptr, nullptr, env);
  EXPECT_TRUE(fit.ok()) << fit.status().message();
}

TEST(LinearLearnerTest, RejectsLabelsThatDoNotFitThePredictorType) {
  Dataset train = BinaryData(50, 21);
  train.labels[7] = 2.0f;
  auto fit = Fit({{"predictor_type", "binary_classifier"}}, train);
  ASSERT_FALSE(fit.ok());
  EXPECT_EQ(fit.status().code(), "ClientError");
  EXPECT_NE(fit.status().message().find("record 8"), std::string::npos) << fit.status().message();

  Dataset multi = MulticlassData(30, 22);
  multi.labels[3] = 3.0f;
  fit = Fit({{"predictor_type", "multiclass_classifier"}, {"num_classes", "3"}}, multi);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.status().message().find("num_classes=3"), std::string::npos);

  Dataset regression = RegressionData(30, 23);
  fit = Fit({{"predictor_type", "regressor"}, {"feature_dim", "7"}}, regression);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.status().message().find("feature_dim"), std::string::npos);
}

// The algorithm end to end through the registry: job-directory channels in CSV and
// RecordIO-protobuf, the artifact in model_dir, and the loader the model servers use.
TEST(LinearLearnerTest, TrainsFromChannelsThroughTheRegistry) {
  RegisterLinearLearnerAlgorithm();
  const AlgorithmInfo* info =
      FindAlgorithmForImage("382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "linear-learner");
  EXPECT_EQ(info->training_content_types.front(), "application/x-recordio-protobuf");

  fs::path job = fs::temp_directory_path() / ("nimbus-ll-job-" + std::to_string(::getpid()));
  fs::remove_all(job);
  fs::create_directories(job / "train");
  fs::create_directories(job / "validation");
  fs::create_directories(job / "test");
  Dataset train = BinaryData(800, 24), validation = BinaryData(200, 25), test = BinaryData(200, 26);
  {
    std::ofstream csv(job / "train" / "part-0.csv");
    for (int64_t r = 0; r < train.rows; ++r) {
      csv << train.labels[static_cast<size_t>(r)];
      for (int64_t c = 0; c < train.cols; ++c) {
        csv << "," << train.values[static_cast<size_t>(r * train.cols + c)];
      }
      csv << "\n";
    }
    std::ofstream pb(job / "validation" / "data.pbr", std::ios::binary);
    pb << WriteRecordIOProtobuf(validation);
    std::ofstream pb_test(job / "test" / "data.pbr", std::ios::binary);
    pb_test << WriteRecordIOProtobuf(test);
  }
  RecordingMetrics metrics;
  std::vector<std::string> log;
  TrainingInput input;
  input.hyperparameters = {{"predictor_type", "binary_classifier"},
                           {"feature_dim", "6"},
                           {"mini_batch_size", "100"},
                           {"num_models", "2"}};
  input.channels["train"] = Channel{"train", (job / "train").string(), "text/csv", false};
  input.channels["validation"] = Channel{"validation", (job / "validation").string(), "", false};
  input.channels["test"] =
      Channel{"test", (job / "test").string(), "application/x-recordio-protobuf", false};
  input.model_dir = (job / "model").string();
  input.num_threads = 2;
  input.metrics = &metrics;
  input.log = [&](const std::string& line) { log.push_back(line); };
  Status trained = info->make()->Train(input);
  ASSERT_TRUE(trained.ok()) << trained.message();
  EXPECT_GE(metrics.Last("validation:binary_classification_accuracy"), 0.88);
  EXPECT_GE(metrics.Last("test:binary_classification_accuracy"), 0.88);

  auto model = info->load(input.model_dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->feature_dim(), 6);
  auto predictions = (*model)->Predict(test);
  ASSERT_TRUE(predictions.ok());
  EXPECT_EQ(predictions->size(), 200u);

  // Unsupported channels and content types are ClientErrors.
  input.channels["extra"] = Channel{"extra", (job / "train").string(), "text/csv", false};
  Status extra = info->make()->Train(input);
  EXPECT_EQ(extra.code(), "ClientError");
  EXPECT_NE(extra.message().find("'extra'"), std::string::npos);
  input.channels.erase("extra");
  input.channels["train"].content_type = "text/libsvm";
  Status libsvm = info->make()->Train(input);
  EXPECT_EQ(libsvm.code(), "ClientError");
  input.channels.erase("train");
  EXPECT_EQ(info->make()->Train(input).code(), "ClientError");
  fs::remove_all(job);
}

}  // namespace
}  // namespace nimbus::ml
