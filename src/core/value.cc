#include "core/value.h"

namespace nimbus {
namespace {
const std::string kEmptyString;
const Value::List kEmptyList;
const Value::Map kEmptyMap;
}  // namespace

Value Value::Blob(std::string bytes) {
  Value v(std::move(bytes));
  v.type_ = Type::kBlob;
  return v;
}

Value Value::Timestamp(double epoch_seconds) {
  Value v(epoch_seconds);
  v.type_ = Type::kTimestamp;
  return v;
}

Value Value::Object(std::initializer_list<std::pair<const std::string, Value>> members) {
  return Value(Map(members));
}

bool Value::AsBool() const {
  if (type_ == Type::kBool) return std::get<bool>(data_);
  if (type_ == Type::kString) return AsString() == "true";
  return false;
}

int64_t Value::AsInt() const {
  switch (type_) {
    case Type::kInt:
      return std::get<int64_t>(data_);
    case Type::kDouble:
    case Type::kTimestamp:
      return static_cast<int64_t>(std::get<double>(data_));
    case Type::kBool:
      return std::get<bool>(data_) ? 1 : 0;
    default:
      return 0;
  }
}

double Value::AsDouble() const {
  switch (type_) {
    case Type::kInt:
      return static_cast<double>(std::get<int64_t>(data_));
    case Type::kDouble:
    case Type::kTimestamp:
      return std::get<double>(data_);
    default:
      return 0;
  }
}

const std::string& Value::AsString() const {
  if (type_ == Type::kString || type_ == Type::kBlob) return std::get<std::string>(data_);
  return kEmptyString;
}

const Value::List& Value::list() const {
  return type_ == Type::kList ? std::get<List>(data_) : kEmptyList;
}
const Value::Map& Value::map() const {
  return type_ == Type::kMap ? std::get<Map>(data_) : kEmptyMap;
}

Value::List& Value::list() {
  if (type_ != Type::kList) {
    type_ = Type::kList;
    data_ = List{};
  }
  return std::get<List>(data_);
}

Value::Map& Value::map() {
  if (type_ != Type::kMap) {
    type_ = Type::kMap;
    data_ = Map{};
  }
  return std::get<Map>(data_);
}

const Value* Value::Find(std::string_view key) const {
  if (type_ != Type::kMap) return nullptr;
  const auto& m = std::get<Map>(data_);
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

Value* Value::Find(std::string_view key) {
  if (type_ != Type::kMap) return nullptr;
  auto& m = std::get<Map>(data_);
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

Value& Value::operator[](std::string_view key) {
  auto& m = map();
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(std::string(key), Value()).first;
  return it->second;
}

std::string Value::GetString(std::string_view key, std::string_view fallback) const {
  const Value* v = Find(key);
  return v && (v->is_string() || v->is_blob()) ? v->AsString() : std::string(fallback);
}

int64_t Value::GetInt(std::string_view key, int64_t fallback) const {
  const Value* v = Find(key);
  return v && v->is_number() ? v->AsInt() : fallback;
}

bool Value::GetBool(std::string_view key, bool fallback) const {
  const Value* v = Find(key);
  return v && v->is_bool() ? v->AsBool() : fallback;
}

void Value::Erase(std::string_view key) {
  if (type_ != Type::kMap) return;
  auto& m = std::get<Map>(data_);
  auto it = m.find(key);
  if (it != m.end()) m.erase(it);
}

void Value::Append(Value v) { list().push_back(std::move(v)); }

size_t Value::size() const {
  if (type_ == Type::kList) return std::get<List>(data_).size();
  if (type_ == Type::kMap) return std::get<Map>(data_).size();
  return 0;
}

bool Value::operator==(const Value& other) const {
  return type_ == other.type_ && data_ == other.data_;
}

}  // namespace nimbus
