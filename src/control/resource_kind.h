// ResourceKind: how one type of AWS resource behaves, declared once, as data, by the
// service that owns it (a SageMaker training job, a Comprehend document classifier, a
// Forecast predictor …), so that one ResourceStore serves every kind alike.
//
// A kind names its service and type, how its ARN is spelled
// (arn:<partition>:<arn_service>:<region>:<account>:<arn_resource_type>/<name>, with the
// name lower-cased where the service does so, as SageMaker does), its state machine
// (initial status, the allowed transitions, the terminal statuses that controllers no
// longer reconcile), and the exact errors the service returns: codes and message
// templates (ErrorSpec), so that a not-found training job reads as SageMaker's
// "ValidationException: Requested resource not found." and a missing Comprehend
// classifier as "ResourceNotFoundException".
//
// Message templates may use {name} {arn} {kind} {display} {Display} {status} {target}
// {account} {region} {token} {max} {key}; unknown placeholders stay as written.
//
// Thread-safety: a ResourceKind is a plain value; once built, read it from any thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace nimbus::control {

// One AWS error as data.
struct ErrorSpec {
  std::string code;  // "ResourceNotFound", "ValidationException", ...
  int http_status = 400;
  std::string message;  // a template, see above
};

// The wording of every error the generic implementation can return for a kind.
struct ErrorWording {
  ErrorSpec not_found;             // Describe/Update/Delete/Tag of a name or ARN that is unknown
  ErrorSpec in_use;                // Create with a name already taken
  ErrorSpec idempotency_mismatch;  // a reused ClientToken with a different request
  ErrorSpec invalid_transition;    // e.g. StopTrainingJob on a Completed job
  ErrorSpec invalid_token;         // a NextToken that is not one we minted for this query
  ErrorSpec too_many_tags;         // more than kMaxTagsPerResource after a change
  // The code of every other input error (tag key/value rules, MaxResults, SortBy …).
  std::string validation_code = "ValidationException";
};

// SageMaker's wording: ResourceNotFound, ResourceInUse, ValidationException.
ErrorWording SageMakerErrors();
// The wording most JSON services share (Comprehend, Forecast, Personalize …):
// ResourceNotFoundException, ResourceInUseException, TooManyTagsException.
ErrorWording StandardErrors();

struct StateMachine {
  std::string initial_status;            // "InProgress"
  std::string initial_secondary_status;  // "Starting"; empty when the kind has none
  // status -> the statuses it may move to. A change of only the secondary status
  // (InProgress/Downloading -> InProgress/Training) is always allowed.
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> transitions;
  // Statuses in which no controller has work left (Completed, Failed, Stopped). A
  // terminal status may still list transitions (a Failed endpoint may be updated).
  std::set<std::string, std::less<>> terminal;

  bool Allows(std::string_view from, std::string_view to) const;
  bool IsTerminal(std::string_view status) const;
};

struct ResourceKind {
  std::string service;       // "sagemaker" (the service model's name)
  std::string kind;          // "TrainingJob"
  std::string display_name;  // "training job", for messages; empty: kind

  std::string arn_service;        // "sagemaker"
  std::string arn_resource_type;  // "training-job"
  char arn_separator = '/';       // ':' for Lambda functions and Logs groups
  bool lowercase_name_in_arn = false;
  // Names that differ only in case name one resource (SageMaker's rule, which its
  // lower-cased ARNs imply).
  bool case_insensitive_names = false;

  StateMachine states;
  ErrorWording errors = StandardErrors();

  int default_max_results = 10;  // List* page size when MaxResults is absent
  int max_max_results = 100;

  std::string Arn(std::string_view account, std::string_view region, std::string_view name) const;
  // The key under which names are unique within (kind, account, region).
  std::string NameKey(std::string_view name) const;
  std::string Display() const { return display_name.empty() ? kind : display_name; }
};

// A kind with SageMaker's conventions: ARN namespace "sagemaker", lower-cased names in
// ARNs, case-insensitive names, SageMaker's error wording, pages of 10.
ResourceKind SageMakerKind(std::string kind, std::string display_name,
                           std::string arn_resource_type, StateMachine states);

// "aws", "aws-cn" or "aws-us-gov", from the region name.
std::string PartitionForRegion(std::string_view region);

struct ParsedArn {
  std::string partition;
  std::string service;
  std::string region;
  std::string account;
  std::string resource;  // "training-job/my-job"
};
// nullopt when arn is not arn:partition:service:region:account:resource.
std::optional<ParsedArn> ParseArn(std::string_view arn);

using MessageVars = std::vector<std::pair<std::string_view, std::string>>;
// The message of spec with {placeholders} replaced from vars.
std::string FormatMessage(std::string_view templ, const MessageVars& vars);
// The Status for spec; kind is the ErrorKind it carries inside Nimbus.
Status MakeError(const ErrorSpec& spec, ErrorKind kind, const MessageVars& vars);

}  // namespace nimbus::control
