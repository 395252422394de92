// Validate(): the model constraints, reported the way AWS's request validation words
// them. Member paths are lowerCamelCase; list elements that are structures appear as
// `list.N.member` (1-based), and constraints on the scalars inside a list or map are
// reported once for the whole collection ("Member must satisfy constraint: [...]",
// "Map keys must satisfy constraint: [...]"), as AWS does.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "aws/protocol/pattern.h"
#include "aws/protocol/protocol.h"

namespace nimbus::aws::protocol {
namespace {

using model::Shape;
using model::ShapeType;

bool IsNumeric(ShapeType t) {
  return t == ShapeType::kInteger || t == ShapeType::kLong || t == ShapeType::kFloat ||
         t == ShapeType::kDouble || t == ShapeType::kBigDecimal;
}

bool IsIntegral(ShapeType t) { return t == ShapeType::kInteger || t == ShapeType::kLong; }

std::string FormatNumber(double d, bool integral) {
  if (integral || (d == std::floor(d) && std::fabs(d) < 1e15)) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), integral ? "%.0f" : "%.1f", d);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", d);
  return buf;
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string LowerCamel(std::string_view name) {
  std::string out(name);
  if (!out.empty() && out[0] >= 'A' && out[0] <= 'Z') out[0] = static_cast<char>(out[0] + 32);
  return out;
}

std::string Join(const std::string& path, std::string_view part) {
  return path.empty() ? std::string(part) : path + "." + std::string(part);
}

// Java's toString of the value, as AWS's messages show it.
std::string Render(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return v.AsBool() ? "true" : "false";
    case Value::Type::kInt:
      return std::to_string(v.AsInt());
    case Value::Type::kDouble:
      return FormatNumber(v.AsDouble(), false);
    case Value::Type::kTimestamp:
      return FormatNumber(v.AsDouble(), false);
    case Value::Type::kString:
      return v.AsString();
    case Value::Type::kBlob:
      return "java.nio.HeapByteBuffer[pos=0 lim=" + std::to_string(v.AsString().size()) +
             " cap=" + std::to_string(v.AsString().size()) + "]";
    case Value::Type::kList: {
      std::string out = "[";
      for (size_t i = 0; i < v.list().size(); ++i) {
        if (i) out += ", ";
        out += Render(v.list()[i]);
      }
      return out + "]";
    }
    case Value::Type::kMap: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, e] : v.map()) {
        if (!first) out += ", ";
        first = false;
        out += k + "=" + Render(e);
      }
      return out + "}";
    }
  }
  return "";
}

class Validator {
 public:
  void Check(const Shape& shape, const Value& v, const std::string& path) {
    switch (shape.type) {
      case ShapeType::kStructure:
        CheckStructure(shape, v, path);
        return;
      case ShapeType::kList:
        CheckList(shape, v, path);
        return;
      case ShapeType::kMap:
        CheckMap(shape, v, path);
        return;
      default: {
        std::vector<std::string> failed;
        ScalarConstraints(shape, v, &failed);
        for (const std::string& f : failed) Add(shape, v, path, f);
        return;
      }
    }
  }

  Status Result() const {
    if (errors_.empty()) return Status::Ok();
    std::string msg =
        std::to_string(errors_.size()) +
        (errors_.size() == 1 ? " validation error detected: " : " validation errors detected: ");
    for (size_t i = 0; i < errors_.size(); ++i) {
      if (i) msg += "; ";
      msg += errors_[i];
    }
    return Status::Validation(std::move(msg));
  }

 private:
  void Add(const Shape& shape, const Value& v, const std::string& path,
           const std::string& constraint) {
    std::string value =
        shape.sensitive && !v.is_null() ? "" : (v.is_null() ? "null" : "'" + Render(v) + "'");
    errors_.push_back("Value " + (value.empty() ? "" : value + " ") + "at '" + path +
                      "' failed to satisfy constraint: " + constraint);
  }

