// Scheduler: admits jobs against this machine's capacity (ARCHITECTURE.md §4).
//
// Capacity is vCPUs, memory (MiB) and GPUs; by default what this machine (or the cgroup it
// runs in) has. A job demands its instance type's resources times its instance count.
// Submit() admits a job at once when it fits in what is left and nobody is waiting ahead of
// it; otherwise the job queues. Admission order is FIFO within an account and round robin
// between accounts: the accounts with queued jobs form a ring, the account at the front
// offers its oldest job, and an account that got a job admitted moves to the back. The job
// whose turn it is blocks the ones behind it until it fits (no backfilling), so a large job
// is never starved by a stream of small ones.
//
// Oversized demands are clamped: each dimension of a demand is capped at the machine's
// capacity. A job whose vCPU or memory demand exceeds the machine therefore takes the whole
// of that resource and runs alone; a GPU demand on a machine with fewer GPUs takes all of
// them (none on a CPU-only machine: the job runs on CPUs).
//
// When capacity frees up (Release, Cancel), waiting jobs are admitted and their on_admit
// callbacks run on the calling thread, after the scheduler's lock is released, in
// admission order; a callback may call back into the scheduler. A job counts as running
// from admission until Release(id).
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "control/instance_types.h"
#include "core/clock.h"
#include "core/result.h"
#include "core/status.h"

namespace nimbus::control {

struct Resources {
  int vcpus = 0;
  int64_t memory_mib = 0;
  int gpus = 0;

  bool FitsIn(const Resources& available) const {
    return vcpus <= available.vcpus && memory_mib <= available.memory_mib && gpus <= available.gpus;
  }
  bool operator==(const Resources&) const = default;
};

// What this machine offers: online CPUs (affinity mask and cgroup cpu.max), physical
// memory (capped by cgroup memory.max), and the NVIDIA GPUs under /dev (nvidia0, …).
Resources DetectMachineCapacity();

struct JobRequest {
  std::string id;       // unique among the scheduler's jobs
  std::string account;  // the fairness unit
  std::string instance_type;
  int instance_count = 1;
  // Called once when the job is admitted, outside the scheduler's lock.
  std::function<void(const std::string& id)> on_admit;
};

struct ScheduledJob {
  std::string id;
  std::string account;
  std::string instance_type;
  int instance_count = 1;
  Resources demand;  // after clamping
  double submitted_at = 0;
  double admitted_at = 0;  // 0 while queued
};

struct SchedulerSnapshot {
  Resources capacity;
  Resources used;
  std::vector<ScheduledJob> running;  // in admission order
  std::vector<ScheduledJob> queued;   // in the order they will be admitted
};

class Scheduler {
 public:
  // capacity: nullopt means DetectMachineCapacity(). clock must outlive the scheduler.
  explicit Scheduler(std::optional<Resources> capacity = std::nullopt,
                     const Clock& clock = SystemClock::Instance());

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the job, or admits it at once (on_admit then runs before Submit returns).
  // Errors: ValidationException for an unknown instance type or a count below 1;
  // kConflict when the id is already known.
  Status Submit(JobRequest request);

  // Records a job that is already running without asking for capacity (used on start-up
  // to re-attach jobs that survived a restart); its demand counts as used even if that
  // over-commits the machine. on_admit is not called.
  Status Adopt(const JobRequest& request);

  // The job ended: frees its capacity and admits waiting jobs. A queued job is simply
  // removed. kNotFound when the id is unknown.
  Status Release(const std::string& id);

  // Removes a queued job. kNotFound when unknown; kConflict when it is already running
  // (Release it when it ends).
  Status Cancel(const std::string& id);

  // 0 while running, n >= 1 for the n-th place in line, nullopt when unknown.
  std::optional<size_t> Position(const std::string& id) const;

  // The clamped demand of `count` instances of `type`.
  Resources DemandFor(const InstanceType& type, int count) const;

  Resources capacity() const { return capacity_; }
  SchedulerSnapshot Snapshot() const;

 private:
  struct Admitted {
    std::string id;
    std::function<void(const std::string&)> on_admit;
  };

  Result<ScheduledJob> MakeJob(const JobRequest& request) const;
  // Admits waiting jobs in turn while the next one fits. REQUIRES: mu_ held.
  std::vector<Admitted> AdmitLocked();
  // The queued jobs in admission order. REQUIRES: mu_ held.
  std::vector<const ScheduledJob*> QueueOrderLocked() const;
  bool KnownLocked(const std::string& id) const;
  // Removes a queued job; false when it is not queued. REQUIRES: mu_ held.
  bool RemoveQueuedLocked(const std::string& id);

  const Resources capacity_;
  const Clock& clock_;

  mutable std::mutex mu_;
  Resources used_;                     // GUARDED_BY(mu_)
  std::vector<ScheduledJob> running_;  // GUARDED_BY(mu_), admission order
  struct Waiting {
    ScheduledJob job;
    std::function<void(const std::string&)> on_admit;
  };
  std::map<std::string, std::deque<Waiting>> queues_;  // GUARDED_BY(mu_), by account
  std::list<std::string> ring_;  // GUARDED_BY(mu_): accounts with queued jobs, next first
};

}  // namespace nimbus::control
