#include "aws/protocol/scalar.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/clock.h"
#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {
using model::ShapeType;

Status BadValue(std::string_view what, std::string_view text, std::string_view type) {
  return Status::Serialization("Value '" + std::string(text.substr(0, 256)) + "' for '" +
                               std::string(what) + "' is not a valid " + std::string(type));
}

std::string FormatDouble(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  return std::string(buf, ptr);
}
}  // namespace

std::string_view TimestampFormatFor(const model::Member* member, const model::Shape& shape,
                                    std::string_view fallback) {
  if (member && !member->timestamp_format.empty()) return member->timestamp_format;
  if (!shape.timestamp_format.empty()) return shape.timestamp_format;
  return fallback;
}

std::string FormatTimestamp(double epoch_seconds, std::string_view format) {
  if (format == kUnixTimestamp) {
    if (epoch_seconds == std::floor(epoch_seconds)) {
      return std::to_string(static_cast<int64_t>(epoch_seconds));
    }
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f", epoch_seconds);
    return buf;
  }
  if (format == kRfc822) return FormatHttpDate(epoch_seconds);
  return FormatIso8601(epoch_seconds);
}

bool ParseTimestamp(std::string_view text, double* epoch_seconds) {
  std::string s(Trim(text));
  if (s.empty()) return false;
  double d = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec == std::errc() && ptr == s.data() + s.size()) {
    *epoch_seconds = d;
    return true;
  }
  return ParseIso8601(s, epoch_seconds) || ParseHttpDate(s, epoch_seconds);
}

Result<Value> ParseScalarText(const model::Shape& shape, std::string_view text,
                              std::string_view what) {
  switch (shape.type) {
    case ShapeType::kString:
      return Value(std::string(text));
    case ShapeType::kBoolean:
      if (text == "true") return Value(true);
      if (text == "false") return Value(false);
      return BadValue(what, text, "boolean");
    case ShapeType::kInteger:
    case ShapeType::kLong: {
      auto v = ParseInt(Trim(text));
      if (!v) return BadValue(what, text, "integer");
      return Value(*v);
    }
    case ShapeType::kFloat:
    case ShapeType::kDouble:
    case ShapeType::kBigDecimal: {
      std::string_view t = Trim(text);
      if (t == "NaN") return Value(std::nan(""));
      if (t == "Infinity") return Value(HUGE_VAL);
      if (t == "-Infinity") return Value(-HUGE_VAL);
      double d = 0;
      auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
      if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) {
        return BadValue(what, text, "number");
      }
      return Value(d);
    }
    case ShapeType::kBlob: {
      auto bytes = Base64Decode(text);
      if (!bytes) return BadValue(what, text, "base64 blob");
      return Value::Blob(std::move(*bytes));
    }
    case ShapeType::kTimestamp: {
      double t = 0;
      if (!ParseTimestamp(text, &t)) return BadValue(what, text, "timestamp");
      return Value::Timestamp(t);
    }
    default:
      return BadValue(what, text, "scalar");
  }
}

std::string FormatScalarText(const model::Shape& shape, const Value& value,
                             std::string_view timestamp_format) {
  switch (value.type()) {
    case Value::Type::kBool:
      return value.AsBool() ? "true" : "false";
    case Value::Type::kInt:
      if (shape.type == ShapeType::kTimestamp) {
        return FormatTimestamp(value.AsDouble(), timestamp_format);
      }
      return std::to_string(value.AsInt());
    case Value::Type::kDouble:
      if (shape.type == ShapeType::kTimestamp) {
        return FormatTimestamp(value.AsDouble(), timestamp_format);
      }
      if (shape.type == ShapeType::kInteger || shape.type == ShapeType::kLong) {
        return std::to_string(value.AsInt());
      }
      return FormatDouble(value.AsDouble());
    case Value::Type::kTimestamp:
      return FormatTimestamp(value.AsDouble(), timestamp_format);
    case Value::Type::kBlob:
      return Base64Encode(value.AsString());
    case Value::Type::kString:
      if (shape.type == ShapeType::kBlob) return Base64Encode(value.AsString());
      return value.AsString();
    default:
      return "";
  }
}

}  // namespace nimbus::aws::protocol
