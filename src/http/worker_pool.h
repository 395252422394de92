// WorkerPool: the threads that run blocking tasks (HTTP handlers) off the I/O threads.
// Threads are started on demand, up to `threads`, and then reused: a task never costs a
// thread creation once the pool has warmed up. Tasks beyond what the threads can take wait
// in a FIFO queue.
//
// Few threads serve a CPU-bound load best: each runnable thread more is one more for the
// scheduler to rotate through, and the requests it holds wait their turn the longer (on 2
// cores, InvokeEndpoint at 64 connections answered with a p99 of 7-9 ms on 8 threads and
// 11-15 ms on 16, at the same rate). But a task may also block for long (a slow client's
// upload, a Lambda function, a slow model), and `threads` such tasks would leave every other
// request queued behind them. So once the oldest queued task has waited kStallDelay, the
// pool starts one more thread, and one more every kStallDelay while the queue stays stalled,
// up to max_threads; a thread beyond `threads` ends as soon as it finishes a task while no
// queued task has waited that long.
//
// Thread-safety: Submit() may be called from any thread. Shutdown() runs the tasks already
// queued, then joins every thread; it must not be called from a pool thread.
#pragma once

#include <atomic>
#include <chrono>
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
  static constexpr std::chrono::milliseconds kStallDelay{50};

  // REQUIRES: 0 < threads <= max_threads. on_busy, if set, is called (outside the pool's
  // lock, on the submitting thread) whenever a task is queued that no idle thread is there
  // to take: a caller may then free a thread it holds for something less urgent.
  WorkerPool(size_t threads, size_t max_threads, std::function<void()> on_busy = {});
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
  using Clock = std::chrono::steady_clock;
  struct Task {
    std::function<void()> run;
    Clock::time_point queued;
  };

  void Loop();
  // Adds a thread while the queue is stalled; joins the threads that ended.
  void Watch();
  void StartThread();                         // REQUIRES: mu_ held
  bool Stalled(Clock::time_point now) const;  // REQUIRES: mu_ held

  const size_t threads_wanted_;
  const size_t max_threads_;
  const std::function<void()> on_busy_;
  mutable std::mutex mu_;
  std::condition_variable cv_;        // tasks queued, or stopping
  std::condition_variable watch_cv_;  // the watcher has a queue to watch, or stopping
  std::deque<Task> queue_;            // guarded by mu_
  std::vector<std::thread> threads_;  // running Loop(); guarded by mu_
  std::vector<std::thread> ended_;    // left Loop(), to be joined; guarded by mu_
  size_t idle_ = 0;                   // guarded by mu_
  bool watching_ = false;  // the watcher waits on a stall (not for a queue); guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::atomic<size_t> waiting_{0};  // queue_.size(), readable without mu_
  std::thread watcher_;  // Shutdown() takes it under mu_; last: starts once the rest is built
};

}  // namespace nimbus::http
