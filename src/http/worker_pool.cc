#include "http/worker_pool.h"

#include <algorithm>
#include <utility>

namespace nimbus::http {

WorkerPool::WorkerPool(size_t threads, size_t max_threads, std::function<void()> on_busy)
    : threads_wanted_(std::max<size_t>(threads, 1)),
      max_threads_(std::max(max_threads, threads_wanted_)),
      on_busy_(std::move(on_busy)),
      watcher_([this] { Watch(); }) {}

WorkerPool::~WorkerPool() { Shutdown(); }

bool WorkerPool::Submit(std::function<void()> task) {
  bool wake_watcher = false;
  bool busy = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back(Task{std::move(task), Clock::now()});
    waiting_.store(queue_.size(), std::memory_order_relaxed);
    // Idle threads will pick the queue up; start one more only when they cannot.
    if (queue_.size() > idle_) {
      if (threads_.size() < threads_wanted_) {
        StartThread();
      } else {
        // Every thread is busy: the watcher starts timing the queue, unless it already
        // does (under a steady load it does, and this costs no wake-up).
        wake_watcher = !watching_;
        watching_ = true;
        busy = true;
      }
    }
  }
  cv_.notify_one();
  if (wake_watcher) watch_cv_.notify_one();
  if (busy && on_busy_) on_busy_();
  return true;
}

void WorkerPool::Shutdown() {
  std::thread watcher;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    watcher.swap(watcher_);
  }
  cv_.notify_all();
  watch_cv_.notify_all();
  // Once stopping, the watcher starts and joins no thread, Submit() refuses, and no thread
  // leaves threads_ for ended_: after the watcher ends, the two hold every thread left.
  if (watcher.joinable()) watcher.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
    for (auto& t : ended_) threads.push_back(std::move(t));
    ended_.clear();
  }
  for (auto& t : threads) t.join();
}

size_t WorkerPool::thread_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

void WorkerPool::StartThread() {
  threads_.emplace_back([this] { Loop(); });
}

bool WorkerPool::Stalled(Clock::time_point now) const {
  return !queue_.empty() && now - queue_.front().queued >= kStallDelay;
}

void WorkerPool::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (queue_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> task = std::move(queue_.front().run);
    queue_.pop_front();
    waiting_.store(queue_.size(), std::memory_order_relaxed);
    lock.unlock();
    task();
    task = nullptr;  // release what the task holds before taking the lock again
    lock.lock();
    if (!stopping_ && threads_.size() > threads_wanted_ && !Stalled(Clock::now())) {
      // A thread started for a stall that is over: hand this thread's handle to the
      // watcher to join, and end.
      auto self = std::find_if(threads_.begin(), threads_.end(), [](const std::thread& t) {
        return t.get_id() == std::this_thread::get_id();
      });
      ended_.push_back(std::move(*self));
      threads_.erase(self);
      watch_cv_.notify_one();
      return;
    }
  }
}

void WorkerPool::Watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    std::vector<std::thread> ended;
    ended.swap(ended_);
    if (!ended.empty()) {
      lock.unlock();
      for (auto& t : ended) t.join();
      lock.lock();
      continue;
    }
    if (queue_.size() <= idle_) {  // nothing queued that an idle thread will not take
      watching_ = false;
      watch_cv_.wait(lock);
      continue;
    }
    const Clock::time_point now = Clock::now();
    if (Stalled(now) && threads_.size() < max_threads_) {
      StartThread();
      // The new thread takes the oldest task; the next one starts a delay from now.
      watch_cv_.wait_for(lock, kStallDelay);
      continue;
    }
    watch_cv_.wait_until(lock, queue_.front().queued + kStallDelay);
  }
}

}  // namespace nimbus::http
