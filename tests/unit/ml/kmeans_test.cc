#include "ml/kmeans/kmeans.h"

#include "ml/dataset_readers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>

namespace nimbus::ml {
namespace {

struct Blobs {
  Dataset data;
  std::vector<int> truth;                  // the blob of every row
  std::vector<std::vector<double>> means;  // the blob centers
};

// `per` points around each of `k` centers spread on a wide grid (spacing 10, sd 0.5), rows
// interleaved so that no blob is contiguous.
Blobs MakeBlobs(int k, int dim, int per, uint64_t seed, double sd = 0.5) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, sd);
  std::uniform_real_distribution<double> where(-50.0, 50.0);
  Blobs b;
  for (int c = 0; c < k; ++c) {
    std::vector<double> m(static_cast<size_t>(dim));
    for (auto& v : m) v = where(rng);
    b.means.push_back(m);
  }
  b.data.cols = dim;
  for (int i = 0; i < per; ++i) {
    for (int c = 0; c < k; ++c) {
      for (int j = 0; j < dim; ++j) {
        b.data.values.push_back(static_cast<float>(
            b.means[static_cast<size_t>(c)][static_cast<size_t>(j)] + noise(rng)));
      }
      b.truth.push_back(c);
      ++b.data.rows;
    }
  }
  return b;
}

KmeansOptions Options(int64_t k, int64_t dim) {
  KmeansOptions o;
  o.k = k;
  o.feature_dim = dim;
  o.mini_batch_size = 500;
  return o;
}

// Fraction of rows whose cluster's majority blob is their own blob.
double Purity(const std::vector<int32_t>& cluster, const std::vector<int>& truth) {
  std::map<int32_t, std::map<int, int>> counts;
  for (size_t i = 0; i < cluster.size(); ++i) ++counts[cluster[i]][truth[i]];
  int agree = 0;
  for (const auto& [c, by_truth] : counts) {
    int top = 0;
    for (const auto& [t, n] : by_truth) top = std::max(top, n);
    agree += top;
  }
  return static_cast<double>(agree) / static_cast<double>(cluster.size());
}

std::set<int32_t> Distinct(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }

TEST(KmeansTest, RecoversWellSeparatedBlobsWithDefaults) {
  Blobs b = MakeBlobs(5, 4, 300, 1);
  auto model = FitKmeans(b.data, Options(5, 4), nullptr);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->k(), 5);
  std::vector<int32_t> cluster;
  std::vector<double> d2;
  ASSERT_TRUE(model->Assign(b.data, 1, &cluster, &d2).ok());
  EXPECT_GE(Purity(cluster, b.truth), 0.999);
  EXPECT_EQ(Distinct(cluster).size(), 5u);
  // Every true center has a learned center close by (the noise sd is 0.5).
  for (const auto& mean : b.means) {
    double nearest = 1e30;
    for (int64_t c = 0; c < model->k(); ++c) {
      double s = 0;
      for (int j = 0; j < 4; ++j) {
        double diff =
            model->centers()[static_cast<size_t>(c * 4 + j)] - mean[static_cast<size_t>(j)];
        s += diff * diff;
      }
      nearest = std::min(nearest, std::sqrt(s));
    }
    EXPECT_LT(nearest, 0.2);
  }
  auto score = ScoreKmeans(*model, b.data, 1);
  ASSERT_TRUE(score.ok());
  // Squared distance to the right center: 4 dims * sd^2 = 1 on average.
  EXPECT_NEAR(score->msd, 1.0, 0.15);
  EXPECT_NEAR(score->ssd, score->msd * b.data.rows, 1e-6 * score->ssd);
}

