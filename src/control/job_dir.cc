#include "control/job_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/ids.h"
#include "core/json.h"
#include "core/strings.h"

namespace nimbus::control {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::Internal(what + " " + path + ": " + std::strerror(errno));
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

const std::string& BootId() {
  static const std::string boot_id = [] {
    auto text = ReadWholeFile("/proc/sys/kernel/random/boot_id");
    return text.ok() ? std::string(Trim(*text)) : std::string();
  }();
  return boot_id;
}

const std::string& OwnPidNamespace() {
  static const std::string ns = [] {
    char target[128];
    const ssize_t n = ::readlink("/proc/self/ns/pid", target, sizeof(target) - 1);
    return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
  }();
  return ns;
}

}  // namespace

std::optional<ProcessInfo> ReadProcessInfo(int64_t pid) {
  if (pid <= 0) return std::nullopt;
  auto text = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return std::nullopt;
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so fields are
  // counted from the last ')'.
  const size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> fields;
  for (const std::string& f : Split(std::string_view(*text).substr(close + 1), ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() < 20) return std::nullopt;
  ProcessInfo stat;
  stat.state = fields[0].empty() ? '?' : fields[0][0];
  stat.ppid = ParseInt(fields[1]).value_or(0);
  stat.start_time = ParseInt(fields[19]).value_or(0);  // field 22 of proc(5)
  return stat;
}

Status ValidatePathComponent(std::string_view what, std::string_view value) {
  bool ok = !value.empty() && value.size() <= 128 && value[0] != '.';
  for (char c : value) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      ok = false;
    }
  }
  if (!ok) {
    return Status::Aws("ValidationException", 400,
                       "Invalid " + std::string(what) + " '" + std::string(value) +
                           "': use 1 to 128 of [A-Za-z0-9._-], not starting with '.'");
  }
  return Status::Ok();
}

Result<JobDir> JobDir::ForJob(const std::string& data_dir, std::string_view kind,
                              std::string_view job_id) {
  NIMBUS_RETURN_IF_ERROR(ValidatePathComponent("job kind", kind));
  NIMBUS_RETURN_IF_ERROR(ValidatePathComponent("job id", job_id));
  return JobDir(data_dir + "/jobs/" + std::string(kind) + "/" + std::string(job_id));
}

