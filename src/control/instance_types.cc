#include "control/instance_types.h"

#include <array>

namespace nimbus::control {
namespace {

constexpr int64_t GiB(double gib) { return static_cast<int64_t>(gib * 1024); }

constexpr InstanceType Cpu(std::string_view name, int vcpus, int64_t memory_mib) {
  return InstanceType{name, vcpus, memory_mib, 0, {}, 0};
}

constexpr InstanceType Accel(std::string_view name, int vcpus, int64_t memory_mib, int gpus,
                             std::string_view accelerator, int accelerator_count) {
  return InstanceType{name, vcpus, memory_mib, gpus, accelerator, accelerator_count};
}

// Figures from AWS's instance-type tables (EC2 "Instance types" pages and the SageMaker
// pricing page): vCPUs, memory in GiB, accelerators.
constexpr std::array kTypes = {
    // General purpose, burstable.
    Cpu("ml.t2.medium", 2, GiB(4)),
    Cpu("ml.t2.large", 2, GiB(8)),
    Cpu("ml.t2.xlarge", 4, GiB(16)),
    Cpu("ml.t2.2xlarge", 8, GiB(32)),
    Cpu("ml.t3.medium", 2, GiB(4)),
    Cpu("ml.t3.large", 2, GiB(8)),
    Cpu("ml.t3.xlarge", 4, GiB(16)),
    Cpu("ml.t3.2xlarge", 8, GiB(32)),
    // General purpose.
    Cpu("ml.m4.xlarge", 4, GiB(16)),
    Cpu("ml.m4.2xlarge", 8, GiB(32)),
    Cpu("ml.m4.4xlarge", 16, GiB(64)),
    Cpu("ml.m4.10xlarge", 40, GiB(160)),
    Cpu("ml.m4.16xlarge", 64, GiB(256)),
    Cpu("ml.m5.large", 2, GiB(8)),
    Cpu("ml.m5.xlarge", 4, GiB(16)),
    Cpu("ml.m5.2xlarge", 8, GiB(32)),
    Cpu("ml.m5.4xlarge", 16, GiB(64)),
    Cpu("ml.m5.12xlarge", 48, GiB(192)),
    Cpu("ml.m5.24xlarge", 96, GiB(384)),
    Cpu("ml.m5d.large", 2, GiB(8)),
    Cpu("ml.m5d.xlarge", 4, GiB(16)),
    Cpu("ml.m5d.2xlarge", 8, GiB(32)),
    Cpu("ml.m5d.4xlarge", 16, GiB(64)),
    Cpu("ml.m5d.12xlarge", 48, GiB(192)),
    Cpu("ml.m5d.24xlarge", 96, GiB(384)),
    Cpu("ml.m6i.large", 2, GiB(8)),
    Cpu("ml.m6i.xlarge", 4, GiB(16)),
    Cpu("ml.m6i.2xlarge", 8, GiB(32)),
    Cpu("ml.m6i.4xlarge", 16, GiB(64)),
    Cpu("ml.m6i.8xlarge", 32, GiB(128)),
    Cpu("ml.m6i.12xlarge", 48, GiB(192)),
    Cpu("ml.m6i.16xlarge", 64, GiB(256)),
    Cpu("ml.m6i.24xlarge", 96, GiB(384)),
    Cpu("ml.m6i.32xlarge", 128, GiB(512)),
    // Compute optimized.
    Cpu("ml.c4.xlarge", 4, GiB(7.5)),
    Cpu("ml.c4.2xlarge", 8, GiB(15)),
    Cpu("ml.c4.4xlarge", 16, GiB(30)),
    Cpu("ml.c4.8xlarge", 36, GiB(60)),
    Cpu("ml.c5.large", 2, GiB(4)),
    Cpu("ml.c5.xlarge", 4, GiB(8)),
    Cpu("ml.c5.2xlarge", 8, GiB(16)),
    Cpu("ml.c5.4xlarge", 16, GiB(32)),
    Cpu("ml.c5.9xlarge", 36, GiB(72)),
    Cpu("ml.c5.18xlarge", 72, GiB(144)),
    Cpu("ml.c5d.large", 2, GiB(4)),
    Cpu("ml.c5d.xlarge", 4, GiB(8)),
    Cpu("ml.c5d.2xlarge", 8, GiB(16)),
    Cpu("ml.c5d.4xlarge", 16, GiB(32)),
    Cpu("ml.c5d.9xlarge", 36, GiB(72)),
    Cpu("ml.c5d.18xlarge", 72, GiB(144)),
    Cpu("ml.c5n.xlarge", 4, GiB(10.5)),
    Cpu("ml.c5n.2xlarge", 8, GiB(21)),
    Cpu("ml.c5n.4xlarge", 16, GiB(42)),
    Cpu("ml.c5n.9xlarge", 36, GiB(96)),
    Cpu("ml.c5n.18xlarge", 72, GiB(192)),
    // Memory optimized.
    Cpu("ml.r5.large", 2, GiB(16)),
    Cpu("ml.r5.xlarge", 4, GiB(32)),
    Cpu("ml.r5.2xlarge", 8, GiB(64)),
    Cpu("ml.r5.4xlarge", 16, GiB(128)),
    Cpu("ml.r5.12xlarge", 48, GiB(384)),
    Cpu("ml.r5.24xlarge", 96, GiB(768)),
    // Accelerated computing: NVIDIA GPUs.
    Accel("ml.p2.xlarge", 4, GiB(61), 1, "NVIDIA K80", 1),
    Accel("ml.p2.8xlarge", 32, GiB(488), 8, "NVIDIA K80", 8),
    Accel("ml.p2.16xlarge", 64, GiB(732), 16, "NVIDIA K80", 16),
    Accel("ml.p3.2xlarge", 8, GiB(61), 1, "NVIDIA V100", 1),
    Accel("ml.p3.8xlarge", 32, GiB(244), 4, "NVIDIA V100", 4),
    Accel("ml.p3.16xlarge", 64, GiB(488), 8, "NVIDIA V100", 8),
    Accel("ml.p3dn.24xlarge", 96, GiB(768), 8, "NVIDIA V100", 8),
    Accel("ml.p4d.24xlarge", 96, GiB(1152), 8, "NVIDIA A100", 8),
    Accel("ml.g4dn.xlarge", 4, GiB(16), 1, "NVIDIA T4", 1),
    Accel("ml.g4dn.2xlarge", 8, GiB(32), 1, "NVIDIA T4", 1),
    Accel("ml.g4dn.4xlarge", 16, GiB(64), 1, "NVIDIA T4", 1),
    Accel("ml.g4dn.8xlarge", 32, GiB(128), 1, "NVIDIA T4", 1),
    Accel("ml.g4dn.12xlarge", 48, GiB(192), 4, "NVIDIA T4", 4),
    Accel("ml.g4dn.16xlarge", 64, GiB(256), 1, "NVIDIA T4", 1),
    Accel("ml.g5.xlarge", 4, GiB(16), 1, "NVIDIA A10G", 1),
    Accel("ml.g5.2xlarge", 8, GiB(32), 1, "NVIDIA A10G", 1),
    Accel("ml.g5.4xlarge", 16, GiB(64), 1, "NVIDIA A10G", 1),
    Accel("ml.g5.8xlarge", 32, GiB(128), 1, "NVIDIA A10G", 1),
    Accel("ml.g5.12xlarge", 48, GiB(192), 4, "NVIDIA A10G", 4),
    Accel("ml.g5.16xlarge", 64, GiB(256), 1, "NVIDIA A10G", 1),
    Accel("ml.g5.24xlarge", 96, GiB(384), 4, "NVIDIA A10G", 4),
    Accel("ml.g5.48xlarge", 192, GiB(768), 8, "NVIDIA A10G", 8),
    // Accelerated computing: AWS Inferentia (no GPUs; the chips are listed for Describe).
    Accel("ml.inf1.xlarge", 4, GiB(8), 0, "AWS Inferentia", 1),
    Accel("ml.inf1.2xlarge", 8, GiB(16), 0, "AWS Inferentia", 1),
    Accel("ml.inf1.6xlarge", 24, GiB(48), 0, "AWS Inferentia", 4),
    Accel("ml.inf1.24xlarge", 96, GiB(192), 0, "AWS Inferentia", 16),
};

}  // namespace

const InstanceType* FindInstanceType(std::string_view name) {
  for (const InstanceType& type : kTypes) {
    if (type.name == name) return &type;
  }
  return nullptr;
}

std::span<const InstanceType> AllInstanceTypes() { return kTypes; }

}  // namespace nimbus::control