TEST(KmeansTest, KmeansPlusPlusSeedingFindsEveryBlobAndRandomIsNeverBetter) {
  // Ten blobs, no extra centers and a single Lloyd trial: the seeding decides the result.
  Blobs b = MakeBlobs(10, 3, 100, 7);
  for (uint64_t seed : {1u, 2u, 3u}) {
    KmeansOptions pp = Options(10, 3);
    pp.seed = seed;
    pp.extra_center_factor = 1;
    pp.local_lloyd_num_trials = 1;
    pp.init_method = "kmeans++";
    pp.local_lloyd_init_method = "kmeans++";
    KmeansOptions rnd = pp;
    rnd.init_method = "random";
    rnd.local_lloyd_init_method = "random";
    auto a = FitKmeans(b.data, pp, nullptr);
    auto r = FitKmeans(b.data, rnd, nullptr);
    ASSERT_TRUE(a.ok() && r.ok());
    std::vector<int32_t> cluster;
    std::vector<double> d2;
    ASSERT_TRUE(a->Assign(b.data, 1, &cluster, &d2).ok());
    EXPECT_GE(Purity(cluster, b.truth), 0.999) << "seed " << seed;
    EXPECT_EQ(Distinct(cluster).size(), 10u);
    double msd_pp = ScoreKmeans(*a, b.data, 1)->msd;
    double msd_rnd = ScoreKmeans(*r, b.data, 1)->msd;
    EXPECT_GE(msd_rnd, msd_pp * (1 - 1e-6)) << "seed " << seed;
  }
}

TEST(KmeansTest, ExtraCentersAndLocalLloydRepairARandomSeeding) {
  Blobs b = MakeBlobs(10, 3, 100, 7);
  KmeansOptions o = Options(10, 3);
  o.init_method = "random";
  o.extra_center_factor = 5;
  auto model = FitKmeans(b.data, o, nullptr);
  ASSERT_TRUE(model.ok());
  std::vector<int32_t> cluster;
  std::vector<double> d2;
  ASSERT_TRUE(model->Assign(b.data, 1, &cluster, &d2).ok());
  EXPECT_GE(Purity(cluster, b.truth), 0.999);
}

TEST(KmeansTest, LogsEpochProgressAndLocalLloyd) {
  Blobs b = MakeBlobs(3, 2, 50, 3);
  KmeansOptions o = Options(3, 2);
  o.epochs = 3;
  o.half_life_time_size = 100;
  std::vector<std::string> lines;
  auto model = FitKmeans(b.data, o, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(model.ok());
  int epochs = 0;
  bool lloyd = false;
  for (const auto& l : lines) {
    if (l.find("train msd <loss>=") != std::string::npos) ++epochs;
    if (l.find("Local Lloyd trial") != std::string::npos) lloyd = true;
  }
  EXPECT_EQ(epochs, 3);
  EXPECT_TRUE(lloyd);
  EXPECT_NE(lines.back().find("k=3"), std::string::npos);
}

TEST(KmeansTest, DeterministicAndThreadCountIndependent) {
  Blobs b = MakeBlobs(4, 5, 200, 11);
  KmeansOptions o = Options(4, 5);
  auto one = FitKmeans(b.data, o, nullptr);
  o.num_threads = 2;
  auto two = FitKmeans(b.data, o, nullptr);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->centers(), two->centers());
}

TEST(KmeansTest, SparseRecordsTrainLikeDenseOnes) {
  Blobs b = MakeBlobs(3, 6, 60, 5);
  Dataset sparse;
  sparse.rows = b.data.rows;
  sparse.cols = b.data.cols;
  sparse.sparse = true;
  sparse.indptr.push_back(0);
  for (int64_t r = 0; r < b.data.rows; ++r) {
    for (int64_t c = 0; c < b.data.cols; ++c) {
      float v = b.data.values[static_cast<size_t>(r * b.data.cols + c)];
      if (c % 2 == 0) {  // odd columns are zeroed out in both copies
        sparse.values.push_back(v);
        sparse.indices.push_back(c);
      } else {
        b.data.values[static_cast<size_t>(r * b.data.cols + c)] = 0;
      }
    }
    sparse.indptr.push_back(static_cast<int64_t>(sparse.values.size()));
  }
  auto dense_model = FitKmeans(b.data, Options(3, 6), nullptr);
  auto sparse_model = FitKmeans(sparse, Options(3, 6), nullptr);
  ASSERT_TRUE(dense_model.ok() && sparse_model.ok());
  EXPECT_EQ(dense_model->centers(), sparse_model->centers());
}

TEST(KmeansTest, RejectsBadData) {
  Blobs b = MakeBlobs(2, 3, 5, 1);
  auto wrong_dim = FitKmeans(b.data, Options(2, 4), nullptr);
  ASSERT_FALSE(wrong_dim.ok());
  EXPECT_EQ(wrong_dim.status().code(), "ClientError");
  EXPECT_NE(wrong_dim.status().message().find("feature_dim is 4"), std::string::npos);
  auto too_many = FitKmeans(b.data, Options(11, 3), nullptr);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("exceeds the number of training records"),
            std::string::npos);
  Dataset empty;
  empty.cols = 3;
  EXPECT_FALSE(FitKmeans(empty, Options(1, 3), nullptr).ok());
}

