// TreeEnsemble against libxgboost: boosters trained here with the C API, for every objective
// the ensemble accepts, must predict what XGBoosterPredict predicts on 1000 random rows
// (dense with and without NaN, CSR sparse, rows shorter than the model) and on rows at the
// models' own split points; models outside its reach must be refused (and still served by
// XgboostModel through libxgboost).
#include "ml/xgboost/tree_ensemble.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ml/xgboost/internal/xgb_api.h"
#include "ml/xgboost/xgboost_model.h"
#include "ml/xgboost/xgboost_train.h"

namespace nimbus::ml {
namespace {

namespace fs = std::filesystem;
using Params = std::vector<std::pair<std::string, std::string>>;
using xgb_internal::Booster;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Features of mixed kinds: continuous, and every third one discrete (so that inputs hit the
// split thresholds exactly, where < and <= part), with a share of NaN (missing).
Dataset Features(int rows, int cols, double nan_rate, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<double> unit(0, 1);
  Dataset d;
  d.rows = rows;
  d.cols = cols;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      float v = normal(rng);
      if (c % 3 == 2) v = std::round(v * 2.0f);
      if (unit(rng) < nan_rate) v = kNaN;
      d.values.push_back(v);
    }
  }
  return d;
}

float At(const Dataset& d, int64_t r, int64_t c) {
  float v = d.values[static_cast<size_t>(r * d.cols + c)];
  return std::isnan(v) ? 0.0f : v;
}

// A latent score that depends on several features and their interaction.
float Latent(const Dataset& d, int64_t r) {
  return At(d, r, 0) + 0.5f * At(d, r, 1) - At(d, r, 2) * At(d, r, 3) + 0.3f * At(d, r, 5);
}

enum class LabelKind {
  kRegression,
  kBinary,
  kProbability,
  kMulti,
  kCount,
  kPositive,
  kCox,
  kRank,
};

// Labels (and query groups for ranking) suited to an objective.
void Label(Dataset& d, LabelKind kind, unsigned seed, std::vector<unsigned>* groups) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0, 0.3f);
  std::uniform_real_distribution<float> unit(0.5f, 1.5f);
  d.labels.clear();
  for (int64_t r = 0; r < d.rows; ++r) {
    const float z = Latent(d, r);
    float y = 0;
    switch (kind) {
      case LabelKind::kRegression:
        y = 3.0f * z + noise(rng);
        break;
      case LabelKind::kBinary:
        y = z + noise(rng) > 0 ? 1.0f : 0.0f;
        break;
      case LabelKind::kProbability:
        y = 1.0f / (1.0f + std::exp(-z));
        break;
      case LabelKind::kMulti:
        y = z + noise(rng) < -0.5f ? 0.0f : (z + noise(rng) < 0.5f ? 1.0f : 2.0f);
        break;
      case LabelKind::kCount:
        y = static_cast<float>(
            std::poisson_distribution<int>(std::exp(std::clamp(z, -2.0f, 2.0f)))(rng));
        break;
      case LabelKind::kPositive:
        y = std::exp(0.5f * std::clamp(z, -3.0f, 3.0f)) * unit(rng);
        break;
      case LabelKind::kCox:  // survival times; negative = right-censored
        y = std::exp(-0.5f * std::clamp(z, -3.0f, 3.0f)) * unit(rng) * (r % 4 == 0 ? -1.0f : 1.0f);
        break;
      case LabelKind::kRank:
        y = std::clamp(std::round(z + 1.5f + noise(rng)), 0.0f, 3.0f);
        break;
    }
    d.labels.push_back(y);
  }
  if (groups != nullptr && kind == LabelKind::kRank) {
    groups->assign(static_cast<size_t>(d.rows / 20), 20);
  }
}

