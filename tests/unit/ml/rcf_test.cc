#include "ml/rcf/rcf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>

#include "ml/dataset_readers.h"

namespace nimbus::ml {
namespace {

constexpr int kDim = 3;

// Inliers: two Gaussian blobs (sd 1) at (0,0,0) and (6,6,0). Outliers: uniform directions
// at distance 6..9 from the origin blob, away from the other one.
void AddInlier(std::mt19937_64& rng, Dataset* d) {
  std::normal_distribution<double> z(0.0, 1.0);
  const double shift = (rng() & 1) ? 6.0 : 0.0;
  d->values.push_back(static_cast<float>(shift + z(rng)));
  d->values.push_back(static_cast<float>(shift + z(rng)));
  d->values.push_back(static_cast<float>(z(rng)));
  ++d->rows;
}

void AddOutlier(std::mt19937_64& rng, Dataset* d) {
  std::normal_distribution<double> z(0.0, 1.0);
  std::uniform_real_distribution<double> radius(6.0, 9.0);
  double v[kDim] = {-std::abs(z(rng)), -std::abs(z(rng)), z(rng)};
  double norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  double r = radius(rng);
  for (double x : v) d->values.push_back(static_cast<float>(x / norm * r));
  ++d->rows;
}

Dataset MakeTrain(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Dataset d;
  d.cols = kDim;
  for (int i = 0; i < n; ++i) AddInlier(rng, &d);
  return d;
}

// inliers then outliers, labels 0 / 1.
Dataset MakeTest(int inliers, int outliers, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Dataset d;
  d.cols = kDim;
  for (int i = 0; i < inliers; ++i) {
    AddInlier(rng, &d);
    d.labels.push_back(0);
  }
  for (int i = 0; i < outliers; ++i) {
    AddOutlier(rng, &d);
    d.labels.push_back(1);
  }
  return d;
}

double Auc(const std::vector<double>& scores, const std::vector<float>& labels) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (labels[i] == 0) continue;
    for (size_t j = 0; j < scores.size(); ++j) {
      if (labels[j] != 0) continue;
      wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
      pairs += 1;
    }
  }
  return wins / pairs;
}

RcfOptions Options(int64_t trees = 100, int64_t samples = 256) {
  RcfOptions o;
  o.feature_dim = kDim;
  o.num_trees = trees;
  o.num_samples_per_tree = samples;
  return o;
}

