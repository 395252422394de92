// Value: the JSON-like tree that every AWS request and response passes through between
// the protocol layer and the service handlers. It adds two kinds to JSON's: Blob (raw
// bytes, base64 on JSON wires, a byte string in CBOR) and Timestamp (seconds since the
// epoch, rendered per protocol). Maps keep their keys sorted, so output is deterministic.
//
// Thread-safety: like a std::string; concurrent reads are safe, writes need exclusion.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace nimbus {

class Value {
 public:
  enum class Type { kNull, kBool, kInt, kDouble, kString, kBlob, kTimestamp, kList, kMap };
  using List = std::vector<Value>;
  using Map = std::map<std::string, Value, std::less<>>;

  Value() = default;
  Value(std::nullptr_t) {}                                                    // NOLINT
  Value(bool b) : type_(Type::kBool), data_(b) {}                             // NOLINT
  Value(int i) : type_(Type::kInt), data_(int64_t{i}) {}                      // NOLINT
  Value(int64_t i) : type_(Type::kInt), data_(i) {}                           // NOLINT
  Value(uint64_t i) : type_(Type::kInt), data_(static_cast<int64_t>(i)) {}    // NOLINT
  Value(double d) : type_(Type::kDouble), data_(d) {}                         // NOLINT
  Value(const char* s) : type_(Type::kString), data_(std::string(s)) {}       // NOLINT
  Value(std::string s) : type_(Type::kString), data_(std::move(s)) {}         // NOLINT
  Value(std::string_view s) : type_(Type::kString), data_(std::string(s)) {}  // NOLINT
  Value(List l) : type_(Type::kList), data_(std::move(l)) {}                  // NOLINT
  Value(Map m) : type_(Type::kMap), data_(std::move(m)) {}                    // NOLINT

  static Value Blob(std::string bytes);
  static Value Timestamp(double epoch_seconds);
  static Value MakeList() { return Value(List{}); }
  static Value MakeMap() { return Value(Map{}); }
  // Value::Object({{"A", 1}, {"B", "x"}})
  static Value Object(std::initializer_list<std::pair<const std::string, Value>> members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_int() const { return type_ == Type::kInt; }
  bool is_double() const { return type_ == Type::kDouble; }
  bool is_number() const { return type_ == Type::kInt || type_ == Type::kDouble; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_blob() const { return type_ == Type::kBlob; }
  bool is_timestamp() const { return type_ == Type::kTimestamp; }
  bool is_list() const { return type_ == Type::kList; }
  bool is_map() const { return type_ == Type::kMap; }

  // Accessors convert leniently between numeric kinds; on a kind mismatch they return
  // the zero value rather than throwing.
  bool AsBool() const;
  int64_t AsInt() const;
  double AsDouble() const;              // also the epoch seconds of a Timestamp
  const std::string& AsString() const;  // String or Blob bytes; empty otherwise

  // REQUIRES: is_list() / is_map() for the const forms. The mutable forms turn a null
  // Value into an empty list/map first.
  const List& list() const;
  const Map& map() const;
  List& list();
  Map& map();

  // Map helpers. Find returns nullptr when absent or when this is not a map.
  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  Value& operator[](std::string_view key);  // inserts null; turns null into a map
  std::string GetString(std::string_view key, std::string_view fallback = "") const;
  int64_t GetInt(std::string_view key, int64_t fallback = 0) const;
  bool GetBool(std::string_view key, bool fallback = false) const;
  void Erase(std::string_view key);

  // List helper; turns null into a list.
  void Append(Value v);
  // Number of list elements or map members; 0 for scalars.
  size_t size() const;

  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

 private:
  Type type_ = Type::kNull;
  std::variant<std::monostate, bool, int64_t, double, std::string, List, Map> data_;
};

}  // namespace nimbus
