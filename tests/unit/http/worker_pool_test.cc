#include "http/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

namespace nimbus::http {
namespace {

TEST(WorkerPoolTest, CapsThreadsAndRunsEveryTask) {
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::atomic<int> done{0};
  {
    WorkerPool pool(4);
    for (int i = 0; i < 64; ++i) {
      ASSERT_TRUE(pool.Submit([&] {
        int now = ++running;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        --running;
        ++done;
      }));
    }
    EXPECT_LE(pool.thread_count(), 4u);
    pool.Shutdown();  // runs what is queued first
  }
  EXPECT_EQ(done.load(), 64);
  EXPECT_LE(peak.load(), 4);
}

TEST(WorkerPoolTest, ReusesIdleThreadsInsteadOfStartingNewOnes) {
  WorkerPool pool(16);
  std::mutex mu;
  std::set<std::thread::id> ids;
  for (int i = 0; i < 20; ++i) {
    std::atomic<bool> ran{false};
    ASSERT_TRUE(pool.Submit([&] {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
      ran = true;
    }));
    while (!ran) std::this_thread::yield();
    // Let the thread get back to waiting before the next task arrives.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(pool.thread_count(), 1u);
  EXPECT_EQ(ids.size(), 1u);
}

TEST(WorkerPoolTest, RefusesTasksAfterShutdown) {
  WorkerPool pool(2);
  pool.Shutdown();
  EXPECT_FALSE(pool.Submit([] {}));
}

}  // namespace
}  // namespace nimbus::http
