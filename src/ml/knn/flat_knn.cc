#include "ml/knn/flat_knn.h"

#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace nimbus::ml {
namespace {

constexpr int kPanel = 16;    // queries per panel: two 8-float vectors per dimension
constexpr int kTileRows = 6;  // base vectors per tile: 12 accumulators + 3 registers
// A group's panels share each pass over the base: up to 8 (128 queries), and no more than
// fit in 128 KiB, so that they stay in the core's L2 cache while each tile re-reads them.
constexpr int64_t kMaxGroupPanels = 8;
constexpr int64_t kGroupBytes = 128 << 10;

// The running k lowest scores of the queries of one group, each row sorted ascending.
struct TopK {
  int k;
  float* scores;
  int64_t* ids;
  float* worst;  // per query: its k-th score, the bar a candidate must pass (-inf: padding)

  // Precondition: score < worst[q].
  void Insert(int64_t q, float score, int64_t id) const {
    float* s = scores + q * k;
    int64_t* d = ids + q * k;
    int pos = k - 1;
    while (pos > 0 && s[pos - 1] > score) {
      s[pos] = s[pos - 1];
      d[pos] = d[pos - 1];
      --pos;
    }
    s[pos] = score;
    d[pos] = id;
    worst[q] = s[k - 1];
  }
};

struct Group {
  const float* panels;  // num_panels × dim × kPanel
  int64_t num_panels;
  TopK top;
};

using SearchGroupFn = void(const float* base, const float* offset, int64_t count, int64_t dim,
                           float alpha, const Group& g);

void SearchGroupPortable(const float* base, const float* offset, int64_t count, int64_t dim,
                         float alpha, const Group& g) {
  const int64_t queries = g.num_panels * kPanel;
  for (int64_t b = 0; b < count; ++b) {
    const float* y = base + b * dim;
    for (int64_t q = 0; q < queries; ++q) {
      const float* x = g.panels + (q / kPanel) * dim * kPanel + q % kPanel;
      float dot = 0;
      for (int64_t j = 0; j < dim; ++j) dot += x[j * kPanel] * y[j];
      const float score = offset[b] + alpha * dot;
      if (score < g.top.worst[q]) g.top.Insert(q, score, b);
    }
  }
}

#if defined(__x86_64__)

bool HasAvx2Fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

// Scores of kRows base vectors (from b) against every panel of the group, each admitted to
// the top-k of its query when it beats the query's k-th score.
template <int kRows>
__attribute__((target("avx2,fma"))) void TileAvx2(const float* base, const float* offset, int64_t b,
                                                  int64_t dim, __m256 alpha, const Group& g) {
  const float* y = base + b * dim;
  for (int64_t p = 0; p < g.num_panels; ++p) {
    const float* x = g.panels + p * dim * kPanel;
    __m256 acc[kRows][2];
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < dim; ++j) {
      const __m256 x0 = _mm256_loadu_ps(x + j * kPanel);
      const __m256 x1 = _mm256_loadu_ps(x + j * kPanel + 8);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        const __m256 yr = _mm256_broadcast_ss(y + r * dim + j);
        acc[r][0] = _mm256_fmadd_ps(x0, yr, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(x1, yr, acc[r][1]);
      }
    }
    float* worst = g.top.worst + p * kPanel;
    __m256 t0 = _mm256_loadu_ps(worst);
    __m256 t1 = _mm256_loadu_ps(worst + 8);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m256 c = _mm256_set1_ps(offset[b + r]);
      const __m256 s0 = _mm256_fmadd_ps(acc[r][0], alpha, c);
      const __m256 s1 = _mm256_fmadd_ps(acc[r][1], alpha, c);
      unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(s0, t0, _CMP_LT_OQ))) |
                      static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(s1, t1, _CMP_LT_OQ)))
                          << 8;
      if (mask == 0) continue;
      alignas(32) float s[kPanel];
      _mm256_store_ps(s, s0);
      _mm256_store_ps(s + 8, s1);
      for (; mask != 0; mask &= mask - 1) {
        const int lane = __builtin_ctz(mask);
        g.top.Insert(p * kPanel + lane, s[lane], b + r);
      }
      t0 = _mm256_loadu_ps(worst);
      t1 = _mm256_loadu_ps(worst + 8);
    }
  }
}