Booster Train(const Dataset& train, const Params& params, int rounds, bool aft = false,
              const std::vector<unsigned>& groups = {}) {
  auto matrix = xgb_internal::MakeDMatrix(train, 1, aft);
  EXPECT_TRUE(matrix.ok()) << matrix.status().ToString();
  if (!groups.empty()) {
    EXPECT_EQ(XGDMatrixSetUIntInfo(matrix->get(), "group", groups.data(), groups.size()), 0);
  }
  DMatrixHandle handles[] = {matrix->get()};
  BoosterHandle handle = nullptr;
  EXPECT_EQ(XGBoosterCreate(handles, 1, &handle), 0);
  Booster booster(handle);
  EXPECT_EQ(XGBoosterSetParam(handle, "nthread", "1"), 0);
  EXPECT_EQ(XGBoosterSetParam(handle, "seed", "7"), 0);
  for (const auto& [name, value] : params) {
    EXPECT_EQ(XGBoosterSetParam(handle, name.c_str(), value.c_str()), 0) << name;
  }
  for (int i = 0; i < rounds; ++i) {
    EXPECT_EQ(XGBoosterUpdateOneIter(handle, i, matrix->get()), 0) << XGBGetLastError();
  }
  return booster;
}

// XGBoosterPredict on batch, as XgboostModel calls it (a DMatrix with nthread 1); margins
// when output_margin.
std::vector<float> LibPredict(BoosterHandle booster, const Dataset& batch, bool output_margin) {
  auto matrix = xgb_internal::MakeDMatrix(batch, 1);
  EXPECT_TRUE(matrix.ok()) << matrix.status().ToString();
  if (!matrix.ok()) return {};
  bst_ulong length = 0;
  const float* out = nullptr;
  EXPECT_EQ(XGBoosterPredict(booster, matrix->get(), output_margin ? 1 : 0, 0, 0, &length, &out), 0)
      << XGBGetLastError();
  return std::vector<float>(out, out + length);
}

// The largest |ours - theirs| relative to max(1, |theirs|).
double MaxRelativeDiff(const std::vector<float>& ours, const std::vector<float>& theirs) {
  double worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double d = std::fabs(static_cast<double>(ours[i]) - theirs[i]) /
                     std::max(1.0, std::fabs(static_cast<double>(theirs[i])));
    worst = std::max(worst, std::isnan(d) ? 1e9 : d);
  }
  return worst;
}

void ExpectSamePredictions(BoosterHandle booster, const TreeEnsemble& ensemble,
                           const Dataset& batch, const std::string& what) {
  SCOPED_TRACE(what);
  std::vector<float> ours;
  ASSERT_TRUE(ensemble.Predict(batch, &ours).ok());
  std::vector<float> theirs = LibPredict(booster, batch, false);
  ASSERT_EQ(ours.size(), theirs.size());
  ASSERT_EQ(ours.size(), static_cast<size_t>(batch.rows * ensemble.output_width()));
  EXPECT_LE(MaxRelativeDiff(ours, theirs), 1e-6);

  ASSERT_TRUE(ensemble.PredictMargin(batch, &ours).ok());
  theirs = LibPredict(booster, batch, true);
  ASSERT_EQ(ours.size(), theirs.size());
  EXPECT_LE(MaxRelativeDiff(ours, theirs), 1e-6);
}

// The dense batch as CSR rows: NaN entries left out (absent = missing), a share of the
// others dropped too, and a few explicit NaN entries (which libxgboost drops as missing).
Dataset ToSparse(const Dataset& dense, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  Dataset s;
  s.sparse = true;
  s.rows = dense.rows;
  s.cols = dense.cols;
  s.indptr.push_back(0);
  for (int64_t r = 0; r < dense.rows; ++r) {
    for (int64_t c = 0; c < dense.cols; ++c) {
      const float v = dense.values[static_cast<size_t>(r * dense.cols + c)];
      const double u = unit(rng);
      if (std::isnan(v) ? u < 0.8 : u < 0.2) continue;
      s.indices.push_back(c);
      s.values.push_back(v);
    }
    s.indptr.push_back(static_cast<int64_t>(s.indices.size()));
  }
  return s;
}

// The first `cols` columns of a dense batch: the model's later features are missing.
Dataset FirstColumns(const Dataset& dense, int64_t cols) {
  Dataset out;
  out.rows = dense.rows;
  out.cols = cols;
  for (int64_t r = 0; r < dense.rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      out.values.push_back(dense.values[static_cast<size_t>(r * dense.cols + c)]);
    }
  }
  return out;
}

