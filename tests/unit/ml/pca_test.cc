#include "ml/pca/pca.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "ml/dataset_readers.h"

namespace nimbus::ml {
namespace {

constexpr int kDim = 6;

// Three known orthonormal directions with standard deviations 5, 3 and 2, plus isotropic
// noise (sd 0.1) and an offset: PCA must find exactly these directions, in this order.
const double kU1[kDim] = {0.5, 0.5, 0.5, 0.5, 0, 0};
const double kU2[kDim] = {0.5, -0.5, 0.5, -0.5, 0, 0};
const double kU3[kDim] = {0, 0, 0, 0, M_SQRT1_2, M_SQRT1_2};
const double kOffset[kDim] = {5, -3, 2, 0, 1, 7};

Dataset MakeData(int n, uint64_t seed, bool offset = true) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  Dataset d;
  d.rows = n;
  d.cols = kDim;
  for (int i = 0; i < n; ++i) {
    double a = 5 * z(rng), b = 3 * z(rng), c = 2 * z(rng);
    for (int j = 0; j < kDim; ++j) {
      double v = a * kU1[j] + b * kU2[j] + c * kU3[j] + 0.1 * z(rng) + (offset ? kOffset[j] : 0);
      d.values.push_back(static_cast<float>(v));
    }
  }
  return d;
}

PcaOptions Options(int64_t nc, const std::string& mode = "regular") {
  PcaOptions o;
  o.feature_dim = kDim;
  o.num_components = nc;
  o.mini_batch_size = 300;
  o.algorithm_mode = mode;
  return o;
}

// |cos| between component j of the model and direction u.
double Alignment(const PcaModel& m, int64_t j, const double* u) {
  double dot = 0, norm = 0;
  for (int i = 0; i < kDim; ++i) {
    double v = m.components()[static_cast<size_t>(i * m.num_components() + j)];
    dot += v * u[i];
    norm += v * v;
  }
  return std::abs(dot) / std::sqrt(norm);
}

TEST(PcaTest, RegularModeFindsTheTrueDirectionsInSageMakersOrder) {
  Dataset data = MakeData(3000, 1);
  auto model = FitPca(data, Options(3), nullptr);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ(model->num_components(), 3);
  // Ascending singular values: the last component is the top one.
  EXPECT_GT(Alignment(*model, 2, kU1), 0.999);
  EXPECT_GT(Alignment(*model, 1, kU2), 0.999);
  EXPECT_GT(Alignment(*model, 0, kU3), 0.999);
  const auto& s = model->singular_values();
  EXPECT_LT(s[0], s[1]);
  EXPECT_LT(s[1], s[2]);
  // s^2 / (n - 1) is the variance along the component.
  EXPECT_NEAR(s[2] * s[2] / 2999.0, 25.0, 2.5);
  EXPECT_NEAR(s[1] * s[1] / 2999.0, 9.0, 0.9);
  EXPECT_NEAR(s[0] * s[0] / 2999.0, 4.0, 0.4);
  for (int j = 0; j < kDim; ++j)
    EXPECT_NEAR(model->mean()[static_cast<size_t>(j)], kOffset[j], 0.25);
  // Signs are canonical: the largest-magnitude coordinate of each component is positive.
  for (int64_t j = 0; j < 3; ++j) {
    float top = 0;
    for (int i = 0; i < kDim; ++i) {
      float v = model->components()[static_cast<size_t>(i * 3 + j)];
      if (std::abs(v) > std::abs(top)) top = v;
    }
    EXPECT_GT(top, 0);
  }
}

TEST(PcaTest, RandomizedModeMatchesRegular) {
  Dataset data = MakeData(3000, 2);
  auto regular = FitPca(data, Options(2), nullptr);
  PcaOptions o = Options(2, "randomized");
  o.extra_components = 1;  // a sketch of 3 columns in 6 dimensions: the power passes matter
  auto randomized = FitPca(data, o, nullptr);
  ASSERT_TRUE(regular.ok() && randomized.ok());
  for (int64_t j = 0; j < 2; ++j) {
    double dot = 0;
    for (int i = 0; i < kDim; ++i) {
      dot += regular->components()[static_cast<size_t>(i * 2 + j)] *
             randomized->components()[static_cast<size_t>(i * 2 + j)];
    }
    EXPECT_GT(dot, 0.999) << "component " << j;  // same sign convention, same direction
    EXPECT_NEAR(randomized->singular_values()[static_cast<size_t>(j)],
                regular->singular_values()[static_cast<size_t>(j)],
                1e-3 * regular->singular_values()[static_cast<size_t>(j)]);
  }
  // The default sketch (extra_components = -1: max(10, num_components)) covers all 6
  // dimensions here, which makes randomized exact.
  auto full = FitPca(data, Options(2, "randomized"), nullptr);
  ASSERT_TRUE(full.ok());
  EXPECT_NEAR(full->singular_values()[1], regular->singular_values()[1],
              1e-6 * regular->singular_values()[1]);
}

// Randomized mode iterates on the scatter matrix when it is small next to the sketch and
// streams the records otherwise: both agree with regular mode on wide records with a large
// mean (which the float products of the scatter must not swamp).
TEST(PcaTest, RandomizedModeAgreesWithRegularWhetherItFormsTheScatterOrStreams) {
  const int dim = 120;
  std::mt19937_64 rng(9);
  std::normal_distribution<double> z(0.0, 1.0);
  std::vector<double> u1(dim), u2(dim), offset(dim);
  for (int j = 0; j < dim; ++j) {
    u1[j] = z(rng);
    u2[j] = z(rng);
    offset[j] = 50 + 10 * z(rng);
  }
  Dataset data;
  data.rows = 4000;
  data.cols = dim;
  for (int i = 0; i < data.rows; ++i) {
    const double a = 3 * z(rng), b = 0.1 * z(rng);
    for (int j = 0; j < dim; ++j) {
      data.values.push_back(static_cast<float>(a * u1[j] + b * u2[j] + 0.02 * z(rng) + offset[j]));
    }
  }
  for (bool subtract_mean : {true, false}) {
    PcaOptions o = Options(2);
    o.feature_dim = dim;
    o.subtract_mean = subtract_mean;
    auto regular = FitPca(data, o, nullptr);
    ASSERT_TRUE(regular.ok());
    o.algorithm_mode = "randomized";
    for (int64_t extra : {1, 30}) {  // sketches of 3 (streams: 120 > 8 * 3) and 32 (forms it)
      SCOPED_TRACE("subtract_mean " + std::to_string(subtract_mean) + " extra " +
                   std::to_string(extra));
      o.extra_components = extra;
      auto randomized = FitPca(data, o, nullptr);
      ASSERT_TRUE(randomized.ok());
      for (int64_t j = 0; j < 2; ++j) {
        double dot = 0;
        for (int i = 0; i < dim; ++i) {
          dot += regular->components()[static_cast<size_t>(i * 2 + j)] *
                 randomized->components()[static_cast<size_t>(i * 2 + j)];
        }
        EXPECT_GT(dot, 0.999) << "component " << j;
        EXPECT_NEAR(randomized->singular_values()[static_cast<size_t>(j)],
                    regular->singular_values()[static_cast<size_t>(j)],
                    1e-3 * regular->singular_values()[static_cast<size_t>(j)]);
      }
      for (int j = 0; j < dim; ++j) {
        EXPECT_NEAR(randomized->mean()[static_cast<size_t>(j)],
                    regular->mean()[static_cast<size_t>(j)], 1e-3);
      }
    }
  }
}

TEST(PcaTest, ProjectionIsCenteredDotProductAndReconstructs) {
  Dataset data = MakeData(1000, 3);
  auto model = FitPca(data, Options(3), nullptr);
  ASSERT_TRUE(model.ok());
  Dataset query = data.Slice(0, 5);
  auto predictions = model->Predict(query);
  ASSERT_TRUE(predictions.ok());
  ASSERT_EQ(predictions->size(), 5u);
  for (int64_t r = 0; r < 5; ++r) {
    const Value* projection = (*predictions)[static_cast<size_t>(r)].Find("projection");
    ASSERT_NE(projection, nullptr);
    ASSERT_EQ(projection->size(), 3u);
    for (int64_t j = 0; j < 3; ++j) {
      double expected = 0;
      for (int i = 0; i < kDim; ++i) {
        expected += (query.At(r, i) - model->mean()[static_cast<size_t>(i)]) *
                    model->components()[static_cast<size_t>(i * 3 + j)];
      }
      EXPECT_NEAR(projection->list()[static_cast<size_t>(j)].AsDouble(), expected, 1e-4);
    }
  }
  // Three components leave three noise dimensions of variance 0.01 each.
  auto error = PcaReconstructionError(*model, data);
  ASSERT_TRUE(error.ok());
  EXPECT_NEAR(*error, 0.03, 0.01);
  auto all = FitPca(data, Options(kDim), nullptr);
  ASSERT_TRUE(all.ok());
  EXPECT_LT(*PcaReconstructionError(*all, data), 1e-6);
}

TEST(PcaTest, WithoutMeanSubtractionTheOffsetDominates) {
  Dataset data = MakeData(1000, 4);
  PcaOptions o = Options(1);
  o.subtract_mean = false;
  auto model = FitPca(data, o, nullptr);
  ASSERT_TRUE(model.ok());
  EXPECT_FALSE(model->subtract_mean());
  double norm = 0;
  for (double v : kOffset) norm += v * v;
  double dot = 0;
  for (int i = 0; i < kDim; ++i) dot += model->components()[static_cast<size_t>(i)] * kOffset[i];
  // The uncentered top direction leans on the offset (|offset| ~ 9.4 vs sd 5).
  EXPECT_GT(std::abs(dot) / std::sqrt(norm), 0.7);
  auto p = model->Predict(data.Slice(0, 1));
  double expected = 0;
  for (int i = 0; i < kDim; ++i)
    expected += data.At(0, i) * model->components()[static_cast<size_t>(i)];
  EXPECT_NEAR((*p)[0].Find("projection")->list()[0].AsDouble(), expected, 1e-3);
}

TEST(PcaTest, SparseRecordsAndThreadsGiveTheSameModel) {
  Dataset data = MakeData(800, 5, /*offset=*/false);
  Dataset sparse;
  sparse.rows = data.rows;
  sparse.cols = data.cols;
  sparse.sparse = true;
  sparse.indptr.push_back(0);
  for (int64_t r = 0; r < data.rows; ++r) {
    for (int64_t c = 0; c < data.cols; ++c) {
      sparse.values.push_back(data.At(r, c));
      sparse.indices.push_back(c);
    }
    sparse.indptr.push_back(static_cast<int64_t>(sparse.values.size()));
  }
  auto dense_model = FitPca(data, Options(2), nullptr);
  PcaOptions threaded = Options(2);
  threaded.num_threads = 2;
  threaded.mini_batch_size = 800;
  auto sparse_model = FitPca(sparse, threaded, nullptr);
  ASSERT_TRUE(dense_model.ok() && sparse_model.ok());
  for (size_t i = 0; i < dense_model->components().size(); ++i) {
    EXPECT_NEAR(dense_model->components()[i], sparse_model->components()[i], 1e-5);
  }
}

TEST(PcaTest, ArtifactRoundTrips) {
  Dataset data = MakeData(500, 6);
  auto model = FitPca(data, Options(2), nullptr);
  ASSERT_TRUE(model.ok());
  std::string dir = testing::TempDir() + "/pca_roundtrip";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(model->Save(dir).ok());
  auto loaded = PcaModel::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->components(), model->components());
  EXPECT_EQ((*loaded)->singular_values(), model->singular_values());
  EXPECT_EQ((*loaded)->mean(), model->mean());
  EXPECT_EQ((*loaded)->feature_dim(), kDim);
  auto a = model->Predict(data.Slice(0, 20));
  auto b = (*loaded)->Predict(data.Slice(0, 20));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);

  std::ofstream(dir + "/pca-model.json") << "{\"format\": \"nimbus-pca\", \"feature_dim\": 2, "
                                            "\"num_components\": 1, \"mean\": [0, 0], \"s\": [1], "
                                            "\"v\": [[1]]}";
  auto bad = PcaModel::Load(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("feature_dim rows"), std::string::npos);
  EXPECT_FALSE(PcaModel::Load(dir + "/missing").ok());
  Dataset wide;
  wide.rows = 1;
  wide.cols = kDim + 1;
  wide.values.assign(kDim + 1, 1.0f);
  EXPECT_EQ((*loaded)->Predict(wide).status().code(), "ClientError");
}

