// The AWS query protocol (IAM, STS, CloudWatch's query form): form-encoded request
// parameters in, XML out. The rules are botocore's QuerySerializer / QueryParser:
//   - a structure member is keyed by its locationName or name (ec2's queryName when set),
//     nested structures as A.B.C;
//   - lists as Name.member.N (the list member's locationName replaces "member"), or
//     flattened as Name.N; "Name=" alone is an empty list;
//   - maps as Name.entry.N.key / Name.entry.N.value (flattened: Name.N.key), with the
//     map's key/value locationNames;
//   - responses are <{Op}Response xmlns=...><{Op}Result>...</{Op}Result>
//     <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata></{Op}Response>.
//
// Thread-safety: pure functions over immutable models.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/model/model.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::aws::protocol {

// Keys with more dot-separated parts than this are refused (kSerialization).
inline constexpr size_t kMaxQueryKeyDepth = 64;

// Builds the input Value of an operation from its decoded query parameters (the form
// body and/or URL query string, in order; for a repeated key the last one wins).
// input may be null (an operation without input): the result is an empty map.
// Parameters the shape does not name (Action, Version, unknown ones) are ignored; list
// elements are ordered by their index N whatever the order or gaps of the parameters.
// Errors: kSerialization when a scalar does not parse (the message names the parameter)
// or a key nests deeper than kMaxQueryKeyDepth.
Result<Value> ParseQueryParams(const model::Shape* input,
                               const std::vector<std::pair<std::string, std::string>>& params);

// The XML body of a successful response. The result element is op.result_wrapper, else
// {Op}Result; it is omitted when the operation has no output shape.
std::string SerializeQueryResponse(const model::ServiceModel& service, const model::Operation& op,
                                   const Value& output, std::string_view request_id);

// <ErrorResponse xmlns=...><Error><Type>Sender|Receiver</Type><Code/><Message/></Error>
// <RequestId/></ErrorResponse>. service may be null (the request never resolved): the
// xmlns attribute is then left out.
std::string SerializeQueryError(const model::ServiceModel* service, std::string_view code,
                                std::string_view message, bool sender_fault,
                                std::string_view request_id);

}  // namespace nimbus::aws::protocol