struct Case {
  std::string name;
  Params params;
  LabelKind labels;
  double nan_rate = 0.1;
  int trees_per_round = 1;  // num_class * num_parallel_tree
  bool aft = false;
};

class EnsembleMatchesLibxgboost : public ::testing::TestWithParam<Case> {};

TEST_P(EnsembleMatchesLibxgboost, OnRandomSparseShortAndSplitPointRows) {
  const Case& c = GetParam();
  constexpr int kCols = 8, kRounds = 15;
  Dataset train = Features(800, kCols, c.nan_rate, 11);
  std::vector<unsigned> groups;
  Label(train, c.labels, 12, &groups);
  Params params = c.params;
  params.emplace_back("max_depth", "5");
  Booster booster = Train(train, params, kRounds, c.aft, groups);

  auto ensemble = TreeEnsemble::FromBooster(booster.get());
  ASSERT_TRUE(ensemble.ok()) << ensemble.status().ToString();
  EXPECT_EQ(ensemble->num_feature(), kCols);
  EXPECT_EQ(ensemble->num_trees(), static_cast<size_t>(kRounds * c.trees_per_round));

  const Dataset rows = Features(1000, kCols, c.nan_rate, 13);
  ExpectSamePredictions(booster.get(), *ensemble, rows, "1000 dense rows");
  ExpectSamePredictions(booster.get(), *ensemble, ToSparse(rows, 14), "1000 CSR rows");
  ExpectSamePredictions(booster.get(), *ensemble, FirstColumns(rows, 5), "rows of 5 features");
  ExpectSamePredictions(booster.get(), *ensemble, ensemble->ProbeRows(1000, 15),
                        "rows at split points");
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(
    Objectives, EnsembleMatchesLibxgboost,
    ::testing::Values(
        Case{"BinaryLogistic", {{"objective", "binary:logistic"}}, LabelKind::kBinary},
        Case{"BinaryLogisticNoNaNBaseScore",
             {{"objective", "binary:logistic"}, {"base_score", "0.3"}},
             LabelKind::kBinary,
             0.0},
        Case{"BinaryLogitraw",
             {{"objective", "binary:logitraw"}, {"base_score", "0.2"}},
             LabelKind::kBinary},
        Case{"BinaryHinge", {{"objective", "binary:hinge"}}, LabelKind::kBinary},
        Case{"RegLogistic", {{"objective", "reg:logistic"}}, LabelKind::kProbability},
        Case{"SquaredError", {{"objective", "reg:squarederror"}}, LabelKind::kRegression},
        Case{"SquaredErrorHistNoNaNBaseScore",
             {{"objective", "reg:squarederror"}, {"tree_method", "hist"}, {"base_score", "2.5"}},
             LabelKind::kRegression,
             0.0},
        Case{"SquaredErrorApproxRandomForest",
             {{"objective", "reg:squarederror"},
              {"tree_method", "approx"},
              {"num_parallel_tree", "3"},
              {"subsample", "0.7"},
              {"colsample_bynode", "0.6"}},
             LabelKind::kRegression,
             0.1,
             3},
        Case{"Linear", {{"objective", "reg:linear"}}, LabelKind::kRegression},
        Case{"SquaredLogError", {{"objective", "reg:squaredlogerror"}}, LabelKind::kPositive},
        Case{"PseudoHuberError", {{"objective", "reg:pseudohubererror"}}, LabelKind::kRegression},
        Case{"AbsoluteError", {{"objective", "reg:absoluteerror"}}, LabelKind::kRegression},
        Case{"MultiSoftprob",
             {{"objective", "multi:softprob"}, {"num_class", "3"}},
             LabelKind::kMulti,
             0.1,
             3},
        Case{"MultiSoftmaxNoNaN",
             {{"objective", "multi:softmax"}, {"num_class", "3"}},
             LabelKind::kMulti,
             0.0,
             3},
        Case{"MultiSoftprobForest",
             {{"objective", "multi:softprob"},
              {"num_class", "3"},
              {"num_parallel_tree", "2"},
              {"subsample", "0.8"}},
             LabelKind::kMulti,
             0.1,
             6},
        Case{"CountPoisson", {{"objective", "count:poisson"}}, LabelKind::kCount},
        Case{"CountPoissonBaseScore",
             {{"objective", "count:poisson"}, {"base_score", "1.7"}},
             LabelKind::kCount},
        Case{"Gamma", {{"objective", "reg:gamma"}}, LabelKind::kPositive},
        Case{"Tweedie",
             {{"objective", "reg:tweedie"}, {"tweedie_variance_power", "1.3"}},
             LabelKind::kCount},
        Case{"SurvivalCox", {{"objective", "survival:cox"}}, LabelKind::kCox},
        Case{"SurvivalAft",
             {{"objective", "survival:aft"}, {"aft_loss_distribution", "logistic"}},
             LabelKind::kPositive,
             0.1,
             1,
             true},
        Case{"RankPairwise", {{"objective", "rank:pairwise"}}, LabelKind::kRank},
        Case{"RankNdcg", {{"objective", "rank:ndcg"}}, LabelKind::kRank},
        Case{"RankMap", {{"objective", "rank:map"}}, LabelKind::kRank}),
    CaseName);

// --- Exact semantics on a hand-written model --------------------------------------------------

// One stump on feature 1 (< 0.5 goes left to 1, else 2; missing goes right) and one on
// feature 0 (< -1.25 goes left to 10, else 20; missing goes left), base_score 0.5, in
// libxgboost's own JSON model format.
constexpr char kStumps[] = R"({"learner": {
  "attributes": {}, "feature_names": [], "feature_types": [],
  "gradient_booster": {"model": {
    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "2", "size_leaf_vector": "0"},
    "tree_info": [0, 0],
    "trees": [
      {"base_weights": [0.0, 1.0, 2.0], "categories": [], "categories_nodes": [],
       "categories_segments": [], "categories_sizes": [], "default_left": [0, 0, 0], "id": 0,
       "left_children": [1, -1, -1], "loss_changes": [1.0, 0.0, 0.0],
       "parents": [2147483647, 0, 0], "right_children": [2, -1, -1],
       "split_conditions": [0.5, 1.0, 2.0], "split_indices": [1, 0, 0], "split_type": [0, 0, 0],
       "sum_hessian": [2.0, 1.0, 1.0],
       "tree_param": {"num_deleted": "0", "num_feature": "2", "num_nodes": "3",
                      "size_leaf_vector": "0"}},
      {"base_weights": [0.0, 10.0, 20.0], "categories": [], "categories_nodes": [],
       "categories_segments": [], "categories_sizes": [], "default_left": [1, 0, 0], "id": 1,
       "left_children": [1, -1, -1], "loss_changes": [1.0, 0.0, 0.0],
       "parents": [2147483647, 0, 0], "right_children": [2, -1, -1],
       "split_conditions": [-1.25E0, 10.0, 20.0], "split_indices": [0, 0, 0],
       "split_type": [0, 0, 0], "sum_hessian": [2.0, 1.0, 1.0],
       "tree_param": {"num_deleted": "0", "num_feature": "2", "num_nodes": "3",
                      "size_leaf_vector": "0"}}]},
    "name": "gbtree"},
  "learner_model_param": {"base_score": "5E-1", "num_class": "0", "num_feature": "2",
                          "num_target": "1"},
  "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}},
  "version": [1, 7, 4]})";

