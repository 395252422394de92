#include "ml/knn/knn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/json.h"
#include "ml/dataset_readers.h"

namespace nimbus::ml {
namespace {

namespace fs = std::filesystem;

class RecordingMetrics : public MetricsReporter {
 public:
  void Report(const std::string& name, double value) override { values[name] = value; }
  std::map<std::string, double> values;
};

// Gaussian blobs: `per_class` points around each of `classes` random centres in [-10, 10]^dim;
// the label is the class number.
Dataset Blobs(int classes, int per_class, int dim, uint32_t seed, double spread = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> centre(-10, 10);
  std::normal_distribution<float> noise(0, static_cast<float>(spread));
  std::vector<std::vector<float>> centres(classes, std::vector<float>(dim));
  std::mt19937 centre_rng(42);  // the same centres for train and test sets
  for (auto& c : centres) {
    for (auto& v : c) v = centre(centre_rng);
  }
  Dataset d;
  d.cols = dim;
  for (int i = 0; i < per_class; ++i) {
    for (int c = 0; c < classes; ++c) {
      for (int j = 0; j < dim; ++j) d.values.push_back(centres[c][j] + noise(rng));
      d.labels.push_back(static_cast<float>(c));
      ++d.rows;
    }
  }
  return d;
}

// Points whose class is their direction: 4 angular sectors in the plane (with small noise in
// 2 more dimensions), at magnitudes from 0.1 to 100, so L2 distances mislead and cosine does not.
Dataset Directions(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> angle_noise(-0.25f, 0.25f);
  std::uniform_real_distribution<float> log_mag(std::log(0.1f), std::log(100.0f));
  Dataset d;
  d.cols = 4;
  for (int i = 0; i < n; ++i) {
    int c = i % 4;
    float a = static_cast<float>(c) * 1.5707963f + angle_noise(rng);
    float m = std::exp(log_mag(rng));
    d.values.insert(d.values.end(), {m * std::cos(a), m * std::sin(a), m * angle_noise(rng) * 0.1f,
                                     m * angle_noise(rng) * 0.1f});
    d.labels.push_back(static_cast<float>(c));
    ++d.rows;
  }
  return d;
}

class KnnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("knn_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  TrainingInput Input(Hyperparameters hp, const std::string& model = "model") {
    TrainingInput input;
    input.hyperparameters = std::move(hp);
    input.model_dir = (dir_ / model).string();
    input.num_threads = 1;
    input.metrics = &metrics_;
    input.log = [this](const std::string& line) { log_ += line + "\n"; };
    return input;
  }

  static double Accuracy(const std::vector<Value>& predicted, const Dataset& truth) {
    int correct = 0;
    for (size_t i = 0; i < predicted.size(); ++i) {
      if (predicted[i].Find("predicted_label")->AsDouble() == truth.labels[i]) ++correct;
    }
    return static_cast<double>(correct) / static_cast<double>(predicted.size());
  }

  fs::path dir_;
  RecordingMetrics metrics_;
  std::string log_;
};

Hyperparameters Classifier(int dim, Hyperparameters extra = {}) {
  Hyperparameters hp = {{"feature_dim", std::to_string(dim)},
                        {"k", "5"},
                        {"predictor_type", "classifier"},
                        {"sample_size", "5000"}};
  for (auto& [k, v] : extra) hp[k] = v;
  return hp;
}

TEST_F(KnnTest, FlatClassifierLearnsBlobsAndRoundTrips) {
  Dataset train = Blobs(5, 120, 8, 1, 2.0);
  Dataset test = Blobs(5, 40, 8, 2, 2.0);
  TrainingInput input = Input(Classifier(8));
  input.num_threads = 2;
  ASSERT_TRUE(TrainKnn(input, train, &test).ok());
  ASSERT_TRUE(metrics_.values.count("test:accuracy"));
  EXPECT_GE(metrics_.values["test:accuracy"], 0.95);
  EXPECT_NE(log_.find("#test_score (algo-1) : ('accuracy'"), std::string::npos) << log_;
  EXPECT_TRUE(fs::exists(fs::path(input.model_dir) / "knn.faiss"));
  EXPECT_TRUE(fs::exists(fs::path(input.model_dir) / "knn-labels.bin"));

  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->feature_dim(), 8);
  EXPECT_EQ((*model)->k(), 5);
  EXPECT_TRUE((*model)->classifier());
  auto predicted = (*model)->Predict(test);
  ASSERT_TRUE(predicted.ok());
  ASSERT_EQ(predicted->size(), static_cast<size_t>(test.rows));
  EXPECT_DOUBLE_EQ(Accuracy(*predicted, test), metrics_.values["test:accuracy"]);
}

