#include "aws/protocol/cbor.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace nimbus::aws::protocol {
namespace {

constexpr uint8_t kBreak = 0xff;
constexpr uint64_t kIndefinite = ~uint64_t{0};

Status Malformed(std::string what) { return Status::Serialization("Malformed CBOR: " + what); }

double HalfToDouble(uint16_t half) {
  int exp = (half >> 10) & 0x1f;
  int mant = half & 0x3ff;
  double val;
  if (exp == 0) {
    val = std::ldexp(mant, -24);
  } else if (exp != 31) {
    val = std::ldexp(mant + 1024, exp - 25);
  } else {
    val = mant == 0 ? std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::quiet_NaN();
  }
  return (half & 0x8000) ? -val : val;
}

class Decoder {
 public:
  Decoder(std::string_view in, const CborLimits& limits) : in_(in), limits_(limits) {}

  Result<Value> DecodeAll() {
    NIMBUS_ASSIGN_OR_RETURN(Value v, Item(0));
    if (pos_ != in_.size()) return Malformed("trailing bytes after the top-level item");
    return v;
  }

 private:
  size_t left() const { return in_.size() - pos_; }

  Result<uint64_t> ReadUint(size_t n) {
    if (left() < n) return Malformed("truncated input");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(in_[pos_ + i]);
    pos_ += n;
    return v;
  }

  // Reads the argument of an initial byte; kIndefinite for additional info 31.
  Result<uint64_t> Argument(uint8_t info) {
    if (info < 24) return uint64_t{info};
    switch (info) {
      case 24:
        return ReadUint(1);
      case 25:
        return ReadUint(2);
      case 26:
        return ReadUint(4);
      case 27:
        return ReadUint(8);
      case 31:
        return kIndefinite;
      default:
        return Malformed("reserved additional information " + std::to_string(info));
    }
  }

  Result<std::string> Bytes(uint64_t len) {
    if (len > left()) return Malformed("string length exceeds the input");
    std::string s(in_.substr(pos_, len));
    pos_ += len;
    return s;
  }

  // A definite or indefinite byte/text string of major type `major`.
  Result<std::string> String(int major, uint64_t arg) {
    if (arg != kIndefinite) return Bytes(arg);
    std::string out;
    while (true) {
      if (left() < 1) return Malformed("unterminated indefinite-length string");
      uint8_t ib = static_cast<uint8_t>(in_[pos_++]);
      if (ib == kBreak) return out;
      if ((ib >> 5) != major) return Malformed("string chunk of another major type");
      NIMBUS_ASSIGN_OR_RETURN(uint64_t len, Argument(ib & 0x1f));
      if (len == kIndefinite) return Malformed("nested indefinite-length string");
      NIMBUS_ASSIGN_OR_RETURN(std::string chunk, Bytes(len));
      out += chunk;
    }
  }

  bool AtBreak() const { return left() > 0 && static_cast<uint8_t>(in_[pos_]) == kBreak; }

  Result<Value> Item(int depth) {
    if (depth > limits_.max_depth) return Malformed("nesting exceeds the depth limit");
    if (left() < 1) return Malformed("truncated input");
    uint8_t ib = static_cast<uint8_t>(in_[pos_++]);
    int major = ib >> 5;
    uint8_t info = ib & 0x1f;
    if (major == 7) return Simple(info);
    NIMBUS_ASSIGN_OR_RETURN(uint64_t arg, Argument(info));
    if (arg == kIndefinite && (major == 0 || major == 1 || major == 6)) {
      return Malformed("indefinite length on major type " + std::to_string(major));
    }
    switch (major) {
      case 0:
        if (arg > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Value(static_cast<double>(arg));
        }
        return Value(static_cast<int64_t>(arg));
      case 1:
        if (arg > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Value(-1.0 - static_cast<double>(arg));
        }
        return Value(-1 - static_cast<int64_t>(arg));
      case 2: {
        NIMBUS_ASSIGN_OR_RETURN(std::string s, String(2, arg));
        return Value::Blob(std::move(s));
      }
      case 3: {
        NIMBUS_ASSIGN_OR_RETURN(std::string s, String(3, arg));
        return Value(std::move(s));
      }
      case 4: {
        // Every element takes at least one byte: a count beyond that is a lie.
        if (arg != kIndefinite && arg > left()) return Malformed("array length exceeds the input");
        Value out = Value::MakeList();
        for (uint64_t i = 0; arg == kIndefinite || i < arg; ++i) {
          if (arg == kIndefinite && AtBreak()) {
            ++pos_;
            break;
          }
          NIMBUS_ASSIGN_OR_RETURN(Value e, Item(depth + 1));
          out.list().push_back(std::move(e));
        }
        return out;
      }
      case 5: {
        if (arg != kIndefinite && arg > left() / 2)
          return Malformed("map length exceeds the input");
        Value out = Value::MakeMap();
        for (uint64_t i = 0; arg == kIndefinite || i < arg; ++i) {
          if (arg == kIndefinite && AtBreak()) {
            ++pos_;
            break;
          }
          NIMBUS_ASSIGN_OR_RETURN(Value key, Item(depth + 1));
          if (!key.is_string()) return Malformed("map key is not a text string");
          NIMBUS_ASSIGN_OR_RETURN(Value val, Item(depth + 1));
          out.map()[key.AsString()] = std::move(val);
        }
        return out;
      }
      case 6: {
        NIMBUS_ASSIGN_OR_RETURN(Value inner, Item(depth + 1));
        if (arg == 1) {
          if (!inner.is_number()) return Malformed("tag 1 (epoch time) over a non-number");
          return Value::Timestamp(inner.AsDouble());
        }
        return inner;
      }
    }
    return Malformed("unreachable major type");
  }