TEST(TreeEnsembleTest, FollowsLibxgboostSemanticsOnAHandWrittenModel) {
  auto ensemble = TreeEnsemble::FromJson(kStumps);
  ASSERT_TRUE(ensemble.ok()) << ensemble.status().ToString();
  EXPECT_EQ(ensemble->objective(), "reg:squarederror");
  EXPECT_EQ(ensemble->num_trees(), 2u);
  EXPECT_EQ(ensemble->base_margin(), 0.5f);

  Dataset rows;
  rows.rows = 5;
  rows.cols = 2;
  rows.values = {-1.25f,
                 0.5f,  // equal thresholds: right
                 std::nextafter(-1.25f, -2.0f),
                 0.4999999f,  // just below: left
                 kNaN,
                 kNaN,  // missing: default sides
                 0.0f,
                 -7.0f,  //
                 std::nextafter(-1.25f, 0.0f),
                 std::nextafter(0.5f, 0.0f)};
  std::vector<float> out;
  ASSERT_TRUE(ensemble->Predict(rows, &out).ok());
  EXPECT_EQ(out, (std::vector<float>{22.5f, 11.5f, 12.5f, 21.5f, 21.5f}));

  // libxgboost reads the same text and agrees.
  BoosterHandle handle = nullptr;
  ASSERT_EQ(XGBoosterCreate(nullptr, 0, &handle), 0);
  Booster booster(handle);
  ASSERT_EQ(XGBoosterLoadModelFromBuffer(handle, kStumps, sizeof(kStumps) - 1), 0)
      << XGBGetLastError();
  EXPECT_EQ(LibPredict(handle, rows, false), out);

  // A row shorter than the model: feature 1 is missing (default right).
  Dataset short_row;
  short_row.rows = 1;
  short_row.cols = 1;
  short_row.values = {5.0f};
  ASSERT_TRUE(ensemble->Predict(short_row, &out).ok());
  EXPECT_EQ(out, std::vector<float>{22.5f});
  EXPECT_EQ(LibPredict(handle, short_row, false), out);

  // CSR: an absent entry is missing, an explicit zero is a value, indices may come in any
  // order.
  Dataset sparse;
  sparse.sparse = true;
  sparse.rows = 3;
  sparse.cols = 2;
  sparse.indptr = {0, 1, 2, 4};
  sparse.indices = {0, 1, 1, 0};
  sparse.values = {0.0f, 0.0f, 0.7f, 0.0f};
  ASSERT_TRUE(ensemble->Predict(sparse, &out).ok());
  EXPECT_EQ(out, (std::vector<float>{22.5f, 11.5f, 22.5f}));
  EXPECT_EQ(LibPredict(handle, sparse, false), out);
}

