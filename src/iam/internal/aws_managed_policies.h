// The built-in, read-only AWS managed policies (arn:aws:iam::aws:policy/<name>): the few
// that Nimbus users attach most, with documents written after AWS's own.
//
// Thread-safety: immutable static data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nimbus::iam::internal {

struct AwsManagedPolicy {
  std::string name;
  std::string arn;  // arn:aws:iam::aws:policy/<name>
  std::string policy_id;
  std::string description;
  std::string document;
  double create_date;
  double update_date;
};

const std::vector<AwsManagedPolicy>& AwsManagedPolicies();
// nullptr when arn names no built-in policy.
const AwsManagedPolicy* FindAwsManagedPolicy(std::string_view arn);

}  // namespace nimbus::iam::internal
