// The CloudWatch Logs service (json 1.1, API version 2014-03-28): thin handlers that map
// the model's input Values onto telemetry::LogStore and its results onto the output
// shapes. Covers log groups (create/delete/describe, retention policies, tags by name and
// by ARN), log streams (create/delete/describe) and events (PutLogEvents, GetLogEvents,
// FilterLogEvents with filter patterns). State is scoped by the caller's account and the
// request's region.
//
// Authorization resources: operations that name a log group are authorized on its ARN,
// arn:aws:logs:<region>:<account>:log-group:<name>:* (the form IAM policies write); those
// that name a stream too (PutLogEvents, GetLogEvents, DeleteLogStream) on
// arn:aws:logs:<region>:<account>:log-group:<group>:log-stream:<stream>, which the
// same policies match; TagResource and friends on the ARN given.
//
// Thread-safety: the handlers hold no state of their own; LogStore is thread-safe.
#pragma once

#include "aws/service.h"
#include "telemetry/log_store.h"

namespace nimbus::services {

// Registers the Logs operations under service "logs". store must outlive registry.
void RegisterLogsService(aws::ServiceRegistry& registry, telemetry::LogStore& store);

}  // namespace nimbus::services
