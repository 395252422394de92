#include "aws/protocol/wire_value.h"

#include <cmath>
#include <string>

#include "aws/protocol/scalar.h"
#include "core/clock.h"
#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {

using model::Member;
using model::Shape;
using model::ShapeType;

std::string_view TypeName(ShapeType t) {
  switch (t) {
    case ShapeType::kStructure:
      return "structure";
    case ShapeType::kList:
      return "list";
    case ShapeType::kMap:
      return "map";
    case ShapeType::kString:
      return "string";
    case ShapeType::kInteger:
      return "integer";
    case ShapeType::kLong:
      return "long";
    case ShapeType::kFloat:
      return "float";
    case ShapeType::kDouble:
      return "double";
    case ShapeType::kBigDecimal:
      return "decimal";
    case ShapeType::kBoolean:
      return "boolean";
    case ShapeType::kBlob:
      return "blob";
    case ShapeType::kTimestamp:
      return "timestamp";
  }
  return "value";
}

Status WrongType(const Shape& shape, const std::string& path) {
  return Status::Serialization("Unexpected value type at '" + (path.empty() ? "$" : path) +
                               "': expected " + std::string(TypeName(shape.type)));
}

std::string Join(const std::string& path, std::string_view part) {
  return path.empty() ? std::string(part) : path + "." + std::string(part);
}

Result<Value> Read(const Shape& shape, const Value& w, const WireOptions& opts,
                   const std::string& path, bool top) {
  if (shape.is_document) return w;
  switch (shape.type) {
    case ShapeType::kStructure: {
      if (!w.is_map()) return WrongType(shape, path);
      Value out = Value::MakeMap();
      for (const Member& m : shape.members) {
        if (top && opts.body_members_only && !m.location.empty()) continue;
        const Value* field = w.Find(m.WireName());
        if (!field || field->is_null()) continue;
        NIMBUS_ASSIGN_OR_RETURN(Value v, Read(*m.shape, *field, opts, Join(path, m.name), false));
        out.map()[m.name] = std::move(v);
      }
      return out;
    }
    case ShapeType::kList: {
      if (!w.is_list()) return WrongType(shape, path);
      Value out = Value::MakeList();
      size_t i = 0;
      for (const Value& e : w.list()) {
        if (e.is_null()) {
          out.list().emplace_back();
        } else {
          NIMBUS_ASSIGN_OR_RETURN(Value v, Read(*shape.member->shape, e, opts,
                                                path + "[" + std::to_string(i) + "]", false));
          out.list().push_back(std::move(v));
        }
        ++i;
      }
      return out;
    }
    case ShapeType::kMap: {
      if (!w.is_map()) return WrongType(shape, path);
      Value out = Value::MakeMap();
      for (const auto& [k, e] : w.map()) {
        if (e.is_null()) {
          out.map()[k] = Value();
          continue;
        }
        NIMBUS_ASSIGN_OR_RETURN(Value v, Read(*shape.value->shape, e, opts, Join(path, k), false));
        out.map()[k] = std::move(v);
      }
      return out;
    }
    case ShapeType::kString:
      if (!w.is_string()) return WrongType(shape, path);
      return w;
    case ShapeType::kBoolean:
      if (!w.is_bool()) return WrongType(shape, path);
      return w;
    case ShapeType::kInteger:
    case ShapeType::kLong:
      if (w.is_int()) return w;
      if (w.is_double() && std::isfinite(w.AsDouble()) &&
          w.AsDouble() == std::floor(w.AsDouble())) {
        return Value(static_cast<int64_t>(w.AsDouble()));
      }
      return WrongType(shape, path);
    case ShapeType::kFloat:
    case ShapeType::kDouble:
    case ShapeType::kBigDecimal:
      if (w.is_number()) return Value(w.AsDouble());
      if (w.is_string()) {
        if (w.AsString() == "NaN") return Value(std::nan(""));
        if (w.AsString() == "Infinity") return Value(HUGE_VAL);
        if (w.AsString() == "-Infinity") return Value(-HUGE_VAL);
      }
      return WrongType(shape, path);
    case ShapeType::kBlob:
      if (w.is_blob()) return w;
      if (w.is_string()) {
        if (opts.format == WireFormat::kCbor) return Value::Blob(w.AsString());
        auto bytes = Base64Decode(w.AsString());
        if (!bytes) {
          return Status::Serialization("Value at '" + path + "' is not valid base64");
        }
        return Value::Blob(std::move(*bytes));
      }
      return WrongType(shape, path);
    case ShapeType::kTimestamp: {
      if (w.is_timestamp()) return w;
      if (w.is_number()) return Value::Timestamp(w.AsDouble());
      double t = 0;
      if (w.is_string() && ParseTimestamp(w.AsString(), &t)) return Value::Timestamp(t);
      return WrongType(shape, path);
    }
  }
  return WrongType(shape, path);
}

Value WriteDouble(double d, WireFormat format) {
  if (format == WireFormat::kJson && !std::isfinite(d)) {
    return Value(std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"));
  }
  return Value(d);
}

Value Write(const Shape& shape, const Member* member, const Value& v, const WireOptions& opts,
            bool top) {
  if (v.is_null() || shape.is_document) return v;
  switch (shape.type) {
    case ShapeType::kStructure: {
      Value out = Value::MakeMap();
      if (!v.is_map()) return out;
      for (const Member& m : shape.members) {
        if (top && opts.body_members_only && !m.location.empty()) continue;
        const Value* field = v.Find(m.name);
        if (!field || field->is_null()) continue;
        out.map()[m.WireName()] = Write(*m.shape, &m, *field, opts, false);
      }
      return out;
    }
    case ShapeType::kList: {
      Value out = Value::MakeList();
      if (!v.is_list()) return out;
      for (const Value& e : v.list()) {
        out.list().push_back(Write(*shape.member->shape, &*shape.member, e, opts, false));
      }
      return out;
    }
    case ShapeType::kMap: {
      Value out = Value::MakeMap();
      if (!v.is_map()) return out;
      for (const auto& [k, e] : v.map()) {
        out.map()[k] = Write(*shape.value->shape, &*shape.value, e, opts, false);
      }
      return out;
    }
    case ShapeType::kTimestamp: {
      double t = v.AsDouble();
      if (v.is_string() && !ParseTimestamp(v.AsString(), &t)) return v;
      std::string_view format = TimestampFormatFor(member, shape, kUnixTimestamp);
      if (format == kUnixTimestamp) return Value::Timestamp(t);
      return Value(FormatTimestamp(t, format));
    }
    case ShapeType::kBlob:
      return Value::Blob(v.AsString());
    case ShapeType::kInteger:
    case ShapeType::kLong:
      if (v.is_number()) return Value(v.AsInt());
      return v;
    case ShapeType::kFloat:
    case ShapeType::kDouble:
    case ShapeType::kBigDecimal:
      if (v.is_number()) return WriteDouble(v.AsDouble(), opts.format);
      return v;
    case ShapeType::kBoolean:
    case ShapeType::kString:
      return v;
  }
  return v;
}

}  // namespace

Result<Value> ReadWireValue(const Shape& shape, const Value& wire, const WireOptions& options) {
  return Read(shape, wire, options, "", true);
}

Value WriteWireValue(const Shape& shape, const Value& value, const WireOptions& options) {
  // A handler with nothing to say returns null: that is an empty structure, not `null`.
  if (shape.type == ShapeType::kStructure && !shape.is_document && value.is_null()) {
    return Value::MakeMap();
  }
  return Write(shape, nullptr, value, options, true);
}

bool JsonDepthWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

}  // namespace nimbus::aws::protocol
