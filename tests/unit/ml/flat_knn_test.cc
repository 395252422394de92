#include "ml/knn/flat_knn.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <random>
#include <vector>

namespace nimbus::ml {
namespace {

using Metric = FlatKnn::Metric;
using Kernel = FlatKnn::Kernel;

std::vector<float> Gaussian(int64_t rows, int64_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> v(static_cast<size_t>(rows * dim));
  for (auto& x : v) x = normal(rng);
  return v;
}

struct Neighbours {
  std::vector<float> distances;
  std::vector<int64_t> ids;
};

Neighbours Search(const FlatKnn& index, const std::vector<float>& queries, int64_t dim, int k,
                  Kernel kernel) {
  const auto n = static_cast<int64_t>(queries.size()) / dim;
  Neighbours out{std::vector<float>(static_cast<size_t>(n * k), 0.0f),
                 std::vector<int64_t>(static_cast<size_t>(n * k), -7)};
  index.Search(queries.data(), n, k, out.distances.data(), out.ids.data(), kernel);
  return out;
}

// Every query's exact neighbours in double precision, as (distance, id) pairs best first:
// squared L2 ascending or inner product descending.
std::vector<std::vector<std::pair<double, int64_t>>> BruteForce(const std::vector<float>& base,
                                                                const std::vector<float>& queries,
                                                                int64_t dim, Metric metric) {
  const auto count = static_cast<int64_t>(base.size()) / dim;
  const auto n = static_cast<int64_t>(queries.size()) / dim;
  std::vector<std::vector<std::pair<double, int64_t>>> all(static_cast<size_t>(n));
  for (int64_t q = 0; q < n; ++q) {
    for (int64_t b = 0; b < count; ++b) {
      double value = 0;
      for (int64_t j = 0; j < dim; ++j) {
        const double x = queries[q * dim + j], y = base[b * dim + j];
        value += metric == Metric::kL2 ? (x - y) * (x - y) : x * y;
      }
      all[q].push_back({value, b});
    }
    std::sort(all[q].begin(), all[q].end(), [&](const auto& a, const auto& b) {
      return metric == Metric::kL2 ? a.first < b.first : a.first > b.first;
    });
  }
  return all;
}

// The search returns each query's true k best, in order; a neighbour may differ from the
// reference only where float rounding can swap two nearly equal distances.
void ExpectExact(const Neighbours& got, const std::vector<float>& base,
                 const std::vector<float>& queries, int64_t dim, int k, Metric metric) {
  auto want = BruteForce(base, queries, dim, metric);
  for (size_t q = 0; q < want.size(); ++q) {
    for (int t = 0; t < k; ++t) {
      const size_t at = q * static_cast<size_t>(k) + static_cast<size_t>(t);
      const double d = want[q][static_cast<size_t>(t)].first;
      const double tolerance = 1e-4 * (1 + std::abs(d));
      ASSERT_NEAR(got.distances[at], d, tolerance) << "query " << q << " rank " << t;
      if (got.ids[at] != want[q][static_cast<size_t>(t)].second) {
        // A swap of near-ties: the returned id's true distance is the same, within rounding.
        const int64_t id = got.ids[at];
        ASSERT_GE(id, 0);
        auto it = std::find_if(want[q].begin(), want[q].end(),
                               [&](const auto& e) { return e.second == id; });
        EXPECT_NEAR(it->first, d, tolerance) << "query " << q << " rank " << t;
      }
    }
  }
}

class FlatKnnTest : public ::testing::TestWithParam<Kernel> {};

TEST_P(FlatKnnTest, L2MatchesBruteForceForAnyBatchAndBaseSize) {
  // Batch sizes around the 16-query panel, base sizes around the 6-vector tile, k = 1 and k
  // beyond a tile.
  for (int64_t n : {1, 15, 16, 17, 300}) {
    for (int64_t count : {1, 6, 7, 53}) {
      for (int k : {1, 5}) {
        if (k > count) continue;
        const int64_t dim = 13;
        auto base = Gaussian(count, dim, static_cast<uint32_t>(count));
        auto queries = Gaussian(n, dim, static_cast<uint32_t>(1000 + n));
        FlatKnn index(base.data(), count, dim, Metric::kL2);
        SCOPED_TRACE("n=" + std::to_string(n) + " count=" + std::to_string(count) +
                     " k=" + std::to_string(k));
        ExpectExact(Search(index, queries, dim, k, GetParam()), base, queries, dim, k, Metric::kL2);
      }
    }
  }
}

TEST_P(FlatKnnTest, InnerProductMatchesBruteForce) {
  const int64_t dim = 32, count = 1000, n = 70;
  auto base = Gaussian(count, dim, 1);
  auto queries = Gaussian(n, dim, 2);
  FlatKnn index(base.data(), count, dim, Metric::kInnerProduct);
  ExpectExact(Search(index, queries, dim, 10, GetParam()), base, queries, dim, 10,
              Metric::kInnerProduct);
}

TEST_P(FlatKnnTest, FewerBaseVectorsThanKFillTheRestWithMinusOne) {
  const int64_t dim = 4;
  auto base = Gaussian(3, dim, 3);
  auto queries = Gaussian(20, dim, 4);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
    FlatKnn index(base.data(), 3, dim, metric);
    Neighbours got = Search(index, queries, dim, 5, GetParam());
    for (int64_t q = 0; q < 20; ++q) {
      std::vector<int64_t> ids(got.ids.begin() + q * 5, got.ids.begin() + q * 5 + 3);
      std::sort(ids.begin(), ids.end());
      EXPECT_EQ(ids, (std::vector<int64_t>{0, 1, 2}));
      for (int t = 3; t < 5; ++t) {
        EXPECT_EQ(got.ids[q * 5 + t], -1);
        EXPECT_EQ(got.distances[q * 5 + t], metric == Metric::kL2 ? FLT_MAX : -FLT_MAX);
      }
    }
  }
}

TEST_P(FlatKnnTest, TiesKeepTheLowerIdFirst) {
  const int64_t dim = 3;
  // Vectors 0, 2 and 4 are equal, as are 1 and 3.
  std::vector<float> base = {1, 2, 3, 5, 5, 5, 1, 2, 3, 5, 5, 5, 1, 2, 3, 9, 9, 9, 9, 9, 9};
  std::vector<float> queries;
  for (int i = 0; i < 17; ++i) queries.insert(queries.end(), {1, 2, 3});
  FlatKnn index(base.data(), 7, dim, Metric::kL2);
  Neighbours got = Search(index, queries, dim, 5, GetParam());
  for (int64_t q = 0; q < 17; ++q) {
    EXPECT_EQ(std::vector<int64_t>(got.ids.begin() + q * 5, got.ids.begin() + q * 5 + 5),
              (std::vector<int64_t>{0, 2, 4, 1, 3}));
    EXPECT_EQ(got.distances[q * 5], 0.0f);  // never negative, though computed by cancellation
  }
}

TEST_P(FlatKnnTest, ThreadsSplitTheBatchWithoutChangingResults) {
  const int64_t dim = 20, count = 2000, n = 1000;
  auto base = Gaussian(count, dim, 5);
  auto queries = Gaussian(n, dim, 6);
  FlatKnn index(base.data(), count, dim, Metric::kL2);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  Neighbours one = Search(index, queries, dim, 8, GetParam());
  omp_set_num_threads(4);
  Neighbours four = Search(index, queries, dim, 8, GetParam());
  omp_set_num_threads(before);
  EXPECT_EQ(one.ids, four.ids);
  EXPECT_EQ(one.distances, four.distances);
  ExpectExact(four, base, queries, dim, 8, Metric::kL2);
}

INSTANTIATE_TEST_SUITE_P(Kernels, FlatKnnTest, ::testing::Values(Kernel::kBest, Kernel::kPortable),
                         [](const auto& info) {
                           return info.param == Kernel::kBest ? "Best" : "Portable";
                         });

}  // namespace
}  // namespace nimbus::ml