TEST(RcfTest, ScoresInjectedOutliersWellAboveInliers) {
  Dataset train = MakeTrain(3000, 1);
  std::vector<std::string> lines;
  auto model = FitRcf(train, Options(), [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->num_trees(), 100);
  EXPECT_TRUE(model->boxes_cached());
  Dataset test = MakeTest(500, 25, 2);
  auto scores = model->Score(test, 1);
  ASSERT_TRUE(scores.ok());
  EXPECT_GT(Auc(*scores, test.labels), 0.97);
  double inlier_mean = 0, outlier_mean = 0;
  for (size_t i = 0; i < scores->size(); ++i) {
    (test.labels[i] == 0 ? inlier_mean : outlier_mean) += (*scores)[i];
  }
  inlier_mean /= 500;
  outlier_mean /= 25;
  // Displacement-scale scores: ordinary records around 1, anomalies well above.
  EXPECT_GT(inlier_mean, 0.4);
  EXPECT_LT(inlier_mean, 1.5);
  EXPECT_GT(outlier_mean, 2 * inlier_mean);
  // The three-sigma rule SageMaker documents catches most of them.
  RcfEvaluation e = EvaluateRcfScores(*scores, test.labels);
  EXPECT_GT(e.f1, 0.7);
  EXPECT_GT(e.accuracy, 0.97);
  bool logged = false;
  for (const auto& l : lines) logged |= l.find("Anomaly scores of 2000 training records") == 0;
  EXPECT_TRUE(logged);
}

TEST(RcfTest, ScoresAreDeterministicAcrossThreadsAndBoxCaching) {
  Dataset train = MakeTrain(1000, 3);
  Dataset test = MakeTest(100, 5, 4);
  auto one = FitRcf(train, Options(60, 128), nullptr);
  RcfOptions threaded = Options(60, 128);
  threaded.num_threads = 2;
  auto two = FitRcf(train, threaded, nullptr);
  ASSERT_TRUE(one.ok() && two.ok());
  auto a = one->Score(test, 1);
  auto b = two->Score(test, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  // Without cached boxes the scorer rebuilds them from the leaves: same numbers.
  two->set_box_cache_limit(0);
  EXPECT_FALSE(two->boxes_cached());
  auto c = two->Score(test, 2);
  ASSERT_TRUE(c.ok());
  for (size_t i = 0; i < a->size(); ++i) EXPECT_DOUBLE_EQ((*a)[i], (*c)[i]);
}

TEST(RcfTest, DuplicatesShareALeafAndSmallDataSetsWork) {
  Dataset train;
  train.cols = kDim;
  for (int i = 0; i < 40; ++i) {  // 30 copies of one record, 10 of another
    const float v = i < 30 ? 1.0f : 2.0f;
    train.values.insert(train.values.end(), {v, v, v});
    ++train.rows;
  }
  auto model = FitRcf(train, Options(50, 256), nullptr);  // fewer records than samples
  ASSERT_TRUE(model.ok());
  Dataset query;
  query.cols = kDim;
  query.rows = 3;
  query.values = {1, 1, 1, 2, 2, 2, 40, -40, 40};
  auto s = model->Score(query, 1);
  ASSERT_TRUE(s.ok());
  EXPECT_LT((*s)[0], (*s)[1]);  // the heavier leaf is the more ordinary record
  EXPECT_GT((*s)[2], 2 * (*s)[1]);
}

TEST(RcfTest, ArtifactRoundTripsAndRejectsCorruption) {
  Dataset train = MakeTrain(500, 5);
  auto model = FitRcf(train, Options(50, 64), nullptr);
  ASSERT_TRUE(model.ok());
  std::string dir = testing::TempDir() + "/rcf_roundtrip";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(model->Save(dir).ok());
  auto loaded = RcfModel::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->num_trees(), 50);
  EXPECT_EQ((*loaded)->feature_dim(), kDim);
  Dataset test = MakeTest(20, 2, 6);
  auto before = model->Predict(test);
  auto after = (*loaded)->Predict(test);
  ASSERT_TRUE(before.ok() && after.ok());
  ASSERT_EQ(after->size(), 22u);
  EXPECT_EQ(*before, *after);
  EXPECT_TRUE((*after)[0].Find("score")->is_double());

  const std::string path = dir + "/rcf-model.bin";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  auto truncated = RcfModel::Load(dir);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), "ClientError");
  // The root's left child pointing back at the root would make scoring loop.
  std::string cyclic = bytes;
  const size_t first_node = 4 + 4 + 3 * 8 + 3 * 8;  // magic, version, header, tree header
  const int32_t zero = 0;
  std::memcpy(&cyclic[first_node + 4], &zero, sizeof(zero));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << cyclic;
  auto bad = RcfModel::Load(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("inconsistent tree"), std::string::npos);
  EXPECT_FALSE(RcfModel::Load(dir + "/missing").ok());

  Dataset wide;
  wide.rows = 1;
  wide.cols = kDim + 1;
  wide.values.assign(kDim + 1, 0.0f);
  EXPECT_EQ(model->Predict(wide).status().code(), "ClientError");
}

TEST(RcfTest, EvaluationUsesTheThreeSigmaRule) {
  std::vector<double> scores(100, 1.0);
  std::vector<float> labels(100, 0);
  for (int i = 0; i < 100; ++i) scores[static_cast<size_t>(i)] += 0.01 * (i % 5);
  scores[0] = 10;  // a caught anomaly
  labels[0] = 1;
  labels[1] = 1;  // a missed one
  scores[2] = 9;  // a false alarm
  RcfEvaluation e = EvaluateRcfScores(scores, labels);
  EXPECT_GT(e.threshold, 1.1);
  EXPECT_LT(e.threshold, 9);
  EXPECT_DOUBLE_EQ(e.precision, 0.5);
  EXPECT_DOUBLE_EQ(e.recall, 0.5);
  EXPECT_DOUBLE_EQ(e.f1, 0.5);
  EXPECT_DOUBLE_EQ(e.accuracy, 0.98);
  EXPECT_DOUBLE_EQ(e.negative_precision, 97.0 / 98.0);
  EXPECT_DOUBLE_EQ(e.negative_recall, 97.0 / 98.0);
}

Result<RcfOptions> Parse(Hyperparameters hp) { return ParseRcfHyperparameters(hp); }

TEST(RcfHyperparametersTest, DefaultsAndDocumentedRanges) {
  auto o = Parse({{"feature_dim", "3"}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->num_trees, 100);
  EXPECT_EQ(o->num_samples_per_tree, 256);
  EXPECT_TRUE(o->eval_accuracy && o->eval_precision_recall_fscore);
  auto set = Parse({{"feature_dim", "10000"},
                    {"num_trees", "50"},
                    {"num_samples_per_tree", "2048"},
                    {"eval_metrics", "[\"accuracy\"]"},
                    {"mini_batch_size", "1000"}});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->num_trees, 50);
  EXPECT_EQ(set->num_samples_per_tree, 2048);
  EXPECT_TRUE(set->eval_accuracy);
  EXPECT_FALSE(set->eval_precision_recall_fscore);

  struct Case {
    Hyperparameters hp;
    std::string message;
  };
  std::vector<Case> cases = {
      {{}, "Hyperparameter 'feature_dim' is required"},
      {{{"feature_dim", "10001"}},
       "'feature_dim' = '10001' is out of range: must be in [1, 10000]"},
      {{{"feature_dim", "3"}, {"num_trees", "49"}}, "must be in [50, 1000]"},
      {{{"feature_dim", "3"}, {"num_trees", "1001"}}, "must be in [50, 1000]"},
      {{{"feature_dim", "3"}, {"num_samples_per_tree", "0"}}, "must be in [1, 2048]"},
      {{{"feature_dim", "3"}, {"num_samples_per_tree", "2049"}}, "must be in [1, 2048]"},
      {{{"feature_dim", "3"}, {"eval_metrics", "['auc']"}},
       "must be a list of: accuracy, precision_recall_fscore"},
      {{{"feature_dim", "3"}, {"mini_batch_size", "0"}}, "out of range"},
      {{{"feature_dim", "3"}, {"k", "2"}}, "Additional hyperparameters are not allowed"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.hp);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), "ClientError");
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << r.status().message() << " lacks " << c.message;
  }
}

