// SerializeResponse(): an operation's output Value as the HTTP response of a protocol.
#include "aws/protocol/bindings.h"
#include "aws/protocol/cbor.h"
#include "aws/protocol/protocol.h"
#include "aws/protocol/query.h"
#include "aws/protocol/rest_xml.h"
#include "aws/protocol/scalar.h"
#include "aws/protocol/wire_value.h"
#include "core/json.h"
#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {

using model::Member;
using model::Shape;
using model::ShapeType;

std::string HeaderText(const Member& m, const Value& v) {
  const Shape& shape = *m.shape;
  if (m.json_value) return Base64Encode(v.is_string() ? v.AsString() : ToJson(v));
  if (shape.type == ShapeType::kList && v.is_list()) {
    std::string out;
    for (const Value& e : v.list()) {
      if (!out.empty()) out += ", ";
      const Shape& es = *shape.member->shape;
      out += FormatScalarText(es, e, TimestampFormatFor(&*shape.member, es, kRfc822));
    }
    return out;
  }
  return FormatScalarText(shape, v, TimestampFormatFor(&m, shape, kRfc822));
}

bool HasBodyMembers(const Shape& shape) {
  for (const Member& m : shape.members) {
    if (m.location.empty()) return true;
  }
  return false;
}

void SerializeRest(const ResolvedOperation& op, const Value& output, http::Response* r) {
  r->status = op.operation->http_response_code;
  const Shape* shape = op.operation->output;
  bool json = op.protocol == Protocol::kRestJson;
  if (!shape) return;
  for (const Member& m : shape->members) {
    const Value* v = output.Find(m.name);
    if (!v || v->is_null()) continue;
    if (m.location == "header") {
      r->headers.Set(m.WireName(), HeaderText(m, *v));
    } else if (m.location == "headers" && v->is_map()) {
      for (const auto& [k, e] : v->map()) r->headers.Set(m.WireName() + k, e.AsString());
    } else if (m.location == "statusCode" && v->is_number()) {
      r->status = static_cast<int>(v->AsInt());
    }
  }
  if (const Member* payload = PayloadMember(shape)) {
    const Value* v = output.Find(payload->name);
    const Shape& ps = *payload->shape;
    if (ps.type == ShapeType::kBlob || ps.type == ShapeType::kString) {
      if (v && !v->is_null()) {
        r->body = v->AsString();
        if (!r->headers.Has("Content-Type")) {
          r->headers.Set("Content-Type",
                         ps.type == ShapeType::kBlob ? "application/octet-stream" : "text/plain");
        }
      }
      return;
    }
    if (!json) {
      r->body = SerializeRestXmlBody(*op.service, *op.operation, output);
    } else if (v && !v->is_null()) {
      r->body = ToJson(WriteWireValue(ps, *v, WireOptions{}));
    }
  } else if (!json) {
    r->body = SerializeRestXmlBody(*op.service, *op.operation, output);
  } else if (HasBodyMembers(*shape)) {
    WireOptions options;
    options.body_members_only = true;
    r->body = ToJson(WriteWireValue(*shape, output, options));
  }
  if (!r->body.empty() && !r->headers.Has("Content-Type")) {
    r->headers.Set("Content-Type", json ? "application/json" : "application/xml");
  }
}

}  // namespace

http::Response SerializeResponse(const ResolvedOperation& op, const Value& output,
                                 std::string_view request_id) {
  http::Response r;
  r.headers.Set("x-amzn-RequestId", std::string(request_id));
  const Shape* shape = op.operation->output;
  switch (op.protocol) {
    case Protocol::kJson: {
      const std::string& version = op.service->json_version;
      r.headers.Set("Content-Type",
                    "application/x-amz-json-" + (version.empty() ? "1.0" : version));
      r.body = shape ? ToJson(WriteWireValue(*shape, output, WireOptions{})) : "{}";
      break;
    }
    case Protocol::kRpcV2Cbor: {
      r.headers.Set("Content-Type", "application/cbor");
      r.headers.Set("smithy-protocol", "rpc-v2-cbor");
      WireOptions options;
      options.format = WireFormat::kCbor;
      r.body = EncodeCbor(shape ? WriteWireValue(*shape, output, options) : Value::MakeMap());
      break;
    }
    case Protocol::kQuery:
      r.headers.Set("Content-Type", "text/xml");
      r.body = SerializeQueryResponse(*op.service, *op.operation, output, request_id);
      break;
    case Protocol::kRestJson:
    case Protocol::kRestXml:
      SerializeRest(op, output, &r);
      break;
  }
  if (op.protocol == Protocol::kRestXml) {
    r.headers.Set("x-amz-request-id", std::string(request_id));
    if (op.service->name == "s3") r.headers.Set("x-amz-id-2", Base64Encode(request_id));
  }
  return r;
}

}  // namespace nimbus::aws::protocol
