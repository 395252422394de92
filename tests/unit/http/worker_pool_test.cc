#include "http/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
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
    WorkerPool pool(4, 4);
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
  WorkerPool pool(16, 16);
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

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(WorkerPoolTest, GrowsPastItsThreadsWhileTasksBlockAndShrinksBack) {
  WorkerPool pool(2, 3);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> blocked{0};
  auto block = [&] {
    ++blocked;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.Submit(block));
  // Two threads hold two tasks; the third task stalls the queue and gets a thread of its own.
  ASSERT_TRUE(WaitFor([&] { return blocked.load() == 3; }));
  EXPECT_EQ(pool.thread_count(), 3u);
  std::atomic<bool> ran{false};
  ASSERT_TRUE(pool.Submit([&] { ran = true; }));
  std::this_thread::sleep_for(3 * WorkerPool::kStallDelay);
  EXPECT_FALSE(ran.load());  // never past max_threads
  EXPECT_EQ(pool.thread_count(), 3u);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(WaitFor([&] { return ran.load(); }));
  // Nothing waits any more: the thread started for the stall ends.
  EXPECT_TRUE(WaitFor([&] { return pool.thread_count() == 2; }));
  for (int i = 0; i < 20; ++i) {
    std::atomic<bool> quick{false};
    ASSERT_TRUE(pool.Submit([&] { quick = true; }));
    ASSERT_TRUE(WaitFor([&] { return quick.load(); }));
  }
  EXPECT_EQ(pool.thread_count(), 2u);
}

TEST(WorkerPoolTest, CallsOnBusyOnlyForATaskThatNoIdleThreadTakes) {
  std::atomic<int> busy{0};
  WorkerPool pool(1, 1, [&] { ++busy; });
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<bool> started{false};
  ASSERT_TRUE(pool.Submit([&] {
    started = true;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
  }));
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  EXPECT_EQ(busy.load(), 0);  // a new thread took it
  std::atomic<bool> second{false};
  ASSERT_TRUE(pool.Submit([&] { second = true; }));
  EXPECT_EQ(busy.load(), 1);  // the only thread is held
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(WaitFor([&] { return second.load(); }));
  // Let the thread get back to waiting: the next task finds it idle.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::atomic<bool> third{false};
  ASSERT_TRUE(pool.Submit([&] { third = true; }));
  ASSERT_TRUE(WaitFor([&] { return third.load(); }));
  EXPECT_EQ(busy.load(), 1);
}

TEST(WorkerPoolTest, RefusesTasksAfterShutdown) {
  WorkerPool pool(2, 2);
  pool.Shutdown();
  EXPECT_FALSE(pool.Submit([] {}));
}

}  // namespace
}  // namespace nimbus::http