TEST_F(KnnTest, IvfFlatClassifierLearnsBlobs) {
  Dataset train = Blobs(4, 200, 6, 3, 1.5);
  Dataset test = Blobs(4, 50, 6, 4, 1.5);
  ASSERT_TRUE(TrainKnn(Input(Classifier(
                           6, {{"index_type", "faiss.IVFFlat"}, {"faiss_index_ivf_nlists", "8"}})),
                       train, &test)
                  .ok());
  EXPECT_GE(metrics_.values["test:accuracy"], 0.95);
  EXPECT_NE(log_.find("nlist=8"), std::string::npos) << log_;
}

TEST_F(KnnTest, IvfPqClassifierLearnsBlobsWithinTolerance) {
  Dataset train = Blobs(4, 80, 16, 5, 1.5);
  Dataset test = Blobs(4, 50, 16, 6, 1.5);
  TrainingInput input =
      Input(Classifier(16, {{"index_type", "faiss.IVFPQ"}, {"faiss_index_pq_m", "4"}}));
  ASSERT_TRUE(TrainKnn(input, train, &test).ok()) << log_;
  // Product quantization approximates distances: allow some loss against exact search.
  EXPECT_GE(metrics_.values["test:accuracy"], 0.85);
  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto predicted = (*model)->Predict(test);
  ASSERT_TRUE(predicted.ok());
  EXPECT_GE(Accuracy(*predicted, test), 0.85);
}

TEST_F(KnnTest, IvfPqPadsDimensionNotDivisibleByM) {
  Dataset train = Blobs(3, 60, 10, 7, 1.0);
  Dataset test = Blobs(3, 30, 10, 8, 1.0);
  TrainingInput input =
      Input(Classifier(10, {{"index_type", "faiss.IVFPQ"}, {"faiss_index_pq_m", "4"}}));
  ASSERT_TRUE(TrainKnn(input, train, &test).ok()) << log_;
  EXPECT_NE(log_.find("from 10 to 12 with zeros"), std::string::npos) << log_;
  EXPECT_GE(metrics_.values["test:accuracy"], 0.85);
  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->feature_dim(), 10);  // callers still send raw 10-feature records
}

TEST_F(KnnTest, IvfSearchWidensToAllListsWhenProbedListsHoldFewerThanK) {
  // 8 lists, 2 probed: k = 40 of 48 points cannot come from 2 lists alone.
  Dataset train = Blobs(4, 12, 3, 30, 2.0);
  TrainingInput input = Input(Classifier(
      3, {{"k", "40"}, {"index_type", "faiss.IVFFlat"}, {"faiss_index_ivf_nlists", "8"}}));
  ASSERT_TRUE(TrainKnn(input, train, nullptr).ok()) << log_;
  EXPECT_NE(log_.find("nprobe=2"), std::string::npos) << log_;
  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok());
  auto out = (*model)->PredictVerbose(train.Slice(0, 6));
  ASSERT_TRUE(out.ok());
  for (const auto& v : *out) {
    const auto& distances = v.Find("distances")->list();
    ASSERT_EQ(distances.size(), 40u);
    EXPECT_EQ(v.Find("labels")->list().size(), 40u);
    for (size_t j = 1; j < distances.size(); ++j) {
      EXPECT_LE(distances[j - 1].AsDouble(), distances[j].AsDouble());
    }
  }
}