TEST(TreeEnsembleTest, RefusesBatchesLibxgboostRejectsOrThatAreMalformed) {
  auto ensemble = TreeEnsemble::FromJson(kStumps);
  ASSERT_TRUE(ensemble.ok());
  std::vector<float> out;
  Dataset inf;
  inf.rows = 1;
  inf.cols = 2;
  inf.values = {std::numeric_limits<float>::infinity(), 0.0f};
  EXPECT_EQ(ensemble->Predict(inf, &out).kind(), ErrorKind::kNotImplemented);
  Dataset wide;
  wide.rows = 1;
  wide.cols = 3;
  wide.values = {0, 0, 0};
  EXPECT_EQ(ensemble->Predict(wide, &out).kind(), ErrorKind::kNotImplemented);
  Dataset ragged;
  ragged.rows = 2;
  ragged.cols = 2;
  ragged.values = {0, 0, 0};
  EXPECT_EQ(ensemble->Predict(ragged, &out).kind(), ErrorKind::kNotImplemented);
  Dataset bad_index;
  bad_index.sparse = true;
  bad_index.rows = 1;
  bad_index.cols = 2;
  bad_index.indptr = {0, 1};
  bad_index.indices = {2};
  bad_index.values = {1.0f};
  EXPECT_EQ(ensemble->Predict(bad_index, &out).kind(), ErrorKind::kNotImplemented);
  bad_index.indices = {-1};
  EXPECT_EQ(ensemble->Predict(bad_index, &out).kind(), ErrorKind::kNotImplemented);
  // libxgboost reads a row with a repeated index as if no feature were missing.
  Dataset repeated;
  repeated.sparse = true;
  repeated.rows = 1;
  repeated.cols = 2;
  repeated.indptr = {0, 2};
  repeated.indices = {1, 1};
  repeated.values = {0.0f, 0.7f};
  EXPECT_EQ(ensemble->Predict(repeated, &out).kind(), ErrorKind::kNotImplemented);
}

