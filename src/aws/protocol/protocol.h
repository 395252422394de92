// The protocol engine's entry points: find the operation a request addresses, turn the
// request into the operation's input Value, validate it, and turn an output Value or an
// error Status into the HTTP response the client's protocol expects.
//
// Protocols: awsJson 1.0/1.1 ("json"), "rest-json", "rest-xml", "query" (and "ec2"), and
// Smithy RPC v2 CBOR. The protocol is the one the *client* spoke, which for services that
// offer several (CloudWatch: query, json, cbor) can differ from request to request; the
// response always uses the client's.
//
// Thread-safety: stateless functions over immutable models.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "aws/model/model.h"
#include "core/result.h"
#include "core/value.h"
#include "http/types.h"

namespace nimbus::aws::protocol {

enum class Protocol { kJson, kRestJson, kRestXml, kQuery, kRpcV2Cbor };

std::string_view ProtocolName(Protocol protocol);

struct ResolvedOperation {
  const model::ServiceModel* service = nullptr;
  const model::Operation* operation = nullptr;
  Protocol protocol = Protocol::kJson;
  // rest protocols: URI labels matched from the path, percent-decoded ("Key" -> "a/b c").
  std::map<std::string, std::string> uri_labels;
};

// Finds the service and operation. signing_name is the service of the SigV4 credential
// scope ("" when unsigned). body is the full request body when it has been read ("" for
// streaming operations); the query protocol carries Action in it.
// Errors: kMissingAction (no or unknown operation, message names it),
// kSerialization (unreadable request).
Result<ResolvedOperation> Resolve(const model::ModelRegistry& models, const http::Request& request,
                                  std::string_view signing_name, std::string_view body);

// Builds the input Value from URI labels, query string, headers and body. For an
// operation whose payload member is streaming, the body is not consumed: the handler
// reads request.body itself and body is "".
// Errors: kSerialization for undecodable bodies, kValidation for values of the wrong type.
Result<Value> ParseRequest(const ResolvedOperation& op, const http::Request& request,
                           std::string_view body);

// Checks value against shape's constraints: required members, enums, min/max length
// and value, patterns, recursively. The error names the member path and the
// constraint, worded as AWS words it ("1 validation error detected: Value 'x' at
// 'userName' failed to satisfy constraint: Member must have length less than or equal
// to 64").
Status Validate(const model::Shape& shape, const Value& value);

// Serializes a handler's output (status code, headers, body) in op.protocol.
http::Response SerializeResponse(const ResolvedOperation& op, const Value& output,
                                 std::string_view request_id);

// Serializes an error in `protocol`. service may be null (the request never resolved).
// The code and HTTP status come from the Status when it carries them, otherwise from
// its ErrorKind through the per-protocol table in errors.cc.
http::Response SerializeError(const model::ServiceModel* service, Protocol protocol,
                              const Status& status, std::string_view request_id);

// The protocol a request speaks, judged from its headers and path alone (used when a
// request fails before it resolves, so that the error is still in the client's format).
Protocol SniffProtocol(const http::Request& request, const model::ServiceModel* service);

}  // namespace nimbus::aws::protocol