TEST(KmeansTest, ArtifactRoundTripsAndPredictsClusterAndDistance) {
  Blobs b = MakeBlobs(3, 2, 40, 9);
  auto model = FitKmeans(b.data, Options(3, 2), nullptr);
  ASSERT_TRUE(model.ok());
  std::string dir = testing::TempDir() + "/kmeans_roundtrip";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(model->Save(dir).ok());
  auto loaded = KmeansModel::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->centers(), model->centers());
  EXPECT_EQ((*loaded)->feature_dim(), 2);

  Dataset query = b.data.Slice(0, 10);
  auto before = model->Predict(query);
  auto after = (*loaded)->Predict(query);
  ASSERT_TRUE(before.ok() && after.ok());
  ASSERT_EQ(after->size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ((*before)[i], (*after)[i]);
    const Value& p = (*after)[i];
    ASSERT_TRUE(p.Has("closest_cluster") && p.Has("distance_to_cluster"));
    int64_t c = static_cast<int64_t>(p.Find("closest_cluster")->AsDouble());
    double dx = query.At(static_cast<int64_t>(i), 0) - model->centers()[static_cast<size_t>(c * 2)];
    double dy =
        query.At(static_cast<int64_t>(i), 1) - model->centers()[static_cast<size_t>(c * 2 + 1)];
    EXPECT_NEAR(p.Find("distance_to_cluster")->AsDouble(), std::sqrt(dx * dx + dy * dy), 1e-5);
  }
  Dataset wide;
  wide.rows = 1;
  wide.cols = 3;
  wide.values = {1, 2, 3};
  EXPECT_EQ((*loaded)->Predict(wide).status().code(), "ClientError");
}

