#include "control/controller.h"

#include <algorithm>
#include <chrono>

#include "core/logging.h"

namespace nimbus::control {
namespace {

constexpr double kMinBackoff = 1;
constexpr double kMaxBackoff = 60;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

ControllerManager::ControllerManager(ControllerManagerOptions options) : options_(options) {}

ControllerManager::~ControllerManager() { Stop(); }

void ControllerManager::Register(std::string kind, Controller* controller) {
  controllers_[std::move(kind)] = controller;
}

void ControllerManager::Every(std::string name, double period_seconds, std::function<Status()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.push_back(Task{std::move(name), period_seconds, std::move(fn), Now() + period_seconds});
  cv_.notify_all();
}

void ControllerManager::Start() {
  double now = Now();
  EnqueuePending(now);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
    next_resync_ = now + options_.resync_seconds;
  }
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
}

void ControllerManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ControllerManager::Notify(const std::string& kind, const std::string& arn) {
  std::lock_guard<std::mutex> lock(mu_);
  EnqueueLocked(Key{kind, arn}, Now());
  cv_.notify_one();
}

void ControllerManager::EnqueueLocked(const Key& key, double at) {
  if (running_.count(key)) {
    auto [it, inserted] = rerun_.emplace(key, at);
    if (!inserted) it->second = std::min(it->second, at);
    return;
  }
  auto [it, inserted] = due_.emplace(key, at);
  if (!inserted) it->second = std::min(it->second, at);
}

void ControllerManager::EnqueuePending(double now) {
  for (const auto& [kind, controller] : controllers_) {
    auto arns = controller->Pending();
    if (!arns.ok()) {
      Log(LogLevel::kError, "controller_pending_failed",
          {{"kind", kind}, {"error", arns.status().ToString()}});
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& arn : *arns) EnqueueLocked(Key{kind, arn}, now);
    cv_.notify_all();
  }
}

void ControllerManager::RunTasks(double now) {
  std::vector<Task*> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (tasks_running_) return;
    for (auto& task : tasks_) {
      if (task.next <= now) {
        due.push_back(&task);
        task.next = now + task.period;
      }
    }
    if (due.empty()) return;
    tasks_running_ = true;
  }
  for (Task* task : due) {
    Status s = task->fn();
    if (!s.ok()) {
      Log(LogLevel::kWarn, "periodic_task_failed", {{"task", task->name}, {"error", s.ToString()}});
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  tasks_running_ = false;
}

void ControllerManager::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    double now = Now();
    if (now >= next_resync_) {
      next_resync_ = now + options_.resync_seconds;
      lock.unlock();
      EnqueuePending(now);
      lock.lock();
      continue;
    }
    double wake = next_resync_;
    bool task_due = false;
    if (!tasks_running_) {
      for (const auto& task : tasks_) {
        if (task.next <= now) task_due = true;
        wake = std::min(wake, task.next);
      }
    }
    if (task_due) {
      lock.unlock();
      RunTasks(now);
      lock.lock();
      continue;
    }
    auto next = due_.end();
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (next == due_.end() || it->second < next->second) next = it;
    }
    if (next == due_.end() || next->second > now) {
      if (next != due_.end()) wake = std::min(wake, next->second);
      cv_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, wake - now)));
      continue;
    }
    Key key = next->first;
    due_.erase(next);
    running_.insert(key);
    auto controller = controllers_.find(key.kind);
    lock.unlock();
    Result<std::optional<double>> result =
        controller == controllers_.end()
            ? Result<std::optional<double>>(Status::Internal("no controller for " + key.kind))
            : controller->second->Reconcile(key.arn);
    lock.lock();
    running_.erase(key);
    now = Now();
    if (!result.ok()) {
      double& delay = backoff_[key];
      delay = delay == 0 ? kMinBackoff : std::min(kMaxBackoff, delay * 2);
      Log(LogLevel::kWarn, "reconcile_failed",
          {{"kind", key.kind},
           {"arn", key.arn},
           {"error", result.status().ToString()},
           {"retry_in_seconds", delay}});
      EnqueueLocked(key, now + delay);
    } else {
      backoff_.erase(key);
      if (result->has_value()) EnqueueLocked(key, now + **result);
    }
    if (auto rerun = rerun_.find(key); rerun != rerun_.end()) {
      double at = rerun->second;
      rerun_.erase(rerun);
      EnqueueLocked(key, at);
    }
    cv_.notify_one();
  }
}

}  // namespace nimbus::control
