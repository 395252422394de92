#include "core/json.h"

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

}  // namespace

std::string ToJson(const Value& value) {
  return ToNlohmann(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Value> ParseJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Serialization("the body is not valid JSON");
  return FromNlohmann(j);
}

}  // namespace nimbus