// --- Models the ensemble leaves to libxgboost ---------------------------------------------------

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(TreeEnsembleTest, RefusesWhatItDoesNotReproduce) {
  const std::string stumps = kStumps;
  auto refused = [](const std::string& json) {
    return TreeEnsemble::FromJson(json).status().kind() == ErrorKind::kNotImplemented;
  };
  EXPECT_TRUE(refused(Replace(stumps, "\"reg:squarederror\"", "\"reg:quantileerror\"")));
  EXPECT_TRUE(refused(Replace(stumps, "\"num_target\": \"1\"", "\"num_target\": \"2\"")));
  EXPECT_TRUE(refused(Replace(stumps, "\"name\": \"gbtree\"", "\"name\": \"dart\"")));
  EXPECT_TRUE(refused(Replace(stumps, "\"split_type\": [0, 0, 0]", "\"split_type\": [1, 0, 0]")));
  EXPECT_TRUE(refused(Replace(stumps, "\"categories\": []", "\"categories\": [3]")));
  EXPECT_TRUE(
      refused(Replace(stumps, "\"split_indices\": [1, 0, 0]", "\"split_indices\": [2, 0, 0]")));
  EXPECT_TRUE(refused(Replace(stumps, "\"num_class\": \"0\"", "\"num_class\": \"3\"")));
  EXPECT_TRUE(refused(Replace(Replace(stumps, "\"reg:squarederror\"", "\"binary:logistic\""),
                              "\"5E-1\"", "\"1.5E0\"")));

  // Text that is no model at all is an internal error, not a "fall back".
  auto malformed = [](const std::string& json) {
    return TreeEnsemble::FromJson(json).status().kind() == ErrorKind::kInternal;
  };
  EXPECT_TRUE(malformed(stumps.substr(0, stumps.size() / 2)));
  EXPECT_TRUE(malformed("[]"));
  EXPECT_TRUE(
      malformed(Replace(stumps, "\"left_children\": [1, -1, -1]", "\"left_children\": [1, -1]")));
  EXPECT_TRUE(malformed(
      Replace(stumps, "\"left_children\": [1, -1, -1]", "\"left_children\": [0, -1, -1]")));
  EXPECT_TRUE(malformed(Replace(stumps, "\"tree_info\": [0, 0]", "\"tree_info\": [0, 1]")));
}

TEST(TreeEnsembleTest, DartGblinearAndCategoricalBoostersFallBack) {
  Dataset train = Features(400, 6, 0.0, 21);
  Label(train, LabelKind::kBinary, 22, nullptr);
  Booster dart = Train(
      train, {{"objective", "binary:logistic"}, {"booster", "dart"}, {"rate_drop", "0.2"}}, 5);
  EXPECT_EQ(TreeEnsemble::FromBooster(dart.get()).status().kind(), ErrorKind::kNotImplemented);
  Booster linear = Train(train, {{"objective", "binary:logistic"}, {"booster", "gblinear"}}, 5);
  EXPECT_EQ(TreeEnsemble::FromBooster(linear.get()).status().kind(), ErrorKind::kNotImplemented);

  // Feature 2 holds category codes 0..4 (its values are rounded), split by partition.
  Dataset categorical = train;
  for (int64_t r = 0; r < categorical.rows; ++r) {
    float& v = categorical.values[static_cast<size_t>(r * categorical.cols + 2)];
    v = std::clamp(v + 2.0f, 0.0f, 4.0f);
    categorical.labels[static_cast<size_t>(r)] = (v == 1.0f || v == 3.0f) ? 1.0f : 0.0f;
  }
  auto matrix = xgb_internal::MakeDMatrix(categorical, 1);
  ASSERT_TRUE(matrix.ok());
  const char* types[] = {"q", "q", "c", "q", "q", "q"};
  ASSERT_EQ(XGDMatrixSetStrFeatureInfo(matrix->get(), "feature_type", types, 6), 0);
  DMatrixHandle handles[] = {matrix->get()};
  BoosterHandle handle = nullptr;
  ASSERT_EQ(XGBoosterCreate(handles, 1, &handle), 0);
  Booster booster(handle);
  for (auto [k, v] : Params{{"nthread", "1"},
                            {"objective", "binary:logistic"},
                            {"tree_method", "hist"},
                            {"max_cat_to_onehot", "1"}}) {
    ASSERT_EQ(XGBoosterSetParam(handle, k.c_str(), v.c_str()), 0);
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(XGBoosterUpdateOneIter(handle, i, matrix->get()), 0) << XGBGetLastError();
  }
  bst_ulong length = 0;
  const char* json = nullptr;
  ASSERT_EQ(XGBoosterSaveModelToBuffer(handle, R"({"format": "json"})", &length, &json), 0);
  ASSERT_NE(std::string(json, length).find("\"split_type\":[1"), std::string::npos)
      << "the booster should split on the category feature at its root";
  EXPECT_EQ(TreeEnsemble::FromBooster(handle).status().kind(), ErrorKind::kNotImplemented);
}