  Result<Value> Simple(uint8_t info) {
    switch (info) {
      case 20:
        return Value(false);
      case 21:
        return Value(true);
      case 22:
      case 23:
        return Value();
      case 25: {
        NIMBUS_ASSIGN_OR_RETURN(uint64_t h, ReadUint(2));
        return Value(HalfToDouble(static_cast<uint16_t>(h)));
      }
      case 26: {
        NIMBUS_ASSIGN_OR_RETURN(uint64_t bits, ReadUint(4));
        uint32_t b32 = static_cast<uint32_t>(bits);
        float f;
        std::memcpy(&f, &b32, sizeof(f));
        return Value(static_cast<double>(f));
      }
      case 27: {
        NIMBUS_ASSIGN_OR_RETURN(uint64_t bits, ReadUint(8));
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        return Value(d);
      }
      case 31:
        return Malformed("unexpected break");
      default:
        return Malformed("unsupported simple value " + std::to_string(info));
    }
  }

  std::string_view in_;
  const CborLimits& limits_;
  size_t pos_ = 0;
};

void Head(std::string* out, int major, uint64_t arg) {
  uint8_t mt = static_cast<uint8_t>(major << 5);
  if (arg < 24) {
    out->push_back(static_cast<char>(mt | arg));
    return;
  }
  int n;
  uint8_t info;
  if (arg <= 0xff) {
    n = 1, info = 24;
  } else if (arg <= 0xffff) {
    n = 2, info = 25;
  } else if (arg <= 0xffffffffULL) {
    n = 4, info = 26;
  } else {
    n = 8, info = 27;
  }
  out->push_back(static_cast<char>(mt | info));
  for (int i = n - 1; i >= 0; --i) out->push_back(static_cast<char>((arg >> (8 * i)) & 0xff));
}

void PutBits(std::string* out, uint8_t ib, uint64_t bits, int n) {
  out->push_back(static_cast<char>(ib));
  for (int i = n - 1; i >= 0; --i) out->push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void PutDouble(std::string* out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  PutBits(out, 0xfb, bits, 8);
}

// The IEEE half-precision bits of d when d converts exactly, else -1.
int32_t ExactHalf(double d) {
  if (std::isnan(d)) return 0x7e00;
  if (std::isinf(d)) return d > 0 ? 0x7c00 : 0xfc00;
  uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  double a = std::fabs(d);
  if (a == 0) return sign;
  int exp;
  double frac = std::frexp(a, &exp);  // a = frac * 2^exp, frac in [0.5, 1)
  int e = exp - 1;                    // a = (2*frac) * 2^e
  if (e >= -14 && e <= 15) {
    double mant = (2 * frac - 1) * 1024;
    if (mant != std::floor(mant)) return -1;
    return sign | ((e + 15) << 10) | static_cast<int>(mant);
  }
  if (e < -14 && e >= -24) {
    double mant = a * std::ldexp(1.0, 24);
    if (mant != std::floor(mant)) return -1;
    return sign | static_cast<int>(mant);
  }
  return -1;
}

void PutFloat(std::string* out, double d) {
  if (int32_t half = ExactHalf(d); half >= 0) {
    PutBits(out, 0xf9, static_cast<uint32_t>(half), 2);
    return;
  }
  float f = static_cast<float>(d);
  if (static_cast<double>(f) == d) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    PutBits(out, 0xfa, bits, 4);
    return;
  }
  PutDouble(out, d);
}

void Encode(const Value& v, std::string* out) {
  switch (v.type()) {
    case Value::Type::kNull:
      out->push_back(static_cast<char>(0xf6));
      return;
    case Value::Type::kBool:
      out->push_back(static_cast<char>(v.AsBool() ? 0xf5 : 0xf4));
      return;
    case Value::Type::kInt: {
      int64_t i = v.AsInt();
      if (i >= 0) {
        Head(out, 0, static_cast<uint64_t>(i));
      } else {
        Head(out, 1, static_cast<uint64_t>(-1 - i));
      }
      return;
    }
    case Value::Type::kDouble:
      PutFloat(out, v.AsDouble());
      return;
    case Value::Type::kTimestamp:
      Head(out, 6, 1);
      PutDouble(out, v.AsDouble());
      return;
    case Value::Type::kString:
      Head(out, 3, v.AsString().size());
      out->append(v.AsString());
      return;
    case Value::Type::kBlob:
      Head(out, 2, v.AsString().size());
      out->append(v.AsString());
      return;
    case Value::Type::kList:
      Head(out, 4, v.list().size());
      for (const Value& e : v.list()) Encode(e, out);
      return;
    case Value::Type::kMap:
      Head(out, 5, v.map().size());
      for (const auto& [k, e] : v.map()) {
        Head(out, 3, k.size());
        out->append(k);
        Encode(e, out);
      }
      return;
  }
}

}  // namespace

Result<Value> DecodeCbor(std::string_view bytes, const CborLimits& limits) {
  return Decoder(bytes, limits).DecodeAll();
}

std::string EncodeCbor(const Value& value) {
  std::string out;
  Encode(value, &out);
  return out;
}

}  // namespace nimbus::aws::protocol