TEST_F(KnnTest, RegressorPredictsMeanOfNeighbours) {
  // y = sin(x0) + x1 / 2 on a dense grid-like sample: local averages are accurate.
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-3, 3);
  auto make = [&](int n) {
    Dataset d;
    d.cols = 2;
    for (int i = 0; i < n; ++i) {
      float a = u(rng), b = u(rng);
      d.values.insert(d.values.end(), {a, b});
      d.labels.push_back(std::sin(a) + b / 2);
      ++d.rows;
    }
    return d;
  };
  Dataset train = make(3000);
  Dataset test = make(200);
  double mean = 0, var = 0;
  for (float y : test.labels) mean += y;
  mean /= test.rows;
  for (float y : test.labels) var += (y - mean) * (y - mean);
  var /= test.rows;
  TrainingInput input = Input(
      {{"feature_dim", "2"}, {"k", "4"}, {"predictor_type", "regressor"}, {"sample_size", "3000"}});
  ASSERT_TRUE(TrainKnn(input, train, &test).ok());
  ASSERT_TRUE(metrics_.values.count("test:mse"));
  EXPECT_LT(metrics_.values["test:mse"], 0.05 * var);

  // The prediction is exactly the mean of the verbose neighbours' labels.
  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok());
  EXPECT_FALSE((*model)->classifier());
  auto verbose = (*model)->PredictVerbose(test.Slice(0, 5));
  ASSERT_TRUE(verbose.ok());
  for (const auto& v : *verbose) {
    const auto& labels = v.Find("labels")->list();
    ASSERT_EQ(labels.size(), 4u);
    double sum = 0;
    for (const auto& l : labels) sum += l.AsDouble();
    EXPECT_NEAR(v.Find("predicted_label")->AsDouble(), sum / 4, 1e-6);
  }
}

TEST_F(KnnTest, VerboseMatchesBruteForceL2) {
  Dataset train = Blobs(3, 30, 3, 10, 3.0);
  TrainingInput input = Input(Classifier(3, {{"k", "3"}}));
  ASSERT_TRUE(TrainKnn(input, train, nullptr).ok());
  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok());
  Dataset query = Blobs(3, 1, 3, 11, 3.0);
  auto out = (*model)->PredictVerbose(query);
  ASSERT_TRUE(out.ok());
  for (int64_t q = 0; q < query.rows; ++q) {
    std::vector<std::pair<double, float>> all;
    for (int64_t r = 0; r < train.rows; ++r) {
      double d2 = 0;
      for (int c = 0; c < 3; ++c) {
        double diff = query.values[q * 3 + c] - train.values[r * 3 + c];
        d2 += diff * diff;
      }
      all.push_back({d2, train.labels[r]});
    }
    std::sort(all.begin(), all.end());
    const auto& distances = (*out)[q].Find("distances")->list();
    const auto& labels = (*out)[q].Find("labels")->list();
    ASSERT_EQ(distances.size(), 3u);
    for (int j = 0; j < 3; ++j) {
      EXPECT_NEAR(distances[j].AsDouble(), all[j].first, 1e-3 * (1 + all[j].first));
      EXPECT_EQ(labels[j].AsDouble(), all[j].second);
    }
  }
}