__attribute__((target("avx2,fma"))) void SearchGroupAvx2(const float* base, const float* offset,
                                                         int64_t count, int64_t dim, float alpha,
                                                         const Group& g) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t b = 0;
  for (; b + kTileRows <= count; b += kTileRows) TileAvx2<kTileRows>(base, offset, b, dim, a, g);
  for (; b < count; ++b) TileAvx2<1>(base, offset, b, dim, a, g);
}

#endif

}  // namespace

FlatKnn::FlatKnn(const float* base, int64_t count, int64_t dim, Metric metric)
    : base_(base), count_(count), dim_(dim), metric_(metric) {
  score_offset_.assign(static_cast<size_t>(count), 0.0f);
  if (metric != Metric::kL2) return;
  for (int64_t b = 0; b < count; ++b) {
    float norm = 0;
    for (int64_t j = 0; j < dim; ++j) norm += base[b * dim + j] * base[b * dim + j];
    score_offset_[static_cast<size_t>(b)] = norm;
  }
}

void FlatKnn::Search(const float* queries, int64_t n, int k, float* distances, int64_t* ids,
                     Kernel kernel) const {
  if (n <= 0 || k <= 0) return;
  const bool l2 = metric_ == Metric::kL2;
  const float alpha = l2 ? -2.0f : -1.0f;
  const int64_t panels = (n + kPanel - 1) / kPanel;
  const int64_t threads = std::max(1, omp_get_max_threads());
  const int64_t fit = kGroupBytes / (dim_ * kPanel * static_cast<int64_t>(sizeof(float)));
  const int64_t per_group =
      std::clamp(std::min((panels + threads - 1) / threads, fit), int64_t{1}, kMaxGroupPanels);
  const int64_t groups = (panels + per_group - 1) / per_group;
  SearchGroupFn* search_group = SearchGroupPortable;
#if defined(__x86_64__)
  if (kernel == Kernel::kBest && HasAvx2Fma()) search_group = SearchGroupAvx2;
#endif
  const float inf = std::numeric_limits<float>::infinity();

#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t first = gi * per_group * kPanel;
    const int64_t real = std::min(n - first, per_group * kPanel);
    const int64_t num_panels = (real + kPanel - 1) / kPanel;
    const auto padded = static_cast<size_t>(num_panels * kPanel);
    std::vector<float> packed(padded * static_cast<size_t>(dim_), 0.0f);
    for (int64_t q = 0; q < real; ++q) {
      float* dst = packed.data() + (q / kPanel) * dim_ * kPanel + q % kPanel;
      const float* src = queries + (first + q) * dim_;
      for (int64_t j = 0; j < dim_; ++j) dst[j * kPanel] = src[j];
    }
    std::vector<float> scores(padded * static_cast<size_t>(k), inf);
    std::vector<int64_t> found(padded * static_cast<size_t>(k), -1);
    std::vector<float> worst(padded, -inf);
    std::fill_n(worst.begin(), real, inf);
    const Group g{packed.data(), num_panels, TopK{k, scores.data(), found.data(), worst.data()}};
    search_group(base_, score_offset_.data(), count_, dim_, alpha, g);
    for (int64_t q = 0; q < real; ++q) {
      const float* x = queries + (first + q) * dim_;
      float norm = 0;
      if (l2) {
        for (int64_t j = 0; j < dim_; ++j) norm += x[j] * x[j];
      }
      for (int t = 0; t < k; ++t) {
        const size_t from = static_cast<size_t>(q * k + t);
        const size_t to = static_cast<size_t>((first + q) * k + t);
        ids[to] = found[from];
        if (found[from] < 0) {
          distances[to] = l2 ? FLT_MAX : -FLT_MAX;
        } else {
          distances[to] = l2 ? std::max(0.0f, scores[from] + norm) : -scores[from];
        }
      }
    }
  }
}

}  // namespace nimbus::ml