Result<PcaOptions> Parse(Hyperparameters hp) { return ParsePcaHyperparameters(hp); }

TEST(PcaHyperparametersTest, ReadsDocumentedOnesWithDefaults) {
  auto o = Parse({{"feature_dim", "50"}, {"mini_batch_size", "200"}, {"num_components", "5"}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->algorithm_mode, "regular");
  EXPECT_TRUE(o->subtract_mean);
  EXPECT_EQ(o->extra_components, -1);
  auto r = Parse({{"feature_dim", "50"},
                  {"mini_batch_size", "200"},
                  {"num_components", "5"},
                  {"algorithm_mode", "randomized"},
                  {"subtract_mean", "False"},
                  {"extra_components", "20"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->algorithm_mode, "randomized");
  EXPECT_FALSE(r->subtract_mean);
  EXPECT_EQ(r->extra_components, 20);
}

TEST(PcaHyperparametersTest, RejectsBadValuesWithClientErrors) {
  const Hyperparameters base = {
      {"feature_dim", "10"}, {"mini_batch_size", "100"}, {"num_components", "3"}};
  auto with = [&](const std::string& name, const std::string& value) {
    Hyperparameters hp = base;
    hp[name] = value;
    return hp;
  };
  auto without = [&](const std::string& name) {
    Hyperparameters hp = base;
    hp.erase(name);
    return hp;
  };
  struct Case {
    Hyperparameters hp;
    std::string message;
  };
  std::vector<Case> cases = {
      {without("feature_dim"), "Hyperparameter 'feature_dim' is required"},
      {without("mini_batch_size"), "Hyperparameter 'mini_batch_size' is required"},
      {without("num_components"), "Hyperparameter 'num_components' is required"},
      {with("num_components", "0"), "out of range"},
      {with("num_components", "11"), "'num_components' = '11' must not exceed feature_dim (10)"},
      {with("algorithm_mode", "fast"), "must be one of: regular, randomized"},
      {with("subtract_mean", "yes"), "must be true or false"},
      {with("extra_components", "-2"), "out of range"},
      {with("mini_batch_size", "0"), "out of range"},
      {with("feature_dim", "x"), "is not an integer"},
      {with("k", "3"), "Additional hyperparameters are not allowed ('k' was unexpected)"},
  };
  for (const auto& c : cases) {
    auto o = Parse(c.hp);
    ASSERT_FALSE(o.ok()) << c.message;
    EXPECT_EQ(o.status().code(), "ClientError");
    EXPECT_NE(o.status().message().find(c.message), std::string::npos)
        << o.status().message() << " lacks " << c.message;
  }
}

TEST(PcaAlgorithmTest, TrainsFromChannelsThroughTheRegistry) {
  RegisterPcaAlgorithm();
  const AlgorithmInfo* info =
      FindAlgorithmForImage("174872318107.dkr.ecr.us-west-2.amazonaws.com/pca:latest");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "pca");
  std::string root = testing::TempDir() + "/pca_job";
  std::filesystem::remove_all(root);
  Dataset data = MakeData(600, 8);
  std::filesystem::create_directories(root + "/train");
  std::filesystem::create_directories(root + "/test");
  {
    std::ofstream csv(root + "/train/data.csv");
    for (int64_t r = 0; r < data.rows; ++r) {
      for (int64_t c = 0; c < data.cols; ++c) csv << (c ? "," : "") << data.At(r, c);
      csv << "\n";
    }
  }
  std::ofstream(root + "/test/data.pbr", std::ios::binary)
      << WriteRecordIOProtobuf(data.Slice(0, 100));
  TrainingInput input;
  input.hyperparameters = {{"feature_dim", "6"},
                           {"mini_batch_size", "100"},
                           {"num_components", "3"},
                           {"algorithm_mode", "randomized"}};
  input.channels = {{"train", Channel{"train", root + "/train", "text/csv", false}},
                    {"test", Channel{"test", root + "/test", "", false}}};
  input.model_dir = root + "/model";
  std::vector<std::string> lines;
  input.log = [&](const std::string& l) { lines.push_back(l); };
  Status status = info->make()->Train(input);
  ASSERT_TRUE(status.ok()) << status.ToString();
  bool reported = false;
  for (const auto& l : lines)
    reported |= l.find("mean squared reconstruction error") != std::string::npos;
  EXPECT_TRUE(reported);
  auto model = info->load(input.model_dir);
  ASSERT_TRUE(model.ok());
  auto p = (*model)->Predict(data.Slice(0, 3));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].Find("projection")->size(), 3u);

  input.hyperparameters["num_components"] = "7";
  EXPECT_EQ(info->make()->Train(input).code(), "ClientError");
  input.hyperparameters["num_components"] = "3";
  input.channels.erase("train");
  EXPECT_EQ(info->make()->Train(input).message(), "Channel 'train' is required");
}

TEST(PcaTest, RejectsNonFiniteValues) {
  Dataset bad;
  bad.rows = 2;
  bad.cols = 2;
  bad.values = {1.0f, 2.0f, std::numeric_limits<float>::infinity(), 0.0f};
  PcaOptions o;
  o.feature_dim = 2;
  o.num_components = 1;
  auto result = FitPca(bad, o, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), "ClientError");
  EXPECT_NE(result.status().message().find("not a finite number"), std::string::npos);
}

}  // namespace
}  // namespace nimbus::ml