// A batch of a panel or more is searched by FlatKnn, a handful of rows by faiss: both give a
// row the same neighbours, whatever the metric and pre-transform of the flat index.
TEST_F(KnnTest, BatchSearchMatchesRowByRowSearch) {
  Dataset train = Blobs(4, 100, 10, 20, 2.0);
  Dataset test = Blobs(4, 10, 10, 21, 2.0);
  const std::vector<Hyperparameters> configs = {
      {},
      {{"index_metric", "INNER_PRODUCT"}},
      {{"index_metric", "COSINE"}},
      {{"dimension_reduction_type", "sign"}, {"dimension_reduction_target", "6"}}};
  for (size_t c = 0; c < configs.size(); ++c) {
    TrainingInput input = Input(Classifier(10, configs[c]), "m" + std::to_string(c));
    ASSERT_TRUE(TrainKnn(input, train, nullptr).ok());
    auto model = KnnModel::Load(input.model_dir);
    ASSERT_TRUE(model.ok());
    auto batch = (*model)->PredictVerbose(test);
    ASSERT_TRUE(batch.ok());
    ASSERT_EQ(batch->size(), 40u);
    for (int64_t r = 0; r < test.rows; ++r) {
      auto one = (*model)->PredictVerbose(test.Slice(r, r + 1));
      ASSERT_TRUE(one.ok());
      const Value& a = (*batch)[static_cast<size_t>(r)];
      const Value& b = (*one)[0];
      EXPECT_EQ(a.Find("predicted_label")->AsDouble(), b.Find("predicted_label")->AsDouble());
      const auto& da = a.Find("distances")->list();
      const auto& db = b.Find("distances")->list();
      ASSERT_EQ(da.size(), 5u);
      ASSERT_EQ(db.size(), 5u);
      for (size_t j = 0; j < 5; ++j) {
        EXPECT_NEAR(da[j].AsDouble(), db[j].AsDouble(), 1e-3 * (1 + std::abs(db[j].AsDouble())))
            << "config " << c << " row " << r << " rank " << j;
      }
    }
  }
}

// Class 0 points along angle 0, class 1 along angle 0.3 rad; `small` picks which class sits at
// magnitude ~1 (the other at ~10). Training and test sets swap the magnitudes, so the L2
// neighbours of a test point are the other class's points and only the direction tells.
Dataset ScaledDirections(int n, bool class0_small, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> jitter(-0.05f, 0.05f);
  std::uniform_real_distribution<float> scale(0.8f, 1.2f);
  Dataset d;
  d.cols = 2;
  for (int i = 0; i < n; ++i) {
    int c = i % 2;
    float a = (c == 0 ? 0.0f : 0.3f) + jitter(rng);
    float m = ((c == 0) == class0_small ? 1.0f : 10.0f) * scale(rng);
    d.values.insert(d.values.end(), {m * std::cos(a), m * std::sin(a)});
    d.labels.push_back(static_cast<float>(c));
    ++d.rows;
  }
  return d;
}

TEST_F(KnnTest, CosineMetricIgnoresMagnitude) {
  Dataset train = ScaledDirections(400, true, 12);
  Dataset test = ScaledDirections(100, false, 13);
  ASSERT_TRUE(
      TrainKnn(Input(Classifier(2, {{"index_metric", "COSINE"}}), "cos"), train, &test).ok());
  const double cosine = metrics_.values["test:accuracy"];
  EXPECT_GE(cosine, 0.95);
  ASSERT_TRUE(TrainKnn(Input(Classifier(2), "l2"), train, &test).ok());
  const double l2 = metrics_.values["test:accuracy"];
  EXPECT_LT(l2, 0.5);  // the metric really changes the neighbourhoods

  auto model = KnnModel::Load((dir_ / "cos").string());
  ASSERT_TRUE(model.ok());
  auto out = (*model)->PredictVerbose(test.Slice(0, 3));
  ASSERT_TRUE(out.ok());
  for (const auto& v : *out) {
    const auto& sims = v.Find("distances")->list();
    ASSERT_EQ(sims.size(), 5u);
    for (size_t j = 0; j < sims.size(); ++j) {
      EXPECT_LE(sims[j].AsDouble(), 1.0001);  // cosine similarities, most similar first
      EXPECT_GT(sims[j].AsDouble(), 0.99);
      if (j > 0) {
        EXPECT_LE(sims[j].AsDouble(), sims[j - 1].AsDouble());
      }
    }
  }
}

