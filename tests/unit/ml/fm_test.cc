#include "ml/fm/factorization_machines.h"

#include "ml/dataset_readers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

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

// y = x0 * x1 + 0.5 x2 + noise over four standard-normal features: the product term is
// invisible to any linear model (it is uncorrelated with every feature).
Dataset InteractionData(int64_t rows, uint64_t seed, bool binary = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  Dataset d;
  d.rows = rows;
  d.cols = 4;
  for (int64_t r = 0; r < rows; ++r) {
    double x[4];
    for (double& v : x) {
      v = normal(rng);
      d.values.push_back(static_cast<float>(v));
    }
    double y = x[0] * x[1] + 0.5 * x[2];
    d.labels.push_back(binary ? (x[0] * x[1] > 0 ? 1.0f : 0.0f)
                              : static_cast<float>(y + 0.05 * normal(rng)));
  }
  return d;
}

// One-hot user (0..users-1) and item (users..users+items-1) per record, rating
// a_user * b_item + noise: a rank-1 interaction, the recommender case FMs exist for.
Dataset RatingData(int64_t rows, uint64_t seed, int users = 30, int items = 30) {
  std::mt19937_64 factors_rng(99);  // the same latent factors for every split
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> a(static_cast<size_t>(users)), b(static_cast<size_t>(items));
  for (double& v : a) v = normal(factors_rng);
  for (double& v : b) v = normal(factors_rng);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> user(0, users - 1), item(0, items - 1);
  Dataset d;
  d.sparse = true;
  d.rows = rows;
  d.cols = users + items;
  d.indptr.push_back(0);
  for (int64_t r = 0; r < rows; ++r) {
    int u = user(rng), i = item(rng);
    d.indices.push_back(u);
    d.indices.push_back(users + i);
    d.values.push_back(1.0f);
    d.values.push_back(1.0f);
    d.indptr.push_back(static_cast<int64_t>(d.indices.size()));
    d.labels.push_back(static_cast<float>(
        2 * a[static_cast<size_t>(u)] * b[static_cast<size_t>(i)] + 0.05 * normal(rng)));
  }
  return d;
}

Result<std::unique_ptr<FactorizationMachinesModel>> Fit(const Hyperparameters& hp,
                                                        const Dataset& train,
                                                        const Dataset* test = nullptr,
                                                        RecordingMetrics* metrics = nullptr,
                                                        std::vector<std::string>* log = nullptr) {
  NIMBUS_ASSIGN_OR_RETURN(FmParams params, ParseFactorizationMachinesHyperparameters(hp));
  FmEnv env;
  env.num_threads = 2;
  env.metrics = metrics;
  if (log) env.log = [log](const std::string& line) { log->push_back(line); };
  return TrainFactorizationMachines(params, train, test, env);
}

double Rmse(const FactorizationMachinesModel& model, const Dataset& data) {
  auto m = EvaluateFactorizationMachines(model, data);
  EXPECT_TRUE(m.ok());
  return m->at("rmse");
}

// Frozen zero factors turn the FM into the linear model it extends: the baseline.
Hyperparameters Linear(Hyperparameters hp) {
  hp["factors_lr"] = "0";
  hp["factors_init_method"] = "constant";
  hp["factors_init_value"] = "0";
  return hp;
}

const Hyperparameters kInteractionHp = {
    {"predictor_type", "regressor"},
    {"feature_dim", "4"},
    {"num_factors", "4"},
    {"epochs", "25"},
    {"mini_batch_size", "50"},
    {"bias_lr", "0.02"},
    {"linear_lr", "0.02"},
    {"factors_lr", "0.02"},
    {"factors_init_sigma", "0.1"},
};