// --- XgboostModel
// ---------------------------------------------------------------------------------

class XgboostModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-xgb-ensemble-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Model> SaveAndLoad(BoosterHandle booster) {
    const std::string path = root_ + "/" + kXgboostModelFile;
    EXPECT_EQ(XGBoosterSaveModel(booster, path.c_str()), 0);
    auto model = LoadXgboostModel(root_);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    return model.ok() ? std::move(model).value() : nullptr;
  }

  std::string root_;
};

// Every record must carry what libxgboost predicts, in the shape it had before the ensemble.
void ExpectRecordsMatch(Model& model, BoosterHandle booster, const Dataset& batch,
                        const std::string& objective, int width) {
  auto records = model.Predict(batch);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  std::vector<float> theirs = LibPredict(booster, batch, false);
  ASSERT_EQ(records->size(), static_cast<size_t>(batch.rows));
  ASSERT_EQ(theirs.size(), static_cast<size_t>(batch.rows * width));
  for (size_t r = 0; r < records->size(); ++r) {
    const Value& record = (*records)[r];
    ASSERT_EQ(record.map().size(), 1u);
    if (objective == "multi:softmax") {
      const Value* label = record.Find("predicted_label");
      ASSERT_TRUE(label != nullptr && label->is_int());
      EXPECT_EQ(label->AsInt(), std::lround(theirs[r]));
    } else if (width > 1) {
      const Value* scores = record.Find("score");
      ASSERT_TRUE(scores != nullptr && scores->is_list());
      ASSERT_EQ(scores->list().size(), static_cast<size_t>(width));
      for (int k = 0; k < width; ++k) {
        EXPECT_NEAR(scores->list()[static_cast<size_t>(k)].AsDouble(), theirs[r * width + k], 1e-6);
      }
    } else {
      const Value* score = record.Find("score");
      ASSERT_TRUE(score != nullptr && score->is_double());
      EXPECT_NEAR(score->AsDouble(), theirs[r], 1e-6 * std::max(1.0f, std::fabs(theirs[r])));
    }
  }
}

TEST_F(XgboostModelTest, PredictsWhatLibxgboostPredictsInTheSameRecords) {
  Dataset train = Features(600, 8, 0.1, 31);
  Dataset rows = Features(200, 8, 0.1, 32);
  for (auto [objective, kind, width] : std::vector<std::tuple<std::string, LabelKind, int>>{
           {"binary:logistic", LabelKind::kBinary, 1},
           {"reg:squarederror", LabelKind::kRegression, 1},
           {"multi:softprob", LabelKind::kMulti, 3},
           {"multi:softmax", LabelKind::kMulti, 1}}) {
    SCOPED_TRACE(objective);
    Label(train, kind, 33, nullptr);
    Params params = {{"objective", objective}};
    if (objective.rfind("multi:", 0) == 0) params.emplace_back("num_class", "3");
    Booster booster = Train(train, params, 10);
    auto model = SaveAndLoad(booster.get());
    ASSERT_NE(model, nullptr);
    ExpectRecordsMatch(*model, booster.get(), rows, objective, width);
    ExpectRecordsMatch(*model, booster.get(), ToSparse(rows, 34), objective, width);
    ExpectRecordsMatch(*model, booster.get(), rows.Slice(0, 1), objective, width);
  }
}

