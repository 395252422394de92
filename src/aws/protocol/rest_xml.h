// The body half of the rest-xml protocol (S3): the XML document of a request or a
// response, per botocore's RestXMLSerializer / RestXMLParser. The URI, query-string,
// header and status-code bindings are protocol.cc's; members bound to those locations are
// skipped here. Blob and string payloads (PutObject's Body, GetBucketPolicy's Policy) are
// raw bytes, not XML, and are left to the caller too.
//
// Body layout: when the input/output shape has a `payload` member that is a structure,
// the body is that structure, rooted at the payload member's locationName
// (PutBucketTagging: <Tagging xmlns=...>); otherwise the shape's unbound members sit
// under one root element (the operation's input locationName for requests; for
// responses the output shape's locationName or S3's documented root name, e.g.
// ListBucketResult, else the output shape's name).
//
// Thread-safety: pure functions over immutable models.
#pragma once

#include <string>
#include <string_view>

#include "aws/model/model.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::aws::protocol {

// S3's response namespace, used when neither the shape nor the service names one.
inline constexpr std::string_view kS3XmlNamespace = "http://s3.amazonaws.com/doc/2006-03-01/";

// Parses the XML body of a request into the body members of *input (made a map if null;
// members already set from URI/headers are kept). An empty body sets nothing; so does an
// operation whose payload is a blob or string.
// Errors: kSerialization for malformed or hostile XML, or a scalar that does not parse.
Status ParseRestXmlBody(const model::Operation& op, std::string_view body, Value* input);

// The XML body of a response (with an XML declaration), or "" when the output has no
// XML body: no output shape, only header/status members, a blob or string payload, or a
// structure payload absent from output.
std::string SerializeRestXmlBody(const model::ServiceModel& service, const model::Operation& op,
                                 const Value& output);

// S3's error document:
// <?xml ...?><Error><Code/><Message/><RequestId/></Error>
std::string SerializeRestXmlError(std::string_view code, std::string_view message,
                                  std::string_view request_id);

}  // namespace nimbus::aws::protocol