TEST(FactorizationMachinesTest, LearnsAPairwiseInteractionThatALinearModelCannot) {
  Dataset train = InteractionData(3000, 1), test = InteractionData(1000, 2);
  RecordingMetrics metrics;
  std::vector<std::string> log;
  auto fm = Fit(kInteractionHp, train, &test, &metrics, &log);
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  auto linear = Fit(Linear(kInteractionHp), train);
  ASSERT_TRUE(linear.ok()) << linear.status().message();
  double fm_rmse = Rmse(**fm, test), linear_rmse = Rmse(**linear, test);
  EXPECT_LT(fm_rmse, 0.25);
  EXPECT_GT(linear_rmse, 0.9);  // the x0*x1 term has unit variance
  EXPECT_DOUBLE_EQ(metrics.Last("test:rmse"), fm_rmse);
  ASSERT_EQ(metrics.values["train:rmse"].size(), 25u);
  EXPECT_LT(metrics.values["train:rmse"].back(), metrics.values["train:rmse"].front());
  bool epoch_line = false, test_line = false;
  for (const auto& line : log) {
    epoch_line |= line.rfind("#quality_metric: host=algo-1, epoch=24, train rmse <loss>=", 0) == 0;
    test_line |= line.rfind("#test_score (algo-1) : ('rmse', ", 0) == 0;
  }
  EXPECT_TRUE(epoch_line && test_line);
  // <v_0, v_1> carries the interaction weight (1); other pairs stay near 0.
  const auto& st = (*fm)->state();
  auto dot = [&](int i, int j) {
    double s = 0;
    for (int f = 0; f < 4; ++f) s += st.v[static_cast<size_t>(i * 4 + f)] * st.v[j * 4 + f];
    return s;
  };
  EXPECT_NEAR(dot(0, 1), 1.0, 0.15);
  EXPECT_NEAR(dot(2, 3), 0.0, 0.15);
  EXPECT_NEAR(st.w[2], 0.5, 0.1);
}

TEST(FactorizationMachinesTest, SparseOneHotRatingsBeatTheLinearBaseline) {
  Dataset train = RatingData(6000, 3), test = RatingData(1000, 4);
  Hyperparameters hp = {{"predictor_type", "regressor"},
                        {"feature_dim", "60"},
                        {"num_factors", "4"},
                        {"epochs", "30"},
                        {"mini_batch_size", "100"},
                        {"linear_lr", "0.02"},
                        {"factors_lr", "0.02"},
                        {"factors_init_sigma", "0.1"},
                        {"bias_lr", "0.02"}};
  auto fm = Fit(hp, train);
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  auto linear = Fit(Linear(hp), train);
  ASSERT_TRUE(linear.ok());
  double fm_rmse = Rmse(**fm, test), linear_rmse = Rmse(**linear, test);
  EXPECT_LT(fm_rmse, 0.5 * linear_rmse) << fm_rmse << " vs " << linear_rmse;
  EXPECT_LT(fm_rmse, 0.35);
}

TEST(FactorizationMachinesTest, BinaryClassifierLearnsTheSignOfAProduct) {
  Dataset train = InteractionData(3000, 5, /*binary=*/true), test = InteractionData(1000, 6, true);
  Hyperparameters hp = kInteractionHp;
  hp["predictor_type"] = "binary_classifier";
  RecordingMetrics metrics;
  auto fm = Fit(hp, train, &test, &metrics);
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  EXPECT_GE(metrics.Last("test:binary_classification_accuracy"), 0.9);
  EXPECT_LT(metrics.Last("test:binary_classification_cross_entropy"), 0.35);
  EXPECT_GE(metrics.Last("test:binary_f_beta"), 0.9);
  EXPECT_TRUE(metrics.values.count("train:binary_classification_accuracy"));
  EXPECT_TRUE(metrics.values.count("train:binary_classification_cross_entropy"));

  auto linear = Fit(Linear(hp), train);
  ASSERT_TRUE(linear.ok());
  auto linear_metrics = EvaluateFactorizationMachines(**linear, test);
  ASSERT_TRUE(linear_metrics.ok());
  EXPECT_LT(linear_metrics->at("binary_classification_accuracy"), 0.6);

  auto predictions = (*fm)->Predict(test.Slice(0, 10));
  ASSERT_TRUE(predictions.ok());
  for (const Value& p : *predictions) {
    double score = p.Find("score")->AsDouble();
    EXPECT_GE(score, 0.0);
    EXPECT_LE(score, 1.0);
    EXPECT_EQ(p.GetInt("predicted_label"), score > 0.5 ? 1 : 0);
  }
}

