// AutoScalingStore: the durable state of Application Auto Scaling — scalable targets,
// scaling policies and scaling activities — over store::Database, scoped by account and
// region like every AWS resource.
//
// Schema (component "autoscaling" migrations):
//   autoscaling_targets     one row per (account, region, namespace, resource id,
//                           dimension): min/max, role, suspended state, tags (JSON), the
//                           ARN, and the times of the last scale-out and scale-in (the
//                           cooldown clock, written only by the scaling engine).
//   autoscaling_policies    one row per policy of a target; the target-tracking
//                           configuration is kept as the caller sent it (JSON), so that
//                           DescribeScalingPolicies echoes it unchanged, and is parsed
//                           again when the engine evaluates it.
//   autoscaling_activities  every capacity change made or attempted, by sequence number
//                           (newest last); kept six weeks, as AWS describes them.
// Deleting a target deletes its policies in the same transaction.
//
// Listing is keyset-paginated: a page returns at most `limit` rows after a cursor (the
// sort key of the last row of the previous page), never an offset.
//
// Thread-safety: safe to use from many threads (the Database serializes writes). PutTarget
// never overwrites the cooldown clock, so a RegisterScalableTarget that races with the
// engine cannot undo a recorded scale-out.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/value.h"
#include "store/database.h"

namespace nimbus::services::autoscaling {

// What names a scalable target inside an account and region.
struct TargetKey {
  std::string service_namespace;
  std::string resource_id;
  std::string dimension;
};

struct SuspendedState {
  bool dynamic_in = false;   // DynamicScalingInSuspended
  bool dynamic_out = false;  // DynamicScalingOutSuspended
  bool scheduled = false;    // ScheduledScalingSuspended
};

struct ScalableTarget {
  std::string account;
  std::string region;
  TargetKey key;
  std::string arn;  // arn:aws:application-autoscaling:<region>:<account>:scalable-target/<id>
  int64_t min_capacity = 0;
  int64_t max_capacity = 0;
  std::string role_arn;
  SuspendedState suspended;
  double creation_time = 0;
  // When a policy last added / removed capacity (epoch seconds; 0 = never).
  double last_scale_out = 0;
  double last_scale_in = 0;
  std::map<std::string, std::string> tags;
};

struct PolicyAlarm {
  std::string name;
  std::string arn;
};

struct ScalingPolicy {
  std::string account;
  std::string region;
  TargetKey key;
  std::string name;
  std::string arn;
  std::string type;     // TargetTrackingScaling
  Value configuration;  // TargetTrackingScalingPolicyConfiguration as given
  std::vector<PolicyAlarm> alarms;
  double creation_time = 0;
};

struct ScalingActivity {
  int64_t seq = 0;  // set by the store; newer activities have larger numbers
  std::string account;
  std::string region;
  TargetKey key;
  std::string activity_id;
  std::string description;
  std::string cause;
  std::string details;
  double start_time = 0;
  double end_time = 0;
  std::string status_code;  // Successful | Failed | ...
  std::string status_message;
};

struct TargetFilter {
  std::string service_namespace;
  std::vector<std::string> resource_ids;  // empty: every resource
  std::string dimension;                  // empty: every dimension
};

struct PolicyFilter {
  std::string service_namespace;
  std::string resource_id;  // empty: every resource
  std::string dimension;    // empty: every dimension
  std::vector<std::string> names;
};

class AutoScalingStore {
 public:
  // Registers the "autoscaling" migrations, migrates, and returns the store. db must
  // outlive it.
  static Result<std::unique_ptr<AutoScalingStore>> Open(store::Database& db);

  // ---- targets
  Result<std::optional<ScalableTarget>> GetTarget(const std::string& account,
                                                  const std::string& region, const TargetKey& key);
  Result<std::optional<ScalableTarget>> FindTargetByArn(const std::string& account,
                                                        const std::string& region,
                                                        const std::string& arn);
  // Creates or replaces the target; last_scale_out/in of an existing row are kept.
  Status PutTarget(const ScalableTarget& target);
  // Deletes the target and its policies; returns the policies deleted, or nullopt when
  // there was no such target.
  Result<std::optional<std::vector<ScalingPolicy>>> DeleteTarget(const std::string& account,
                                                                 const std::string& region,
                                                                 const TargetKey& key);
  // Targets ordered by (resource id, dimension), after `cursor` (from TargetCursor of the
  // last row of the previous page; empty for the first page), at most limit of them.
  Result<std::vector<ScalableTarget>> ListTargets(const std::string& account,
                                                  const std::string& region,
                                                  const TargetFilter& filter,
                                                  const std::string& cursor, int limit);
  static std::string TargetCursor(const ScalableTarget& target);
  // Every target of every account and region (the engine's work list).
  Result<std::vector<ScalableTarget>> AllTargets();
  // Records the time of a scale-out (out = true) or scale-in on the target's clock.
  Status RecordScaling(const std::string& account, const std::string& region, const TargetKey& key,
                       bool out, double when);

  // ---- policies
  Result<std::optional<ScalingPolicy>> GetPolicy(const std::string& account,
                                                 const std::string& region, const TargetKey& key,
                                                 const std::string& name);
  // Creates or replaces the policy. REQUIRES: its target exists.
  Status PutPolicy(const ScalingPolicy& policy);
  // False when there was no such policy.
  Result<bool> DeletePolicy(const std::string& account, const std::string& region,
                            const TargetKey& key, const std::string& name);
  // Policies ordered by (resource id, dimension, name), after cursor, at most limit.
  Result<std::vector<ScalingPolicy>> ListPolicies(const std::string& account,
                                                  const std::string& region,
                                                  const PolicyFilter& filter,
                                                  const std::string& cursor, int limit);
  static std::string PolicyCursor(const ScalingPolicy& policy);
  Result<std::vector<ScalingPolicy>> PoliciesOf(const std::string& account,
                                                const std::string& region, const TargetKey& key);

  // ---- activities
  // Appends the activity; returns its sequence number.
  Result<int64_t> AddActivity(const ScalingActivity& activity);
  // Activities of the namespace (and resource / dimension when not empty), newest first,
  // older than before_seq (0: from the newest), at most limit.
  Result<std::vector<ScalingActivity>> ListActivities(
      const std::string& account, const std::string& region, const std::string& service_namespace,
      const std::string& resource_id, const std::string& dimension, int64_t before_seq, int limit);
  // Deletes activities that started before `before` (epoch seconds).
  Status ExpireActivities(double before);

 private:
  explicit AutoScalingStore(store::Database& db) : db_(db) {}

  store::Database& db_;
};

}  // namespace nimbus::services::autoscaling