class RecordingMetrics : public MetricsReporter {
 public:
  void Report(const std::string& name, double value) override { values[name] = value; }
  std::map<std::string, double> values;
};

void WriteCsv(const std::string& path, const Dataset& d) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path);
  for (int64_t r = 0; r < d.rows; ++r) {
    if (d.has_labels()) out << d.labels[static_cast<size_t>(r)] << ",";
    for (int64_t c = 0; c < d.cols; ++c) out << (c ? "," : "") << d.At(r, c);
    out << "\n";
  }
}

TEST(RcfAlgorithmTest, TrainsAndReportsTestMetricsThroughTheRegistry) {
  RegisterRcfAlgorithm();
  const AlgorithmInfo* info =
      FindAlgorithmForImage("664544806723.dkr.ecr.eu-central-1.amazonaws.com/randomcutforest:1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "randomcutforest");
  std::string root = testing::TempDir() + "/rcf_job";
  std::filesystem::remove_all(root);
  WriteCsv(root + "/train/train.csv", MakeTrain(2000, 7));
  WriteCsv(root + "/test/test.csv", MakeTest(400, 20, 8));
  TrainingInput input;
  input.hyperparameters = {{"feature_dim", "3"}, {"num_trees", "50"}};
  input.channels = {{"train", Channel{"train", root + "/train", "text/csv;label_size=0", false}},
                    {"test", Channel{"test", root + "/test", "text/csv;label_size=1", false}}};
  input.model_dir = root + "/model";
  input.num_threads = 2;
  RecordingMetrics metrics;
  input.metrics = &metrics;
  std::vector<std::string> lines;
  input.log = [&](const std::string& l) { lines.push_back(l); };
  Status status = info->make()->Train(input);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_TRUE(metrics.values.count("test:f1"));
  EXPECT_GT(metrics.values["test:f1"], 0.7);
  EXPECT_GT(metrics.values["test:accuracy"], 0.97);
  EXPECT_TRUE(metrics.values.count("test:precision") && metrics.values.count("test:recall"));
  bool logged = false;
  for (const auto& l : lines) logged |= l.find("#test_score (algo-1) : ('accuracy'") == 0;
  EXPECT_TRUE(logged);

  auto model = info->load(input.model_dir);
  ASSERT_TRUE(model.ok());
  Dataset query = MakeTest(0, 1, 9);
  query.labels.clear();
  auto p = (*model)->Predict(query);
  ASSERT_TRUE(p.ok());
  EXPECT_GT((*p)[0].Find("score")->AsDouble(), 2.0);

  // A test channel without labels cannot be scored.
  input.channels["test"].content_type = "text/csv;label_size=0";
  WriteCsv(root + "/test/test.csv", MakeTrain(50, 10));
  metrics.values.clear();
  Status unlabeled = info->make()->Train(input);
  EXPECT_EQ(unlabeled.code(), "ClientError");
  EXPECT_NE(unlabeled.message().find("no labels"), std::string::npos);
  input.channels.erase("test");
  input.channels["validation"] = input.channels["train"];
  EXPECT_EQ(info->make()->Train(input).code(), "ClientError");
}

TEST(RcfTest, RejectsNonFiniteValues) {
  Dataset bad;
  bad.rows = 2;
  bad.cols = 2;
  bad.values = {1.0f, 2.0f, std::numeric_limits<float>::infinity(), 0.0f};
  RcfOptions o;
  o.feature_dim = 2;
  o.num_trees = 50;
  auto result = FitRcf(bad, o, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), "ClientError");
  EXPECT_NE(result.status().message().find("not a finite number"), std::string::npos);
  auto model = FitRcf(MakeTrain(100, 1), Options(50, 32), nullptr);
  ASSERT_TRUE(model.ok());
  Dataset query;
  query.rows = 1;
  query.cols = kDim;
  query.values = {0.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f};
  EXPECT_EQ(model->Predict(query).status().code(), "ClientError");
}

}  // namespace
}  // namespace nimbus::ml