TEST_F(KnnTest, InnerProductIvfFlatTrains) {
  Dataset train = Directions(400, 14);
  Dataset test = Directions(100, 15);
  ASSERT_TRUE(TrainKnn(Input(Classifier(4, {{"index_metric", "INNER_PRODUCT"},
                                            {"index_type", "faiss.IVFFlat"}})),
                       train, &test)
                  .ok())
      << log_;
  EXPECT_TRUE(metrics_.values.count("test:accuracy"));
}

TEST_F(KnnTest, DimensionReductionKeepsNeighbourhoods) {
  Dataset train = Blobs(4, 150, 64, 16, 1.0);
  Dataset test = Blobs(4, 30, 64, 17, 1.0);
  for (std::string type : {"sign", "fjlt"}) {
    metrics_.values.clear();
    TrainingInput input = Input(
        Classifier(64, {{"dimension_reduction_type", type}, {"dimension_reduction_target", "12"}}),
        type);
    Status trained = TrainKnn(input, train, &test);
    ASSERT_TRUE(trained.ok()) << type << ": " << trained.message();
    EXPECT_GE(metrics_.values["test:accuracy"], 0.9) << type;
    EXPECT_NE(log_.find("Dimension reduction (" + type + "): 64 -> 12"), std::string::npos);
    auto model = KnnModel::Load(input.model_dir);
    ASSERT_TRUE(model.ok()) << type;
    EXPECT_EQ((*model)->feature_dim(), 64);
    auto predicted = (*model)->Predict(test);
    ASSERT_TRUE(predicted.ok());
    EXPECT_GE(Accuracy(*predicted, test), 0.9) << type;
  }
}

TEST_F(KnnTest, SamplesSampleSizeRowsDeterministically) {
  Dataset train = Blobs(2, 500, 4, 18, 1.0);
  Hyperparameters hp = Classifier(4, {{"sample_size", "300"}});
  ASSERT_TRUE(TrainKnn(Input(hp, "a"), train, nullptr).ok());
  ASSERT_TRUE(TrainKnn(Input(hp, "b"), train, nullptr).ok());
  EXPECT_NE(log_.find("Sampled 300 of 1000"), std::string::npos) << log_;
  auto read = [&](const std::string& model, const char* file) {
    std::ifstream in(dir_ / model / file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  auto meta = ParseJson(read("a", "knn-model.json"));
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->GetInt("num_points"), 300);
  EXPECT_EQ(read("a", "knn-labels.bin").size(), 300 * sizeof(float));
  EXPECT_EQ(read("a", "knn-labels.bin"), read("b", "knn-labels.bin"));
  EXPECT_EQ(read("a", "knn.faiss"), read("b", "knn.faiss"));
}

TEST_F(KnnTest, SparseTrainingDataIsDensified) {
  Dataset dense = Blobs(3, 60, 5, 19, 1.0);
  Dataset sparse;
  sparse.rows = dense.rows;
  sparse.cols = dense.cols;
  sparse.sparse = true;
  sparse.indptr = {0};
  for (int64_t r = 0; r < dense.rows; ++r) {
    for (int64_t c = 0; c < dense.cols; ++c) {
      sparse.indices.push_back(c);
      sparse.values.push_back(dense.values[r * dense.cols + c]);
    }
    sparse.indptr.push_back(static_cast<int64_t>(sparse.values.size()));
  }
  sparse.labels = dense.labels;
  TrainingInput input = Input(Classifier(5));
  ASSERT_TRUE(TrainKnn(input, sparse, &dense).ok());
  EXPECT_GE(metrics_.values["test:accuracy"], 0.95);

  // A sparse request may end before the last feature (libsvm): the rest are zeros.
  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok());
  Dataset query;
  query.rows = 1;
  query.cols = 3;
  query.sparse = true;
  query.indptr = {0, 1};
  query.indices = {2};
  query.values = {1.0f};
  auto out = (*model)->Predict(query);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE((*out)[0].Find("predicted_label")->is_number());
}

