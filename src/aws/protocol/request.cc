// ParseRequest(): the operation's input Value from a request, per protocol.
#include "aws/protocol/bindings.h"
#include "aws/protocol/cbor.h"
#include "aws/protocol/protocol.h"
#include "aws/protocol/query.h"
#include "aws/protocol/rest_xml.h"
#include "aws/protocol/routing.h"
#include "aws/protocol/scalar.h"
#include "aws/protocol/wire_value.h"
#include "core/json.h"
#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {

using model::Member;
using model::Shape;
using model::ShapeType;

constexpr int kMaxJsonDepth = 100;

bool IsBlobOrString(const Shape& s) {
  return s.type == ShapeType::kBlob || s.type == ShapeType::kString;
}

Result<Value> ParseJsonDocument(std::string_view body) {
  if (!JsonDepthWithin(body, kMaxJsonDepth)) {
    return Status::Serialization("The JSON body nests deeper than " +
                                 std::to_string(kMaxJsonDepth) + " levels");
  }
  NIMBUS_ASSIGN_OR_RETURN(Value wire, ParseJson(body));
  if (!wire.is_map()) return Status::Serialization("The JSON body is not an object");
  return wire;
}

bool Blank(std::string_view body) { return Trim(body).empty(); }

Result<Value> ParseJsonBody(const Shape* input, std::string_view body, WireFormat format) {
  if (!input) return Value::MakeMap();
  Value wire = Value::MakeMap();
  if (format == WireFormat::kCbor) {
    if (!body.empty()) {
      NIMBUS_ASSIGN_OR_RETURN(wire, DecodeCbor(body));
      if (!wire.is_map()) return Status::Serialization("The CBOR body is not a map");
    }
  } else if (!Blank(body)) {
    NIMBUS_ASSIGN_OR_RETURN(wire, ParseJsonDocument(body));
  }
  WireOptions options;
  options.format = format;
  return ReadWireValue(*input, wire, options);
}

// A header value as a typed Value.
Result<Value> HeaderValue(const Member& m, const std::string& text) {
  const Shape& shape = *m.shape;
  if (m.json_value) {
    auto decoded = Base64Decode(Trim(text));
    if (!decoded) {
      return Status::Serialization("Header " + m.WireName() + " is not valid base64");
    }
    if (!JsonDepthWithin(*decoded, kMaxJsonDepth)) {
      return Status::Serialization("Header " + m.WireName() + " nests too deeply");
    }
    auto parsed = ParseJson(*decoded);
    if (!parsed.ok()) {
      return Status::Serialization("Header " + m.WireName() + " is not base64-encoded JSON");
    }
    return parsed;
  }
  if (shape.type == ShapeType::kList) {
    Value out = Value::MakeList();
    for (const std::string& part : Split(text, ',')) {
      NIMBUS_ASSIGN_OR_RETURN(Value v,
                              ParseScalarText(*shape.member->shape, Trim(part), m.WireName()));
      out.list().push_back(std::move(v));
    }
    return out;
  }
  return ParseScalarText(shape, Trim(text), m.WireName());
}

Status BindQueryString(const Shape& input, const Params& query, Value* out) {
  for (const Member& m : input.members) {
    if (m.location != "querystring") continue;
    const Shape& shape = *m.shape;
    if (shape.type == ShapeType::kMap) {
      // A map takes every parameter no other member names.
      Value map = Value::MakeMap();
      for (const auto& [k, v] : query) {
        bool bound = false;
        for (const Member& other : input.members) {
          bound =
              bound || (other.location == "querystring" && &other != &m && other.WireName() == k);
        }
        if (bound) continue;
        const Shape& val = *shape.value->shape;
        if (val.type == ShapeType::kList) {
          NIMBUS_ASSIGN_OR_RETURN(Value e, ParseScalarText(*val.member->shape, v, k));
          map[k].Append(std::move(e));
        } else if (!map.Has(k)) {
          NIMBUS_ASSIGN_OR_RETURN(Value e, ParseScalarText(val, v, k));
          map[k] = std::move(e);
        }
      }
      if (map.size() > 0) (*out)[m.name] = std::move(map);
      continue;
    }
    if (shape.type == ShapeType::kList) {
      Value list = Value::MakeList();
      for (const auto& [k, v] : query) {
        if (k != m.WireName()) continue;
        NIMBUS_ASSIGN_OR_RETURN(Value e, ParseScalarText(*shape.member->shape, v, k));
        list.list().push_back(std::move(e));
      }
      if (list.size() > 0) (*out)[m.name] = std::move(list);
      continue;
    }
    for (const auto& [k, v] : query) {
      if (k != m.WireName()) continue;
      NIMBUS_ASSIGN_OR_RETURN(Value e, ParseScalarText(shape, v, k));
      (*out)[m.name] = std::move(e);
      break;
    }
  }
  return Status::Ok();
}

