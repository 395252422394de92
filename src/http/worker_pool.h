// WorkerPool: a bounded set of threads that run blocking tasks (HTTP handlers) off the I/O
// threads. Threads are started on demand, up to max_threads, and then reused: a task never
// costs a thread creation once the pool has warmed up. Tasks beyond what the threads can
// take wait in a FIFO queue.
//
// Thread-safety: Submit() may be called from any thread. Shutdown() runs the tasks already
// queued, then joins every thread; it must not be called from a pool thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nimbus::http {

class WorkerPool {
 public:
  // REQUIRES: max_threads > 0
  explicit WorkerPool(size_t max_threads);
  ~WorkerPool();  // Shutdown()

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues task. Returns false (and drops the task) once Shutdown() has begun.
  bool Submit(std::function<void()> task);
  void Shutdown();

  size_t thread_count() const;
  // Whether a task waits for a thread: a caller about to keep its thread may yield instead.
  bool has_waiting_tasks() const { return waiting_.load(std::memory_order_relaxed) > 0; }

 private:
  void Loop();

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  std::vector<std::thread> threads_;         // guarded by mu_
  size_t idle_ = 0;                          // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::atomic<size_t> waiting_{0};           // queue_.size(), readable without mu_
};

}  // namespace nimbus::http