TEST_F(KnnTest, RejectsBadHyperparameters) {
  const Dataset train = Blobs(2, 20, 4, 20);
  struct Case {
    Hyperparameters hp;
    std::string expected;  // part of the message
  };
  Hyperparameters base = Classifier(4);
  auto with = [&](Hyperparameters extra, std::vector<std::string> drop = {}) {
    Hyperparameters hp = base;
    for (const auto& d : drop) hp.erase(d);
    for (auto& [k, v] : extra) hp[k] = v;
    return hp;
  };
  std::vector<Case> cases = {
      {with({}, {"feature_dim"}), "'feature_dim' is required"},
      {with({}, {"k"}), "'k' is required"},
      {with({}, {"predictor_type"}), "'predictor_type' is required"},
      {with({}, {"sample_size"}), "'sample_size' is required"},
      {with({{"k", "0"}}), "'k' = '0' is out of range"},
      {with({{"feature_dim", "x"}}), "'feature_dim' = 'x' is not an integer"},
      {with({{"predictor_type", "ranker"}}), "must be one of: classifier, regressor"},
      {with({{"sample_size", "-5"}}), "'sample_size' = '-5' is out of range"},
      {with({{"mini_batch_size", "0"}}), "'mini_batch_size' = '0' is out of range"},
      {with({{"dimension_reduction_type", "pca"}}), "must be one of: sign, fjlt"},
      {with({{"dimension_reduction_type", "sign"}}), "'dimension_reduction_target' is required"},
      {with({{"dimension_reduction_type", "sign"}, {"dimension_reduction_target", "4"}}),
       "'dimension_reduction_target' = '4' is out of range"},
      {with({{"dimension_reduction_target", "2"}}), "only valid with"},
      {with({{"index_type", "faiss.HNSW"}}), "faiss.Flat, faiss.IVFFlat, faiss.IVFPQ"},
      {with({{"index_metric", "L1"}}), "must be one of: L2, INNER_PRODUCT, COSINE"},
      {with({{"index_type", "faiss.IVFPQ"}, {"index_metric", "COSINE"}}),
       "not supported with index_type faiss.IVFPQ"},
      {with({{"faiss_index_ivf_nlists", "lots"}}), "must be 'auto' or a positive integer"},
      {with({{"faiss_index_ivf_nlists", "0"}}), "must be 'auto' or a positive integer"},
      {with({{"faiss_index_pq_m", "5"}}), "'faiss_index_pq_m' = '5' must be one of: 1, 2, 3, 4, 8"},
      {with({{"epochs", "3"}}), "'epochs' was unexpected"},
  };
  for (const auto& c : cases) {
    Status s = TrainKnn(Input(c.hp), train, nullptr);
    ASSERT_FALSE(s.ok()) << c.expected;
    EXPECT_EQ(s.code(), "ClientError") << c.expected;
    EXPECT_NE(s.message().find(c.expected), std::string::npos) << s.message();
  }
  // Through the Algorithm interface too, before any channel is read.
  TrainingInput input = Input(with({{"k", "0"}}));
  Status s = MakeKnnAlgorithm()->Train(input);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("'k' = '0'"), std::string::npos);
}

TEST_F(KnnTest, RejectsBadData) {
  Dataset train = Blobs(2, 20, 4, 21);
  Status s = TrainKnn(Input(Classifier(5)), train, nullptr);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("4 features per record but feature_dim is 5"), std::string::npos);

  Dataset unlabelled = train;
  unlabelled.labels.clear();
  s = TrainKnn(Input(Classifier(4)), unlabelled, nullptr);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("labelled"), std::string::npos);

  s = TrainKnn(Input(Classifier(4, {{"k", "50"}})), train, nullptr);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("exceeds the 40 sampled"), std::string::npos) << s.message();

  s = TrainKnn(
      Input(Classifier(4, {{"index_type", "faiss.IVFFlat"}, {"faiss_index_ivf_nlists", "41"}})),
      train, nullptr);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("'faiss_index_ivf_nlists' = '41' exceeds"), std::string::npos);

  Dataset nan = train;
  nan.values[3] = std::nanf("");
  s = TrainKnn(Input(Classifier(4)), nan, nullptr);
  EXPECT_EQ(s.code(), "ClientError");

  Dataset test_unlabelled = train;
  test_unlabelled.labels.clear();
  s = TrainKnn(Input(Classifier(4)), train, &test_unlabelled);
  EXPECT_EQ(s.code(), "ClientError");
}