  // Appends the descriptions of the constraints a scalar value breaks.
  static void ScalarConstraints(const Shape& shape, const Value& v, std::vector<std::string>* out) {
    auto add = [out](std::string c) {
      for (const auto& e : *out) {
        if (e == c) return;
      }
      out->push_back(std::move(c));
    };
    if (v.is_null()) return;
    if (shape.type == ShapeType::kString && v.is_string()) {
      const std::string& s = v.AsString();
      if (!shape.enum_values.empty()) {
        bool ok = false;
        for (const auto& e : shape.enum_values) ok = ok || e == s;
        if (!ok) {
          std::string set;
          for (size_t i = 0; i < shape.enum_values.size(); ++i) {
            if (i) set += ", ";
            set += shape.enum_values[i];
          }
          add("Member must satisfy enum value set: [" + set + "]");
        }
      }
      LengthConstraints(shape, CodePoints(s), add);
      if (!shape.pattern.empty() && MatchPattern(shape.pattern, s) == PatternResult::kNoMatch) {
        add("Member must satisfy regular expression pattern: " + shape.pattern);
      }
    } else if (shape.type == ShapeType::kBlob && (v.is_blob() || v.is_string())) {
      LengthConstraints(shape, v.AsString().size(), add);
    } else if (IsNumeric(shape.type) && v.is_number()) {
      bool integral = IsIntegral(shape.type);
      double d = v.AsDouble();
      if (shape.min && d < *shape.min) {
        add("Member must have value greater than or equal to " +
            FormatNumber(*shape.min, integral));
      }
      if (shape.max && d > *shape.max) {
        add("Member must have value less than or equal to " + FormatNumber(*shape.max, integral));
      }
    }
  }

  template <typename Add>
  static void LengthConstraints(const Shape& shape, size_t n, Add& add) {
    if (shape.min && static_cast<double>(n) < *shape.min) {
      add("Member must have length greater than or equal to " + FormatNumber(*shape.min, true));
    }
    if (shape.max && static_cast<double>(n) > *shape.max) {
      add("Member must have length less than or equal to " + FormatNumber(*shape.max, true));
    }
  }

  void CheckSize(const Shape& shape, const Value& v, const std::string& path) {
    std::vector<std::string> failed;
    auto add = [&failed](std::string c) { failed.push_back(std::move(c)); };
    LengthConstraints(shape, v.size(), add);
    for (const std::string& f : failed) Add(shape, v, path, f);
  }

  void CheckStructure(const Shape& shape, const Value& v, const std::string& path) {
    if (!v.is_map() || shape.is_document) return;
    for (const model::Member& m : shape.members) {
      const Value* field = v.Find(m.name);
      std::string member_path = Join(path, LowerCamel(m.name));
      if (!field || field->is_null()) {
        if (shape.IsRequired(m.name)) {
          Add(*m.shape, Value(), member_path, "Member must not be null");
        }
        continue;
      }
      Check(*m.shape, *field, member_path);
    }
  }

  static bool IsCollection(const Shape& s) {
    return s.type == ShapeType::kStructure || s.type == ShapeType::kList ||
           s.type == ShapeType::kMap;
  }

  void CheckList(const Shape& shape, const Value& v, const std::string& path) {
    if (!v.is_list()) return;
    CheckSize(shape, v, path);
    const Shape& elem = *shape.member->shape;
    if (IsCollection(elem)) {
      for (size_t i = 0; i < v.list().size(); ++i) {
        if (v.list()[i].is_null()) continue;
        Check(elem, v.list()[i], path + "." + std::to_string(i + 1) + ".member");
      }
      return;
    }
    std::vector<std::string> failed;
    for (const Value& e : v.list()) ScalarConstraints(elem, e, &failed);
    if (!failed.empty())
      Add(shape, v, path, "Member must satisfy constraint: [" + Joined(failed) + "]");
  }

  void CheckMap(const Shape& shape, const Value& v, const std::string& path) {
    if (!v.is_map()) return;
    CheckSize(shape, v, path);
    std::vector<std::string> key_failed;
    for (const auto& [k, e] : v.map()) ScalarConstraints(*shape.key->shape, Value(k), &key_failed);
    if (!key_failed.empty()) {
      Add(shape, v, path, "Map keys must satisfy constraint: [" + Joined(key_failed) + "]");
    }
    const Shape& val = *shape.value->shape;
    if (IsCollection(val)) {
      for (const auto& [k, e] : v.map()) {
        if (!e.is_null()) Check(val, e, Join(path, k));
      }
      return;
    }
    std::vector<std::string> failed;
    for (const auto& [k, e] : v.map()) ScalarConstraints(val, e, &failed);
    if (!failed.empty()) {
      Add(shape, v, path, "Map value must satisfy constraint: [" + Joined(failed) + "]");
    }
  }

  static std::string Joined(const std::vector<std::string>& parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i) out += ", ";
      out += parts[i];
    }
    return out;
  }

  std::vector<std::string> errors_;
};

}  // namespace

Status Validate(const model::Shape& shape, const Value& value) {
  Validator v;
  v.Check(shape, value, "");
  return v.Result();
}

}  // namespace nimbus::aws::protocol
