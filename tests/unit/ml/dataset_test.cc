// ml::Dataset: element access, densifying, slicing and appending across the dense and CSR
// layouts, with labels and weights following their rows.
#include "ml/dataset.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "ml/algorithm.h"

namespace nimbus::ml {
namespace {

// 3 x 3, row-major: [[1, 0, 2], [0, 0, 0], [0, 3, 0]]; labels 10, 11, 12.
Dataset DenseExample() {
  Dataset d;
  d.rows = 3;
  d.cols = 3;
  d.values = {1, 0, 2, 0, 0, 0, 0, 3, 0};
  d.labels = {10, 11, 12};
  return d;
}

// The same matrix in CSR, with weights.
Dataset SparseExample() {
  Dataset d;
  d.rows = 3;
  d.cols = 3;
  d.sparse = true;
  d.indptr = {0, 2, 2, 3};
  d.indices = {0, 2, 1};
  d.values = {1, 2, 3};
  d.labels = {10, 11, 12};
  d.weights = {0.5f, 1.0f, 2.0f};
  return d;
}

void ExpectMatrix(const Dataset& d, const std::vector<std::vector<float>>& expected) {
  ASSERT_EQ(d.rows, static_cast<int64_t>(expected.size()));
  for (int64_t r = 0; r < d.rows; ++r) {
    ASSERT_EQ(d.cols, static_cast<int64_t>(expected[r].size())) << "row " << r;
    for (int64_t c = 0; c < d.cols; ++c) {
      EXPECT_EQ(d.At(r, c), expected[r][c]) << "(" << r << ", " << c << ")";
    }
  }
}

TEST(DatasetTest, AtReadsBothLayouts) {
  const std::vector<std::vector<float>> m = {{1, 0, 2}, {0, 0, 0}, {0, 3, 0}};
  ExpectMatrix(DenseExample(), m);
  ExpectMatrix(SparseExample(), m);
  EXPECT_TRUE(DenseExample().has_labels());
  EXPECT_FALSE(Dataset{}.has_labels());
}

TEST(DatasetTest, ToDenseFillsZerosAndKeepsLabelsAndWeights) {
  Dataset dense = SparseExample().ToDense();
  EXPECT_FALSE(dense.sparse);
  EXPECT_EQ(dense.values, (std::vector<float>{1, 0, 2, 0, 0, 0, 0, 3, 0}));
  EXPECT_TRUE(dense.indptr.empty());
  EXPECT_TRUE(dense.indices.empty());
  EXPECT_EQ(dense.labels, (std::vector<float>{10, 11, 12}));
  EXPECT_EQ(dense.weights, (std::vector<float>{0.5f, 1.0f, 2.0f}));
  // A dense dataset is its own dense copy.
  Dataset again = DenseExample().ToDense();
  EXPECT_EQ(again.values, DenseExample().values);
}

TEST(DatasetTest, SliceDenseTakesRowsAndLabels) {
  Dataset s = DenseExample().Slice(1, 3);
  ExpectMatrix(s, {{0, 0, 0}, {0, 3, 0}});
  EXPECT_EQ(s.labels, (std::vector<float>{11, 12}));
  EXPECT_TRUE(s.weights.empty());
}

TEST(DatasetTest, SliceSparseRebasesIndptr) {
  Dataset s = SparseExample().Slice(1, 3);
  EXPECT_TRUE(s.sparse);
  EXPECT_EQ(s.indptr, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(s.indices, (std::vector<int64_t>{1}));
  ExpectMatrix(s, {{0, 0, 0}, {0, 3, 0}});
  EXPECT_EQ(s.labels, (std::vector<float>{11, 12}));
  EXPECT_EQ(s.weights, (std::vector<float>{1.0f, 2.0f}));
}

TEST(DatasetTest, SliceClampsOutOfRangeBounds) {
  EXPECT_EQ(DenseExample().Slice(-5, 1).rows, 1);
  EXPECT_EQ(DenseExample().Slice(2, 99).rows, 1);
  Dataset empty = SparseExample().Slice(2, 1);
  EXPECT_EQ(empty.rows, 0);
  EXPECT_EQ(empty.indptr, (std::vector<int64_t>{0}));
  EXPECT_TRUE(empty.labels.empty());
}

TEST(DatasetTest, AppendDenseSameWidth) {
  Dataset a = DenseExample();
  a.Append(DenseExample().Slice(0, 1));
  ExpectMatrix(a, {{1, 0, 2}, {0, 0, 0}, {0, 3, 0}, {1, 0, 2}});
  EXPECT_EQ(a.labels, (std::vector<float>{10, 11, 12, 10}));
}

TEST(DatasetTest, AppendDenseWidensToTheLargerColumnCount) {
  Dataset narrow;
  narrow.rows = 1;
  narrow.cols = 2;
  narrow.values = {7, 8};
  narrow.labels = {1};
  Dataset a = DenseExample();
  a.Append(narrow);
  ExpectMatrix(a, {{1, 0, 2}, {0, 0, 0}, {0, 3, 0}, {7, 8, 0}});
  EXPECT_EQ(a.labels, (std::vector<float>{10, 11, 12, 1}));

  Dataset b = narrow;
  b.Append(DenseExample());
  ExpectMatrix(b, {{7, 8, 0}, {1, 0, 2}, {0, 0, 0}, {0, 3, 0}});
}

TEST(DatasetTest, AppendDenseAndSparseGivesSparse) {
  Dataset a = DenseExample();
  Dataset s = SparseExample();
  s.weights.clear();
  a.Append(s);
  EXPECT_TRUE(a.sparse);
  ASSERT_EQ(a.indptr.size(), 7u);
  ExpectMatrix(a, {{1, 0, 2}, {0, 0, 0}, {0, 3, 0}, {1, 0, 2}, {0, 0, 0}, {0, 3, 0}});
  EXPECT_EQ(a.labels, (std::vector<float>{10, 11, 12, 10, 11, 12}));

  Dataset b = SparseExample();
  Dataset d = DenseExample();
  d.labels.clear();
  b.Append(d);
  EXPECT_TRUE(b.sparse);
  EXPECT_EQ(b.rows, 6);
  EXPECT_EQ(b.At(5, 1), 3.0f);
  // Only one side had labels (and weights): they cannot follow the rows any more.
  EXPECT_TRUE(b.labels.empty());
  EXPECT_TRUE(b.weights.empty());
}

TEST(DatasetTest, AppendToAndFromEmpty) {
  Dataset a;
  a.Append(SparseExample());
  EXPECT_EQ(a.rows, 3);
  EXPECT_TRUE(a.sparse);
  EXPECT_EQ(a.weights.size(), 3u);
  a.Append(Dataset{});
  EXPECT_EQ(a.rows, 3);
  EXPECT_EQ(a.indptr.size(), 4u);
}

TEST(AllFiniteTest, FindsANanOrInfinityAnywhere) {
  std::vector<float> values(10000, 1.5f);
  values[3] = std::numeric_limits<float>::max();
  values[4] = -std::numeric_limits<float>::denorm_min();
  EXPECT_TRUE(AllFinite(values.data(), values.size()));
  EXPECT_TRUE(AllFinite(values.data(), 0));
  for (size_t at : {size_t{0}, size_t{4095}, size_t{4096}, size_t{9999}}) {
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
      std::vector<float> v = values;
      v[at] = bad;
      EXPECT_FALSE(AllFinite(v.data(), v.size())) << at << " " << bad;
      EXPECT_TRUE(AllFinite(v.data(), at)) << at;  // the values before it
    }
  }
}

}  // namespace
}  // namespace nimbus::ml