TEST_F(KnnTest, PredictRejectsWrongFeatureCount) {
  Dataset train = Blobs(2, 20, 4, 22);
  TrainingInput input = Input(Classifier(4));
  ASSERT_TRUE(TrainKnn(input, train, nullptr).ok());
  auto model = KnnModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok());
  Dataset wrong = Blobs(2, 2, 3, 23);
  auto out = (*model)->Predict(wrong);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), "ClientError");
  EXPECT_NE(out.status().message().find("expects 4 features"), std::string::npos);
}

TEST_F(KnnTest, LoadRejectsMissingOrCorruptArtifacts) {
  auto missing = KnnModel::Load((dir_ / "nothing").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "ClientError");

  Dataset train = Blobs(2, 20, 4, 24);
  TrainingInput input = Input(Classifier(4));
  ASSERT_TRUE(TrainKnn(input, train, nullptr).ok());
  {
    std::ofstream corrupt(fs::path(input.model_dir) / "knn.faiss", std::ios::trunc);
    corrupt << "not an index";
  }
  auto bad = KnnModel::Load(input.model_dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "ClientError");
}

TEST_F(KnnTest, RegistersForTheKnnImage) {
  RegisterKnnAlgorithm();
  const AlgorithmInfo* info =
      FindAlgorithmForImage("382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "knn");
  EXPECT_EQ(info->training_content_types.front(), "text/csv");

  Dataset train = Blobs(2, 20, 4, 25);
  TrainingInput input = Input(Classifier(4));
  ASSERT_TRUE(TrainKnn(input, train, nullptr).ok());
  auto model = info->load(input.model_dir);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->feature_dim(), 4);
  auto out = (*model)->Predict(train.Slice(0, 4));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->size(), 4u);
}

TEST_F(KnnTest, TrainsFromCsvAndRecordIOChannels) {
  Dataset train = Blobs(3, 50, 4, 26, 1.0);
  Dataset test = Blobs(3, 20, 4, 27, 1.0);
  fs::create_directories(dir_ / "train");
  {
    std::ofstream csv(dir_ / "train" / "train.csv");
    for (int64_t r = 0; r < train.rows; ++r) {
      csv << train.labels[r];
      for (int c = 0; c < 4; ++c) csv << "," << train.values[r * 4 + c];
      csv << "\n";
    }
  }
  fs::create_directories(dir_ / "test");
  {
    std::ofstream rec(dir_ / "test" / "test.rec", std::ios::binary);
    rec << WriteRecordIOProtobuf(test);
  }
  TrainingInput input = Input(Classifier(4));
  input.channels["train"] = Channel{"train", (dir_ / "train").string(), "", false};
  input.channels["test"] =
      Channel{"test", (dir_ / "test").string(), "application/x-recordio-protobuf", false};
  Status s = MakeKnnAlgorithm()->Train(input);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_GE(metrics_.values["test:accuracy"], 0.95);
  EXPECT_NE(log_.find("Read 150 records from the train channel"), std::string::npos) << log_;

  // SageMaker's k-NN reads only CSV and RecordIO-protobuf, and the channels train and test.
  input.channels["train"].content_type = "text/libsvm";
  s = MakeKnnAlgorithm()->Train(input);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("text/libsvm"), std::string::npos) << s.message();
  input.channels["train"].content_type = "text/csv";
  input.channels["validation"] = input.channels["test"];
  s = MakeKnnAlgorithm()->Train(input);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("not 'validation'"), std::string::npos) << s.message();
  input.channels.clear();
  s = MakeKnnAlgorithm()->Train(input);
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("'train' channel"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace nimbus::ml
