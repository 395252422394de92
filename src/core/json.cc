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

// Builds a Value straight from nlohmann's SAX events: parsing into an nlohmann::json first
// and converting that tree cost twice the allocations. Duplicate keys keep the last value,
// as nlohmann::json::parse does.
class ValueBuilder {
 public:
  using string_t = std::string;
  using binary_t = nlohmann::json::binary_t;

  Value Take() { return std::move(root_); }

  bool null() { return Add(Value()); }
  bool boolean(bool b) { return Add(Value(b)); }
  bool number_integer(int64_t i) { return Add(Value(i)); }
  bool number_unsigned(uint64_t u) { return Add(Value(u)); }
  bool number_float(double d, const std::string&) { return Add(Value(d)); }
  bool string(std::string& s) { return Add(Value(std::move(s))); }
  bool binary(binary_t&) { return false; }  // JSON text has no binary values
  bool start_object(size_t) { return Open(Value::MakeMap()); }
  bool key(std::string& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return Close(); }
  bool start_array(size_t) { return Open(Value::MakeList()); }
  bool end_array() { return Close(); }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  // Places v in the open container (or at the root) and returns where it now lives.
  Value* Place(Value v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Value& parent = *open_.back();
    if (parent.is_list()) {
      parent.list().push_back(std::move(v));
      return &parent.list().back();
    }
    Value& slot = parent.map()[key_];
    slot = std::move(v);
    return &slot;
  }
  bool Add(Value v) {
    Place(std::move(v));
    return true;
  }
  bool Open(Value container) {
    open_.push_back(Place(std::move(container)));
    return true;
  }
  bool Close() {
    open_.pop_back();
    return true;
  }

  Value root_;
  std::vector<Value*> open_;  // the containers being filled, innermost last
  std::string key_;           // the key of the next member of the innermost map
};

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
  ValueBuilder builder;
  if (!nlohmann::json::sax_parse(text, &builder)) {
    return Status::Serialization("the body is not valid JSON");
  }
  return builder.Take();
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
