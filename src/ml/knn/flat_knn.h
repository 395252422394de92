// Exact k-nearest-neighbour search over a dense row-major set of vectors: the search of a
// faiss.Flat k-NN index for batches of queries.
//
// faiss 1.7.3 searches a batch with a multi-threaded sgemm into a distance buffer and then a
// heap per query, on two thread pools (OpenBLAS's and OpenMP's) that contend for the cores;
// on a 2-core machine that is slower than scikit-learn's brute force. This search fuses the
// two steps: queries are packed in panels of 16 (two 8-lane vectors per dimension), each
// tile of 6 base vectors × 16 queries accumulates its 96 inner products in registers, and a
// vector compare against the 16 queries' current k-th best score rejects almost every
// candidate before it reaches the per-query sorted top-k. OpenMP threads share the batch by
// groups of panels, each streaming the base once per group. x86-64 CPUs with AVX2 and FMA
// run the vector kernel; others run a portable loop with the same results.
//
// Results follow faiss's conventions: for L2 the squared distances in ascending order, for
// inner product the products in descending order; ids of -1 (distance +/-FLT_MAX) fill the
// places past the number of base vectors. Ties keep the lower id first.
#pragma once

#include <cstdint>
#include <vector>

namespace nimbus::ml {

class FlatKnn {
 public:
  enum class Metric { kL2, kInnerProduct };
  enum class Kernel { kBest, kPortable };  // kPortable: the loop every CPU runs (for tests)

  // `base` (count × dim floats, row-major) must outlive the FlatKnn; it is not copied.
  FlatKnn(const float* base, int64_t count, int64_t dim, Metric metric);

  // The k best base vectors of each of the n queries (n × dim floats): n × k distances and
  // ids, row by row. Runs on OpenMP's threads (omp_get_max_threads()).
  void Search(const float* queries, int64_t n, int k, float* distances, int64_t* ids,
              Kernel kernel = Kernel::kBest) const;

 private:
  const float* base_;
  int64_t count_;
  int64_t dim_;
  Metric metric_;
  // Per base vector, the constant of its score: |y|^2 for L2 (score = |y|^2 - 2 x.y, which
  // orders as |x - y|^2), 0 for inner product (score = -x.y). Lower scores are better.
  std::vector<float> score_offset_;
};

}  // namespace nimbus::ml
