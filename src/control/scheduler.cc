#include "control/scheduler.h"

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/strings.h"

namespace nimbus::control {
namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The cgroup v2 directory of this process (from /proc/self/cgroup's "0::<path>" line).
std::string OwnCgroupDir() {
  const std::string self = ReadSmallFile("/proc/self/cgroup");
  for (const std::string& line : Split(self, '\n')) {
    if (StartsWith(line, "0::")) {
      std::string path = "/sys/fs/cgroup" + line.substr(3);
      if (::access((path + "/cpu.max").c_str(), R_OK) == 0 ||
          ::access((path + "/memory.max").c_str(), R_OK) == 0) {
        return path;
      }
    }
  }
  return "/sys/fs/cgroup";
}

Resources operator-(const Resources& a, const Resources& b) {
  return {a.vcpus - b.vcpus, a.memory_mib - b.memory_mib, a.gpus - b.gpus};
}
Resources& operator+=(Resources& a, const Resources& b) {
  a.vcpus += b.vcpus;
  a.memory_mib += b.memory_mib;
  a.gpus += b.gpus;
  return a;
}
Resources& operator-=(Resources& a, const Resources& b) {
  a.vcpus -= b.vcpus;
  a.memory_mib -= b.memory_mib;
  a.gpus -= b.gpus;
  return a;
}

}  // namespace

Resources DetectMachineCapacity() {
  Resources r;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    r.vcpus = CPU_COUNT(&set);
  } else {
    r.vcpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    r.memory_mib = static_cast<int64_t>(pages) * page_size / (1024 * 1024);
  }

  // A container's limits are narrower than the machine's.
  const std::string cgroup = OwnCgroupDir();
  const std::vector<std::string> cpu_max = Split(Trim(ReadSmallFile(cgroup + "/cpu.max")), ' ');
  if (cpu_max.size() == 2 && cpu_max[0] != "max") {
    auto quota = ParseInt(cpu_max[0]);
    auto period = ParseInt(cpu_max[1]);
    if (quota && period && *quota > 0 && *period > 0) {
      const int limit = static_cast<int>(std::ceil(static_cast<double>(*quota) / *period));
      r.vcpus = std::min(r.vcpus, std::max(limit, 1));
    }
  }
  if (auto mem = ParseInt(Trim(ReadSmallFile(cgroup + "/memory.max"))); mem && *mem > 0) {
    r.memory_mib = std::min(r.memory_mib, *mem / (1024 * 1024));
  }
  r.vcpus = std::max(r.vcpus, 1);

  if (DIR* dev = ::opendir("/dev")) {
    while (const dirent* entry = ::readdir(dev)) {
      const std::string_view name = entry->d_name;
      if (name.size() > 6 && StartsWith(name, "nvidia") &&
          std::all_of(name.begin() + 6, name.end(), [](char c) { return std::isdigit(c); })) {
        ++r.gpus;
      }
    }
    ::closedir(dev);
  }
  return r;
}

Scheduler::Scheduler(std::optional<Resources> capacity, const Clock& clock)
    : capacity_(capacity ? *capacity : DetectMachineCapacity()), clock_(clock) {}

Resources Scheduler::DemandFor(const InstanceType& type, int count) const {
  Resources demand;
  demand.vcpus = std::min<int64_t>(int64_t{type.vcpus} * count, capacity_.vcpus);
  demand.memory_mib = std::min<int64_t>(type.memory_mib * count, capacity_.memory_mib);
  demand.gpus = std::min<int64_t>(int64_t{type.gpus} * count, capacity_.gpus);
  return demand;
}

Result<ScheduledJob> Scheduler::MakeJob(const JobRequest& request) const {
  if (request.id.empty()) return Status::Validation("a scheduled job needs an id");
  const InstanceType* type = FindInstanceType(request.instance_type);
  if (type == nullptr) {
    return Status::Aws("ValidationException", 400,
                       "Invalid instance type '" + request.instance_type + "'");
  }
  if (request.instance_count < 1) {
    return Status::Aws(
        "ValidationException", 400,
        "InstanceCount must be at least 1, got " + std::to_string(request.instance_count));
  }
  ScheduledJob job;
  job.id = request.id;
  job.account = request.account;
  job.instance_type = request.instance_type;
  job.instance_count = request.instance_count;
  job.demand = DemandFor(*type, request.instance_count);
  job.submitted_at = clock_.Now();
  return job;
}

bool Scheduler::KnownLocked(const std::string& id) const {
  for (const ScheduledJob& job : running_) {
    if (job.id == id) return true;
  }
  for (const auto& [account, queue] : queues_) {
    for (const Waiting& w : queue) {
      if (w.job.id == id) return true;
    }
  }
  return false;
}