TEST(FactorizationMachinesTest, ArtifactRoundTripPredictsTheSame) {
  Dataset train = RatingData(500, 7);
  auto fm =
      Fit({{"predictor_type", "regressor"}, {"feature_dim", "60"}, {"num_factors", "3"}}, train);
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  fs::path dir = fs::temp_directory_path() / ("nimbus-fm-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE((*fm)->Save(dir.string()).ok());
  auto loaded = FactorizationMachinesModel::Load(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ((*loaded)->feature_dim(), 60);
  EXPECT_EQ((*loaded)->state().num_factors, 3);
  auto a = (*fm)->Predict(train);
  auto b = (*loaded)->Predict(train);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_FLOAT_EQ((*a)[i].Find("score")->AsDouble(), (*b)[i].Find("score")->AsDouble());
    EXPECT_FALSE((*b)[i].Has("predicted_label"));
  }
  // Truncated artifacts and out-of-range features are ClientErrors.
  fs::resize_file(dir / FactorizationMachinesModel::kArtifactName, 40);
  EXPECT_EQ(FactorizationMachinesModel::Load(dir.string()).status().code(), "ClientError");
  Dataset wide = train.Slice(0, 1);
  wide.indices[0] = 60;
  wide.cols = 61;
  EXPECT_EQ((*fm)->Predict(wide).status().code(), "ClientError");
  fs::remove_all(dir);
}

TEST(FactorizationMachinesTest, RejectsBadHyperparametersAndData) {
  const Hyperparameters base = {
      {"predictor_type", "regressor"}, {"feature_dim", "4"}, {"num_factors", "2"}};
  struct Case {
    std::string name, value, mention;
  };
  const std::vector<Case> cases = {
      {"predictor_type", "multiclass_classifier", "'predictor_type' = 'multiclass_classifier'"},
      {"feature_dim", "0", "'feature_dim' = '0' is out of range"},
      {"num_factors", "two", "'num_factors'"},
      {"epochs", "0", "'epochs'"},
      {"mini_batch_size", "0", "'mini_batch_size'"},
      {"bias_lr", "-1", "'bias_lr' = '-1'"},
      {"factors_wd", "x", "'factors_wd'"},
      {"linear_init_method", "xavier", "'linear_init_method'"},
      {"factors_init_sigma", "-0.1", "'factors_init_sigma'"},
      {"clip_gradient", "0", "'clip_gradient'"},
      {"eps", "-1", "'eps'"},
      {"rescale_grad", "0", "'rescale_grad'"},
      {"learning_rate", "0.1", "'learning_rate' was unexpected"},
  };
  for (const auto& c : cases) {
    Hyperparameters hp = base;
    hp[c.name] = c.value;
    auto parsed = ParseFactorizationMachinesHyperparameters(hp);
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_EQ(parsed.status().code(), "ClientError");
    EXPECT_NE(parsed.status().message().find(c.mention), std::string::npos)
        << parsed.status().message();
  }
  for (const char* required : {"predictor_type", "feature_dim", "num_factors"}) {
    Hyperparameters hp = base;
    hp.erase(required);
    auto parsed = ParseFactorizationMachinesHyperparameters(hp);
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find(std::string("'") + required + "' is required"),
              std::string::npos);
  }
  Hyperparameters all = base;
  for (const char* term : {"bias", "linear", "factors"}) {
    all[std::string(term) + "_init_method"] = "uniform";
    all[std::string(term) + "_init_scale"] = "0.05";
    all[std::string(term) + "_init_sigma"] = "0.01";
    all[std::string(term) + "_init_value"] = "0.1";
    all[std::string(term) + "_lr"] = "0.01";
    all[std::string(term) + "_wd"] = "0.001";
  }
  all["clip_gradient"] = "5";
  all["eps"] = "1e-7";
  all["rescale_grad"] = "0.01";
  all["epochs"] = "2";
  all["mini_batch_size"] = "100";
  auto parsed = ParseFactorizationMachinesHyperparameters(all);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_DOUBLE_EQ(*parsed->clip_gradient, 5.0);
  EXPECT_EQ(parsed->factors_init.method, "uniform");

  // Every documented hyperparameter trains; then bad data: more features than feature_dim,
  // non-binary labels for a binary classifier.
  Dataset data = InteractionData(20, 8);
  FmEnv env;
  auto with_all = TrainFactorizationMachines(*parsed, data, nullptr, env);
  EXPECT_TRUE(with_all.ok()) << with_all.status().message();
  Hyperparameters narrow = base;
  narrow["feature_dim"] = "3";
  auto fit = Fit(narrow, data);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.status().message().find("feature_dim is 3"), std::string::npos);
  Hyperparameters binary = base;
  binary["predictor_type"] = "binary_classifier";
  fit = Fit(binary, data);
  ASSERT_FALSE(fit.ok());
  EXPECT_EQ(fit.status().code(), "ClientError");
  EXPECT_NE(fit.status().message().find("not 0 or 1"), std::string::npos);
}

