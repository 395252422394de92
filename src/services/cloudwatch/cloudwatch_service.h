// The CloudWatch service (model "cloudwatch", SigV4 signing name "monitoring"; clients
// speak query, JSON 1.0 or Smithy RPC v2 CBOR, which the protocol engine turns into the
// same Values): metrics — PutMetricData, GetMetricStatistics, GetMetricData, ListMetrics —
// and metric alarms — PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric,
// DeleteAlarms, SetAlarmState, DescribeAlarmHistory, Enable/DisableAlarmActions and
// Tag/Untag/ListTagsForResource on alarm ARNs — over telemetry::MetricStore, scoped by the
// caller's account and region. The handlers only translate Values; validation and
// behaviour live in the store, except the reserved "AWS/" namespaces, which only the
// server's own writers may use.
//
// Thread-safety: the handlers hold no state of their own; MetricStore is thread-safe.
#pragma once

#include "aws/service.h"
#include "telemetry/metric_store.h"

namespace nimbus::services {

// Registers the CloudWatch operations under service "cloudwatch". store must outlive
// registry.
void RegisterCloudWatchService(aws::ServiceRegistry& registry, telemetry::MetricStore& store);

}  // namespace nimbus::services