TEST_F(XgboostModelTest, DartModelsAndInfiniteInputsGoThroughLibxgboost) {
  Dataset train = Features(400, 6, 0.1, 41);
  Label(train, LabelKind::kBinary, 42, nullptr);
  Booster dart = Train(
      train, {{"objective", "binary:logistic"}, {"booster", "dart"}, {"rate_drop", "0.2"}}, 8);
  auto model = SaveAndLoad(dart.get());
  ASSERT_NE(model, nullptr);
  ExpectRecordsMatch(*model, dart.get(), Features(100, 6, 0.1, 43), "binary:logistic", 1);

  Booster gbtree = Train(train, {{"objective", "binary:logistic"}}, 8);
  model = SaveAndLoad(gbtree.get());
  ASSERT_NE(model, nullptr);
  Dataset inf = Features(2, 6, 0.0, 44);
  inf.values[3] = std::numeric_limits<float>::infinity();
  auto records = model->Predict(inf);
  ASSERT_FALSE(records.ok());  // libxgboost's own refusal, as before the ensemble
  EXPECT_NE(records.status().message().find("inf"), std::string::npos)
      << records.status().ToString();
}

// --- Timing
// ---------------------------------------------------------------------------------------

template <typename Fn>
double MicrosPerCall(int calls, Fn&& fn) {
  fn();  // warm up
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) fn();
  const std::chrono::duration<double, std::micro> spent = std::chrono::steady_clock::now() - start;
  return spent.count() / calls;
}

TEST_F(XgboostModelTest, EnsembleIsFasterThanXGBoosterPredict) {
  // 100 trees of depth 6 on 20 features, the serving benchmark's model.
  Dataset train = Features(4000, 20, 0.05, 51);
  Label(train, LabelKind::kBinary, 52, nullptr);
  Booster booster = Train(train, {{"objective", "binary:logistic"}, {"max_depth", "6"}}, 100);
  auto ensemble = TreeEnsemble::FromBooster(booster.get());
  ASSERT_TRUE(ensemble.ok()) << ensemble.status().ToString();
  auto model = SaveAndLoad(booster.get());
  ASSERT_NE(model, nullptr);

  const Dataset rows = Features(100, 20, 0.05, 53);
  const Dataset one = rows.Slice(0, 1);
  ExpectSamePredictions(booster.get(), *ensemble, rows, "benchmark rows");
  std::vector<float> out;
  auto ensemble_call = [&](const Dataset& batch) {
    return [&] { ASSERT_TRUE(ensemble->Predict(batch, &out).ok()); };
  };
  auto library_call = [&](const Dataset& batch) {
    return [&] {
      auto matrix = xgb_internal::MakeDMatrix(batch, 1);
      bst_ulong length = 0;
      const float* predictions = nullptr;
      ASSERT_EQ(XGBoosterPredict(booster.get(), matrix->get(), 0, 0, 0, &length, &predictions), 0);
    };
  };
  auto model_call = [&](const Dataset& batch) {
    return [&] { ASSERT_TRUE(model->Predict(batch).ok()); };
  };
  const double ensemble_1 = MicrosPerCall(2000, ensemble_call(one));
  const double ensemble_100 = MicrosPerCall(200, ensemble_call(rows));
  const double library_1 = MicrosPerCall(200, library_call(one));
  const double library_100 = MicrosPerCall(50, library_call(rows));
  const double model_1 = MicrosPerCall(2000, model_call(one));
  const double model_100 = MicrosPerCall(200, model_call(rows));
  std::printf(
      "[ timing ] 100 trees, depth 6, 20 features, us per call:\n"
      "[ timing ]   1 row:    ensemble %.2f  XGBoosterPredict %.2f  (x%.1f)  "
      "XgboostModel::Predict %.2f\n"
      "[ timing ]   100 rows: ensemble %.2f  XGBoosterPredict %.2f  (x%.1f)  "
      "XgboostModel::Predict %.2f\n",
      ensemble_1, library_1, library_1 / ensemble_1, model_1, ensemble_100, library_100,
      library_100 / ensemble_100, model_100);
  // Loose bounds, for a loaded machine: the ensemble's margin is an order of magnitude.
  EXPECT_LT(ensemble_1 * 3, library_1);
  EXPECT_LT(model_1 * 2, library_1);
}

}  // namespace
}  // namespace nimbus::ml
