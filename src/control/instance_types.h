// InstanceType: the table of SageMaker ML instance types ("ml.m5.xlarge" …) with the
// resources AWS gives each one: vCPUs, memory and GPUs (AWS's published figures for the
// EC2 instance behind each ml.* type). The scheduler turns a job's instance type and count
// into a demand on this machine's capacity, and the local executor derives the payload's
// memory limit from it.
//
// The table is static data compiled into the binary; entries are never freed, so the
// pointers FindInstanceType returns stay valid for the life of the process.
//
// Thread-safety: read-only; safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace nimbus::control {

struct InstanceType {
  std::string_view name;  // "ml.m5.xlarge"
  int vcpus = 0;
  int64_t memory_mib = 0;
  int gpus = 0;                  // NVIDIA GPUs
  std::string_view accelerator;  // "NVIDIA V100", "AWS Inferentia"; empty for CPU-only types
  int accelerator_count = 0;     // GPUs, or Inferentia chips for ml.inf1
};

// The instance type named `name`, or nullptr when SageMaker has no such type (services
// answer ValidationException, naming the member).
const InstanceType* FindInstanceType(std::string_view name);

// Every known type, in table order (families together, sizes ascending).
std::span<const InstanceType> AllInstanceTypes();

}  // namespace nimbus::control