// End to end through the registry: sparse RecordIO-protobuf channels, the artifact, the
// loader the model servers use, and the channels FM does not take.
TEST(FactorizationMachinesTest, TrainsFromRecordIOProtobufChannelsThroughTheRegistry) {
  RegisterFactorizationMachinesAlgorithm();
  const AlgorithmInfo* info = FindAlgorithmForImage(
      "174872318107.dkr.ecr.us-west-2.amazonaws.com/factorization-machines:1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "factorization-machines");

  fs::path job = fs::temp_directory_path() / ("nimbus-fm-job-" + std::to_string(::getpid()));
  fs::remove_all(job);
  fs::create_directories(job / "train");
  fs::create_directories(job / "test");
  {
    std::ofstream train(job / "train" / "part-0.pbr", std::ios::binary);
    train << WriteRecordIOProtobuf(RatingData(4000, 9));
    std::ofstream test(job / "test" / "part-0.pbr", std::ios::binary);
    test << WriteRecordIOProtobuf(RatingData(500, 10));
  }
  RecordingMetrics metrics;
  TrainingInput input;
  input.hyperparameters = {{"predictor_type", "regressor"},
                           {"feature_dim", "60"},
                           {"num_factors", "4"},
                           {"epochs", "20"},
                           {"mini_batch_size", "100"},
                           {"linear_lr", "0.02"},
                           {"factors_lr", "0.02"},
                           {"factors_init_sigma", "0.1"},
                           {"bias_lr", "0.02"}};
  input.channels["train"] = Channel{"train", (job / "train").string(), "", false};
  input.channels["test"] =
      Channel{"test", (job / "test").string(), "application/x-recordio-protobuf", false};
  input.model_dir = (job / "model").string();
  input.num_threads = 2;
  input.metrics = &metrics;
  Status trained = info->make()->Train(input);
  ASSERT_TRUE(trained.ok()) << trained.message();
  EXPECT_LT(metrics.Last("test:rmse"), 0.5);
  auto model = info->load(input.model_dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->feature_dim(), 60);

  input.channels["validation"] = input.channels["test"];
  Status validation = info->make()->Train(input);
  EXPECT_EQ(validation.code(), "ClientError");
  EXPECT_NE(validation.message().find("'validation'"), std::string::npos);
  input.channels.erase("validation");
  input.channels["train"].content_type = "application/jsonlines";
  EXPECT_EQ(info->make()->Train(input).code(), "ClientError");
  fs::remove_all(job);
}

}  // namespace
}  // namespace nimbus::ml
