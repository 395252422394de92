// ParallelFor: runs fn(i) for i in [0, n) on up to `threads` threads (the calling thread
// included). The ml/ training loops use it to train independent models or score disjoint
// row ranges; each index is handled exactly once, so results stay deterministic whatever
// the thread count.
//
// Thread-safety: fn must be safe to call concurrently for distinct indices.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace nimbus::ml {

template <typename Fn>
void ParallelFor(int64_t n, int threads, Fn&& fn) {
  if (n <= 0) return;
  int64_t workers = std::min<int64_t>(std::max(threads, 1), n);
  if (workers == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&]() {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers - 1));
  for (int64_t t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace nimbus::ml