TEST(KmeansTest, LoadRejectsMissingOrCorruptArtifacts) {
  std::string dir = testing::TempDir() + "/kmeans_corrupt";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  EXPECT_FALSE(KmeansModel::Load(dir).ok());
  std::ofstream(dir + "/kmeans-model.json")
      << "{\"format\": \"nimbus-kmeans\", \"feature_dim\": 2, "
         "\"centers\": [[1, 2], [3]]}";
  auto bad = KmeansModel::Load(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not valid"), std::string::npos);
}

Result<KmeansOptions> Parse(Hyperparameters hp) { return ParseKmeansHyperparameters(hp); }

TEST(KmeansHyperparametersTest, DefaultsMatchSageMaker) {
  auto o = Parse({{"k", "3"}, {"feature_dim", "10"}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->mini_batch_size, 5000);
  EXPECT_EQ(o->epochs, 1);
  EXPECT_EQ(o->init_method, "random");
  EXPECT_EQ(o->local_lloyd_init_method, "kmeans++");
  EXPECT_EQ(o->local_lloyd_max_iter, 300);
  EXPECT_DOUBLE_EQ(o->local_lloyd_tol, 1e-4);
  EXPECT_EQ(o->local_lloyd_num_trials, 0);
  EXPECT_EQ(o->half_life_time_size, 0);
  EXPECT_EQ(o->extra_center_factor, 0);
  EXPECT_TRUE(o->eval_msd);
  EXPECT_FALSE(o->eval_ssd);
}

TEST(KmeansHyperparametersTest, ReadsEveryDocumentedOne) {
  auto o = Parse({{"k", "3"},
                  {"feature_dim", "10"},
                  {"mini_batch_size", "100"},
                  {"epochs", "4"},
                  {"init_method", "kmeans++"},
                  {"local_lloyd_init_method", "random"},
                  {"local_lloyd_max_iter", "50"},
                  {"local_lloyd_tol", "0.01"},
                  {"local_lloyd_num_trials", "3"},
                  {"half_life_time_size", "1000"},
                  {"extra_center_factor", "7"},
                  {"eval_metrics", "[\"msd\",\"ssd\"]"},
                  {"force_dense", "True"},
                  {"_kvstore", "dist_sync"}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->mini_batch_size, 100);
  EXPECT_EQ(o->epochs, 4);
  EXPECT_EQ(o->init_method, "kmeans++");
  EXPECT_EQ(o->local_lloyd_init_method, "random");
  EXPECT_EQ(o->local_lloyd_max_iter, 50);
  EXPECT_DOUBLE_EQ(o->local_lloyd_tol, 0.01);
  EXPECT_EQ(o->local_lloyd_num_trials, 3);
  EXPECT_EQ(o->half_life_time_size, 1000);
  EXPECT_EQ(o->extra_center_factor, 7);
  EXPECT_TRUE(o->eval_msd && o->eval_ssd);
  EXPECT_EQ(Parse({{"k", "3"}, {"feature_dim", "1"}, {"extra_center_factor", "auto"}})
                ->extra_center_factor,
            0);
  auto ssd = Parse({{"k", "3"}, {"feature_dim", "1"}, {"eval_metrics", "['ssd']"}});
  ASSERT_TRUE(ssd.ok());
  EXPECT_FALSE(ssd->eval_msd);
  EXPECT_TRUE(ssd->eval_ssd);
  EXPECT_TRUE(
      Parse({{"k", "3"}, {"feature_dim", "1"}, {"eval_metrics", "[\\\"msd\\\"]"}})->eval_msd);
}

TEST(KmeansHyperparametersTest, RejectsBadValuesWithClientErrors) {
  struct Case {
    Hyperparameters hp;
    std::string message;
  };
  std::vector<Case> cases = {
      {{{"feature_dim", "2"}}, "Hyperparameter 'k' is required"},
      {{{"k", "2"}}, "Hyperparameter 'feature_dim' is required"},
      {{{"k", "0"}, {"feature_dim", "2"}}, "'k' = '0' is out of range"},
      {{{"k", "two"}, {"feature_dim", "2"}}, "is not an integer"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"epochs", "0"}}, "'epochs' = '0' is out of range"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"mini_batch_size", "-5"}}, "'mini_batch_size'"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"init_method", "kmeans||"}}, "must be one of"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"local_lloyd_init_method", "x"}}, "must be one of"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"local_lloyd_tol", "2"}}, "out of range"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"local_lloyd_max_iter", "0"}}, "out of range"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"half_life_time_size", "-1"}}, "out of range"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"extra_center_factor", "0"}},
       "must be 'auto' or a positive integer"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"local_lloyd_num_trials", "many"}},
       "must be 'auto' or a positive integer"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"eval_metrics", "[\"mse\"]"}},
       "'eval_metrics' = '[\"mse\"]' must be a JSON list of: msd, ssd"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"eval_metrics", "[]"}}, "must be a JSON list"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"force_dense", "maybe"}}, "must be true or false"},
      {{{"k", "2"}, {"feature_dim", "2"}, {"num_clusters", "2"}},
       "Additional hyperparameters are not allowed ('num_clusters' was unexpected)"},
  };
  for (const auto& c : cases) {
    auto o = Parse(c.hp);
    ASSERT_FALSE(o.ok()) << c.message;
    EXPECT_EQ(o.status().code(), "ClientError");
    EXPECT_NE(o.status().message().find(c.message), std::string::npos)
        << o.status().message() << " lacks " << c.message;
  }
}

TEST(KmeansRegistryTest, RegistersUnderItsImageRepository) {
  RegisterKmeansAlgorithm();
  const AlgorithmInfo* info =
      FindAlgorithmForImage("382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "kmeans");
  ASSERT_FALSE(info->training_content_types.empty());
  EXPECT_EQ(info->training_content_types[0], "application/x-recordio-protobuf");
  ASSERT_TRUE(info->make && info->load);
  EXPECT_NE(info->make(), nullptr);

  Blobs b = MakeBlobs(2, 2, 20, 4);
  auto model = FitKmeans(b.data, Options(2, 2), nullptr);
  ASSERT_TRUE(model.ok());
  std::string dir = testing::TempDir() + "/kmeans_registry";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(model->Save(dir).ok());
  auto loaded = info->load(dir);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->feature_dim(), 2);
  EXPECT_EQ((*loaded)->Predict(b.data)->size(), static_cast<size_t>(b.data.rows));
}

class RecordingMetrics : public MetricsReporter {
 public:
  void Report(const std::string& name, double value) override { values[name] = value; }
  std::map<std::string, double> values;
};

std::string WriteCsv(const std::string& dir, const Dataset& data) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/part-0.csv");
  for (int64_t r = 0; r < data.rows; ++r) {
    for (int64_t c = 0; c < data.cols; ++c) out << (c ? "," : "") << data.At(r, c);
    out << "\n";
  }
  return dir;
}

