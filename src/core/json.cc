#include "core/json.h"

#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace nimbus {
namespace {

nlohmann::json ToNlohmann(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      return nullptr;
    case Value::Type::kBool:
      return v.AsBool();
    case Value::Type::kInt:
      return v.AsInt();
    case Value::Type::kDouble:
    case Value::Type::kTimestamp:
      return v.AsDouble();
    case Value::Type::kString:
      return v.AsString();
    case Value::Type::kBlob:
      return Base64Encode(v.AsString());
    case Value::Type::kList: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : v.list()) out.push_back(ToNlohmann(e));
      return out;
    }
    case Value::Type::kMap: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [k, e] : v.map()) out[k] = ToNlohmann(e);
      return out;
    }
  }
  return nullptr;
}

Value FromNlohmann(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value();
    case nlohmann::json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return Value(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      Value out = Value::MakeList();
      for (const auto& e : j) out.Append(FromNlohmann(e));
      return out;
    }
    case nlohmann::json::value_t::object: {
      Value out = Value::MakeMap();
      for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = FromNlohmann(it.value());
      return out;
    }
    default:
      return Value();
  }
}

void AppendHex4(std::string& out, uint32_t unit) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
}

}  // namespace

std::string ToJson(const Value& value) {
  return ToNlohmann(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Value> ParseJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Serialization("the body is not valid JSON");
  return FromNlohmann(j);
}

void AppendJsonString(std::string& out, std::string_view s, bool ascii_only) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (c == '"' || c == '\\') out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c >= 0x80 && !ascii_only) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          AppendHex4(out, c);  // other control characters, and DEL
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: 2 to 4 bytes, no overlong forms, no surrogates, at most U+10FFFF.
    const int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    uint32_t cp = extra == 3 ? (c & 0x07u) : extra == 2 ? (c & 0x0Fu) : (c & 0x1Fu);
    bool valid = extra > 0 && c <= 0xF4 && i + static_cast<size_t>(extra) < s.size();
    for (int k = 1; valid && k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      valid = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (valid && (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) {
      valid = false;
    }
    if (!valid) {
      AppendHex4(out, 0xFFFD);
      ++i;
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      AppendHex4(out, 0xD800 + (cp >> 10));
      AppendHex4(out, 0xDC00 + (cp & 0x3FF));
    } else {
      AppendHex4(out, cp);
    }
    i += static_cast<size_t>(extra) + 1;
  }
  out += '"';
}

}  // namespace nimbus