JobDir::JobDir(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Status JobDir::Create() const {
  for (const std::string& dir : {ConfigDir(), DataDir(), ModelDir(), OutputDataDir(),
                                 CheckpointsDir(), CodeDir(), LogsDir()}) {
    NIMBUS_RETURN_IF_ERROR(MakeDirs(dir));
  }
  return Status::Ok();
}

Result<std::string> JobDir::CreateChannel(std::string_view channel) const {
  NIMBUS_RETURN_IF_ERROR(ValidatePathComponent("channel name", channel));
  std::string dir = ChannelDir(channel);
  NIMBUS_RETURN_IF_ERROR(MakeDirs(dir));
  return dir;
}

Status JobDir::WriteInputConfig(const Value& hyperparameters, const Value& resource_config,
                                const Value& input_data_config) const {
  NIMBUS_RETURN_IF_ERROR(MakeDirs(ConfigDir()));
  auto or_empty = [](const Value& v) { return v.is_null() ? Value::MakeMap() : v; };
  NIMBUS_RETURN_IF_ERROR(WriteJsonFile(HyperparametersPath(), or_empty(hyperparameters)));
  NIMBUS_RETURN_IF_ERROR(WriteJsonFile(ResourceConfigPath(), or_empty(resource_config)));
  return WriteJsonFile(InputDataConfigPath(), or_empty(input_data_config));
}

std::optional<std::string> JobDir::ReadFailure(size_t max_bytes) const {
  const int fd = ::open(FailurePath().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text(max_bytes, '\0');
  size_t got = 0;
  while (got < max_bytes) {
    const ssize_t n = ::read(fd, text.data() + got, max_bytes - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  // Never cut a UTF-8 sequence in half: the reason travels in JSON responses.
  if (got == max_bytes) {
    size_t end = text.size();
    size_t back = 0;
    while (back < 4 && back < end &&
           (static_cast<unsigned char>(text[end - 1 - back]) & 0xC0) == 0x80) {
      ++back;
    }
    if (back < end) {
      const unsigned char lead = static_cast<unsigned char>(text[end - 1 - back]);
      const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (need > back + 1) text.resize(end - 1 - back);
    }
  }
  const std::string_view trimmed = Trim(text);
  if (trimmed.empty()) return std::nullopt;
  return std::string(trimmed);
}

Status JobDir::Remove() const {
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
  if (ec) return Status::Internal("cannot remove " + root_ + ": " + ec.message());
  return Status::Ok();
}

Value MakeResourceConfig(std::string_view instance_type, int count, int current) {
  Value hosts = Value::MakeList();
  for (int i = 1; i <= count; ++i) hosts.Append("algo-" + std::to_string(i));
  Value group = Value::Object({{"instance_group_name", "homogeneousCluster"},
                               {"instance_type", std::string(instance_type)},
                               {"hosts", hosts}});
  Value groups = Value::MakeList();
  groups.Append(group);
  return Value::Object({{"current_host", "algo-" + std::to_string(current)},
                        {"current_instance_type", std::string(instance_type)},
                        {"current_group_name", "homogeneousCluster"},
                        {"hosts", hosts},
                        {"instance_groups", groups},
                        {"network_interface_name", "eth0"}});
}

std::optional<ProcessIdentity> IdentifyProcess(int64_t pid) {
  auto stat = ReadProcessInfo(pid);
  if (!stat || stat->state == 'Z' || stat->state == 'X') return std::nullopt;
  // The pid is a number of the namespace it was looked up in, which is this process's.
  return ProcessIdentity{pid, stat->start_time, BootId(), OwnPidNamespace()};
}

bool InThisPidNamespace(const ProcessIdentity& process) {
  return process.pid_namespace.empty() || process.pid_namespace == OwnPidNamespace();
}

bool IsAlive(const ProcessIdentity& process) {
  if (process.pid <= 0 || !InThisPidNamespace(process)) return false;
  if (!process.boot_id.empty() && process.boot_id != BootId()) return false;
  auto now = IdentifyProcess(process.pid);
  return now && now->start_time == process.start_time;
}

Value ToValue(const WorkerRecord& r) {
  Value v = Value::Object({{"state", std::string(JobStateName(r.state))},
                           {"job_id", r.job_id},
                           {"kind", r.kind},
                           {"host", r.host},
                           {"pid", r.process.pid},
                           {"pid_start_time", r.process.start_time},
                           {"boot_id", r.process.boot_id},
                           {"pid_namespace", r.process.pid_namespace},
                           {"started_at", r.started_at}});
  if (IsTerminal(r.state)) {
    v["exit_code"] = r.exit_code;
    v["signal"] = r.signal;
    v["reason"] = r.reason;
    v["ended_at"] = r.ended_at;
    v["max_rss_bytes"] = r.max_rss_bytes;
    v["cpu_seconds"] = r.cpu_seconds;
  } else if (!r.reason.empty()) {
    v["reason"] = r.reason;
  }
  return v;
}

Result<WorkerRecord> WorkerRecordFromValue(const Value& v) {
  if (!v.is_map()) return Status::Internal("status.json is not a JSON object");
  auto state = ParseJobState(v.GetString("state"));
  if (!state)
    return Status::Internal("status.json has an unknown state '" + v.GetString("state") + "'");
  WorkerRecord r;
  r.state = *state;
  r.job_id = v.GetString("job_id");
  r.kind = v.GetString("kind");
  r.host = v.GetString("host");
  r.process.pid = v.GetInt("pid");
  r.process.start_time = v.GetInt("pid_start_time");
  r.process.boot_id = v.GetString("boot_id");
  r.process.pid_namespace = v.GetString("pid_namespace");
  r.exit_code = static_cast<int>(v.GetInt("exit_code"));
  r.signal = static_cast<int>(v.GetInt("signal"));
  r.reason = v.GetString("reason");
  if (const Value* x = v.Find("started_at")) r.started_at = x->AsDouble();
  if (const Value* x = v.Find("ended_at")) r.ended_at = x->AsDouble();
  r.max_rss_bytes = v.GetInt("max_rss_bytes");
  if (const Value* x = v.Find("cpu_seconds")) r.cpu_seconds = x->AsDouble();
  return r;
}

Status WriteWorkerRecord(const JobDir& dir, const WorkerRecord& record) {
  return WriteJsonFile(dir.StatusPath(), ToValue(record));
}

Result<std::optional<WorkerRecord>> ReadWorkerRecord(const JobDir& dir) {
  auto value = ReadJsonFile(dir.StatusPath());
  if (!value.ok()) {
    if (value.status().kind() == ErrorKind::kNotFound) return std::optional<WorkerRecord>();
    return value.status();
  }
  NIMBUS_ASSIGN_OR_RETURN(WorkerRecord record, WorkerRecordFromValue(*value));
  return std::optional<WorkerRecord>(std::move(record));
}

Status WriteStopRequest(const JobDir& dir, const StopRequest& request) {
  return WriteJsonFile(dir.StopPath(), Value::Object({{"requested_at", request.requested_at},
                                                      {"grace_seconds", request.grace_seconds}}));
}

std::optional<StopRequest> ReadStopRequest(const JobDir& dir) {
  auto value = ReadJsonFile(dir.StopPath());
  if (!value.ok() || !value->is_map()) return std::nullopt;
  StopRequest request;
  if (const Value* x = value->Find("requested_at")) request.requested_at = x->AsDouble();
  if (const Value* x = value->Find("grace_seconds")) request.grace_seconds = x->AsDouble();
  return request;
}

Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  const std::string temp =
      path + ".tmp." + std::to_string(::getpid()) + "." + RandomString(8, kAlnum);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", temp);
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status status = Errno("cannot write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return status;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    Status status = Errno("cannot sync", temp);
    ::unlink(temp.c_str());
    return status;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    Status status = Errno("cannot rename onto", path);
    ::unlink(temp.c_str());
    return status;
  }
  // The rename itself must survive a crash too.
  const std::string dir = Dirname(path);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound("no such file " + path);
    return Errno("cannot open", path);
  }
  std::string text;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status status = Errno("cannot read", path);
      ::close(fd);
      return status;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::Internal("cannot create directory " + path + ": " + ec.message());
  return Status::Ok();
}

Status WriteJsonFile(const std::string& path, const Value& value) {
  return WriteFileAtomic(path, ToJson(value) + "\n");
}

Result<Value> ReadJsonFile(const std::string& path) {
  NIMBUS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  auto value = ParseJson(text);
  if (!value.ok()) {
    return Status::Internal(path + " is not valid JSON: " + value.status().message());
  }
  return value;
}

}  // namespace nimbus::control