Status BindHeaders(const Shape& input, const http::Headers& headers, Value* out) {
  for (const Member& m : input.members) {
    if (m.location == "header") {
      const std::string* h = headers.Find(m.WireName());
      if (!h) continue;
      NIMBUS_ASSIGN_OR_RETURN(Value v, HeaderValue(m, *h));
      (*out)[m.name] = std::move(v);
    } else if (m.location == "headers") {
      std::string prefix = ToLower(m.WireName());
      Value map = Value::MakeMap();
      for (const auto& [name, value] : headers.entries()) {
        std::string lower = ToLower(name);
        if (lower.size() > prefix.size() && StartsWith(lower, prefix)) {
          map[lower.substr(prefix.size())] = Value(value);
        }
      }
      if (map.size() > 0) (*out)[m.name] = std::move(map);
    }
  }
  return Status::Ok();
}

Result<Value> ParseRest(const ResolvedOperation& op, const http::Request& request,
                        std::string_view body) {
  const Shape* input = op.operation->input;
  Value out = Value::MakeMap();
  if (!input) return out;
  for (const Member& m : input->members) {
    if (m.location != "uri") continue;
    auto it = op.uri_labels.find(m.WireName());
    if (it == op.uri_labels.end()) continue;
    NIMBUS_ASSIGN_OR_RETURN(Value v, ParseScalarText(*m.shape, it->second, m.WireName()));
    out[m.name] = std::move(v);
  }
  NIMBUS_RETURN_IF_ERROR(BindQueryString(*input, request.QueryParams(), &out));
  NIMBUS_RETURN_IF_ERROR(BindHeaders(*input, request.headers, &out));

  bool json = op.protocol == Protocol::kRestJson;
  if (const Member* payload = PayloadMember(input)) {
    const Shape& shape = *payload->shape;
    if (IsBlobOrString(shape)) {
      if (!payload->streaming && !body.empty()) {
        out[payload->name] = shape.type == ShapeType::kBlob ? Value::Blob(std::string(body))
                                                            : Value(std::string(body));
      }
      return out;
    }
    if (!json) {
      NIMBUS_RETURN_IF_ERROR(ParseRestXmlBody(*op.operation, body, &out));
      return out;
    }
    if (!Blank(body)) {
      NIMBUS_ASSIGN_OR_RETURN(Value wire, ParseJsonDocument(body));
      NIMBUS_ASSIGN_OR_RETURN(Value v, ReadWireValue(shape, wire, WireOptions{}));
      out[payload->name] = std::move(v);
    }
    return out;
  }
  if (!json) {
    NIMBUS_RETURN_IF_ERROR(ParseRestXmlBody(*op.operation, body, &out));
    return out;
  }
  if (!Blank(body)) {
    NIMBUS_ASSIGN_OR_RETURN(Value wire, ParseJsonDocument(body));
    WireOptions options;
    options.body_members_only = true;
    NIMBUS_ASSIGN_OR_RETURN(Value members, ReadWireValue(*input, wire, options));
    for (auto& [k, v] : members.map()) out[k] = std::move(v);
  }
  return out;
}

}  // namespace

const model::Member* PayloadMember(const model::Shape* shape) {
  if (!shape || shape->payload.empty()) return nullptr;
  return shape->FindMember(shape->payload);
}

bool StreamsRequestBody(const model::Operation& op) {
  const Member* m = PayloadMember(op.input);
  return m && m->streaming;
}

bool StreamsResponseBody(const model::Operation& op) {
  const Member* m = PayloadMember(op.output);
  return m && m->streaming;
}

Result<Value> ParseRequest(const ResolvedOperation& op, const http::Request& request,
                           std::string_view body) {
  switch (op.protocol) {
    case Protocol::kJson:
      return ParseJsonBody(op.operation->input, body, WireFormat::kJson);
    case Protocol::kRpcV2Cbor:
      return ParseJsonBody(op.operation->input, body, WireFormat::kCbor);
    case Protocol::kQuery: {
      Params params = request.QueryParams();
      if (IsFormRequest(request)) {
        Params form = ParseFormParams(body);
        params.insert(params.end(), form.begin(), form.end());
      }
      return ParseQueryParams(op.operation->input, params);
    }
    case Protocol::kRestJson:
    case Protocol::kRestXml:
      return ParseRest(op, request, body);
  }
  return Status::Internal("unknown protocol");
}

}  // namespace nimbus::aws::protocol