Status Scheduler::Submit(JobRequest request) {
  auto job = MakeJob(request);
  if (!job.ok()) return job.status();
  std::vector<Admitted> admitted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (KnownLocked(request.id)) {
      return Status::Conflict("job '" + request.id + "' is already scheduled");
    }
    auto& queue = queues_[job->account];
    if (queue.empty()) ring_.push_back(job->account);
    queue.push_back(Waiting{std::move(job).value(), std::move(request.on_admit)});
    admitted = AdmitLocked();
  }
  for (const Admitted& a : admitted) {
    if (a.on_admit) a.on_admit(a.id);
  }
  return Status::Ok();
}

Status Scheduler::Adopt(const JobRequest& request) {
  NIMBUS_ASSIGN_OR_RETURN(ScheduledJob job, MakeJob(request));
  std::lock_guard<std::mutex> lock(mu_);
  if (KnownLocked(request.id)) {
    return Status::Conflict("job '" + request.id + "' is already scheduled");
  }
  job.admitted_at = job.submitted_at;
  used_ += job.demand;
  running_.push_back(std::move(job));
  return Status::Ok();
}

std::vector<Scheduler::Admitted> Scheduler::AdmitLocked() {
  std::vector<Admitted> admitted;
  while (!ring_.empty()) {
    const std::string account = ring_.front();
    auto it = queues_.find(account);
    std::deque<Waiting>& queue = it->second;
    Waiting& head = queue.front();
    if (!head.job.demand.FitsIn(capacity_ - used_)) break;
    head.job.admitted_at = clock_.Now();
    used_ += head.job.demand;
    admitted.push_back(Admitted{head.job.id, std::move(head.on_admit)});
    running_.push_back(std::move(head.job));
    queue.pop_front();
    ring_.pop_front();
    if (queue.empty()) {
      queues_.erase(it);
    } else {
      ring_.push_back(account);
    }
  }
  return admitted;
}

bool Scheduler::RemoveQueuedLocked(const std::string& id) {
  for (auto q = queues_.begin(); q != queues_.end(); ++q) {
    auto w = std::find_if(q->second.begin(), q->second.end(),
                          [&](const Waiting& w) { return w.job.id == id; });
    if (w == q->second.end()) continue;
    q->second.erase(w);
    if (q->second.empty()) {
      ring_.remove(q->first);
      queues_.erase(q);
    }
    return true;
  }
  return false;
}

Status Scheduler::Release(const std::string& id) {
  std::vector<Admitted> admitted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(running_.begin(), running_.end(),
                           [&](const ScheduledJob& job) { return job.id == id; });
    if (it != running_.end()) {
      used_ -= it->demand;
      running_.erase(it);
    } else if (!RemoveQueuedLocked(id)) {
      // A queued job that ended before admission is simply removed (above).
      return Status::NotFound("job '" + id + "' is not scheduled");
    }
    admitted = AdmitLocked();
  }
  for (const Admitted& a : admitted) {
    if (a.on_admit) a.on_admit(a.id);
  }
  return Status::Ok();
}

Status Scheduler::Cancel(const std::string& id) {
  std::vector<Admitted> admitted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ScheduledJob& job : running_) {
      if (job.id == id) {
        return Status::Conflict("job '" + id + "' is already running and cannot be cancelled");
      }
    }
    if (!RemoveQueuedLocked(id)) return Status::NotFound("job '" + id + "' is not scheduled");
    // The cancelled job may have been the one blocking the line.
    admitted = AdmitLocked();
  }
  for (const Admitted& a : admitted) {
    if (a.on_admit) a.on_admit(a.id);
  }
  return Status::Ok();
}

std::vector<const ScheduledJob*> Scheduler::QueueOrderLocked() const {
  // Admission takes the head of the ring's front account and moves that account to the
  // back, so the order is: round r takes the r-th job of every account, in ring order.
  std::vector<const ScheduledJob*> order;
  size_t longest = 0;
  for (const auto& [account, queue] : queues_) longest = std::max(longest, queue.size());
  for (size_t round = 0; round < longest; ++round) {
    for (const std::string& account : ring_) {
      const std::deque<Waiting>& queue = queues_.at(account);
      if (round < queue.size()) order.push_back(&queue[round].job);
    }
  }
  return order;
}

std::optional<size_t> Scheduler::Position(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const ScheduledJob& job : running_) {
    if (job.id == id) return 0;
  }
  const auto order = QueueOrderLocked();
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i]->id == id) return i + 1;
  }
  return std::nullopt;
}

SchedulerSnapshot Scheduler::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  SchedulerSnapshot snapshot;
  snapshot.capacity = capacity_;
  snapshot.used = used_;
  snapshot.running = running_;
  for (const ScheduledJob* job : QueueOrderLocked()) snapshot.queued.push_back(*job);
  return snapshot;
}

}  // namespace nimbus::control
