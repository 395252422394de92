// Facts about an operation's HTTP bindings that the dispatcher needs before it parses a
// request or after it serializes a response: which member is the payload, and whether
// the request or response body is a stream the handler reads or writes itself (S3
// PutObject/GetObject, Lambda InvokeWithResponseStream) rather than bytes in a Value.
// Thread-safety: pure functions over immutable models.
#pragma once

#include "aws/model/model.h"

namespace nimbus::aws::protocol {

// The member named by shape's `payload` trait; nullptr when shape is null or has none.
const model::Member* PayloadMember(const model::Shape* shape);

// True when the input payload is a streaming blob: the dispatcher must not read the
// body (pass body "" to Resolve/ParseRequest); the handler reads request.body.
bool StreamsRequestBody(const model::Operation& op);

// True when the output payload is a streaming blob: a handler may leave that member out
// of its output and set http::Response::body_stream on the serialized response instead.
bool StreamsResponseBody(const model::Operation& op);

}  // namespace nimbus::aws::protocol