TEST(KmeansAlgorithmTest, TrainsFromCsvAndRecordIOChannelsAndReportsTestMetrics) {
  RegisterKmeansAlgorithm();
  const AlgorithmInfo* info = FindAlgorithm("kmeans");
  ASSERT_NE(info, nullptr);
  Blobs b = MakeBlobs(3, 4, 100, 21);
  std::string root = testing::TempDir() + "/kmeans_job";
  std::filesystem::remove_all(root);

  TrainingInput input;
  input.hyperparameters = {{"k", "3"},
                           {"feature_dim", "4"},
                           {"eval_metrics", "[\"msd\",\"ssd\"]"},
                           {"mini_batch_size", "100"}};
  Channel train{"train", WriteCsv(root + "/train", b.data), "text/csv", false};
  // The test channel in RecordIO-protobuf, SageMaker's default content type.
  std::filesystem::create_directories(root + "/test");
  std::ofstream(root + "/test/part-0.pbr", std::ios::binary)
      << WriteRecordIOProtobuf(b.data.Slice(0, 60));
  Channel test{"test", root + "/test", "", false};
  input.channels = {{"train", train}, {"test", test}};
  input.model_dir = root + "/model";
  RecordingMetrics metrics;
  input.metrics = &metrics;
  std::vector<std::string> lines;
  input.log = [&](const std::string& l) { lines.push_back(l); };
  Status status = info->make()->Train(input);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_TRUE(metrics.values.count("test:msd"));
  ASSERT_TRUE(metrics.values.count("test:ssd"));
  EXPECT_NEAR(metrics.values["test:msd"], 1.0, 0.3);  // 4 dims * sd^2
  EXPECT_NEAR(metrics.values["test:ssd"], metrics.values["test:msd"] * 60, 1e-6 * 60);
  bool test_line = false;
  for (const auto& l : lines) test_line |= l.find("#test_score (algo-1) : ('msd'") == 0;
  EXPECT_TRUE(test_line);

  auto model = info->load(input.model_dir);
  ASSERT_TRUE(model.ok());
  std::vector<int32_t> cluster;
  auto predictions = (*model)->Predict(b.data);
  ASSERT_TRUE(predictions.ok());
  for (const Value& p : *predictions) {
    cluster.push_back(static_cast<int32_t>(p.Find("closest_cluster")->AsDouble()));
  }
  EXPECT_GE(Purity(cluster, b.truth), 0.999);
}

TEST(KmeansAlgorithmTest, FailsWithClientErrorsOnBadJobs) {
  RegisterKmeansAlgorithm();
  const AlgorithmInfo* info = FindAlgorithm("kmeans");
  std::string root = testing::TempDir() + "/kmeans_badjob";
  std::filesystem::remove_all(root);
  Blobs b = MakeBlobs(2, 2, 10, 1);
  TrainingInput input;
  input.model_dir = root + "/model";
  RecordingMetrics metrics;
  input.metrics = &metrics;
  input.hyperparameters = {{"k", "2"}};
  Channel train{"train", WriteCsv(root + "/train", b.data), "text/csv", false};
  input.channels = {{"train", train}};
  EXPECT_EQ(info->make()->Train(input).message(), "Hyperparameter 'feature_dim' is required");
  input.hyperparameters = {{"k", "2"}, {"feature_dim", "2"}};
  input.channels = {{"validation", train}};
  EXPECT_EQ(info->make()->Train(input).code(), "ClientError");
  input.channels = {{"train", train}};
  input.hyperparameters = {{"k", "2"}, {"feature_dim", "3"}};
  Status wrong = info->make()->Train(input);
  EXPECT_EQ(wrong.code(), "ClientError");
  EXPECT_TRUE(metrics.values.empty());
}

TEST(KmeansTest, RejectsNonFiniteValues) {
  Dataset bad;
  bad.rows = 2;
  bad.cols = 2;
  bad.values = {1.0f, 2.0f, std::numeric_limits<float>::infinity(), 0.0f};
  auto result = FitKmeans(bad, Options(1, 2), nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), "ClientError");
  EXPECT_NE(result.status().message().find("not a finite number"), std::string::npos);
}

}  // namespace
}  // namespace nimbus::ml
