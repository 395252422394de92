// CBOR codec: RFC 8949 Appendix A vectors, round trips, and hostile input.
#include "aws/protocol/cbor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {

std::string Hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

struct Vector {
  const char* hex;
  Value value;
};

// RFC 8949 Appendix A, in preferred serialization (so encoding must reproduce them).
const Vector kCanonical[] = {
    {"00", Value(0)},
    {"01", Value(1)},
    {"0a", Value(10)},
    {"17", Value(23)},
    {"1818", Value(24)},
    {"1864", Value(100)},
    {"1903e8", Value(1000)},
    {"1a000f4240", Value(1000000)},
    {"1b000000e8d4a51000", Value(int64_t{1000000000000})},
    {"20", Value(-1)},
    {"29", Value(-10)},
    {"3863", Value(-100)},
    {"3903e7", Value(-1000)},
    {"f90000", Value(0.0)},
    {"f93c00", Value(1.0)},
    {"f93e00", Value(1.5)},
    {"f97bff", Value(65504.0)},
    {"fa47c35000", Value(100000.0)},
    {"fa7f7fffff", Value(3.4028234663852886e+38)},
    {"fb7e37e43c8800759c", Value(1.0e+300)},
    {"f90001", Value(5.960464477539063e-8)},
    {"f90400", Value(0.00006103515625)},
    {"f9c400", Value(-4.0)},
    {"fbc010666666666666", Value(-4.1)},
    {"f4", Value(false)},
    {"f5", Value(true)},
    {"f6", Value()},
    {"40", Value::Blob("")},
    {"4401020304", Value::Blob(std::string("\x01\x02\x03\x04", 4))},
    {"60", Value("")},
    {"6161", Value("a")},
    {"6449455446", Value("IETF")},
    {"62225c", Value("\"\\")},
    {"62c3bc", Value("\u00fc")},
    {"80", Value::MakeList()},
    {"83010203", Value(Value::List{1, 2, 3})},
    {"8301820203820405", Value(Value::List{1, Value(Value::List{2, 3}), Value(Value::List{4, 5})})},
    {"a0", Value::MakeMap()},
    {"a26161016162820203", Value::Object({{"a", 1}, {"b", Value(Value::List{2, 3})}})},
};

TEST(CborTest, DecodesAndEncodesRfc8949Vectors) {
  for (const Vector& v : kCanonical) {
    auto decoded = DecodeCbor(Hex(v.hex));
    ASSERT_TRUE(decoded.ok()) << v.hex << ": " << decoded.status().message();
    EXPECT_EQ(*decoded, v.value) << v.hex;
    EXPECT_EQ(HexEncode(EncodeCbor(v.value)), v.hex);
  }
}

TEST(CborTest, DecodesNonCanonicalForms) {
  // Indefinite-length strings, arrays and maps (RFC 8949 Appendix A).
  EXPECT_EQ(*DecodeCbor(Hex("5f42010243030405ff")), Value::Blob(std::string("\1\2\3\4\5", 5)));
  EXPECT_EQ(*DecodeCbor(Hex("7f657374726561646d696e67ff")), Value("streaming"));
  EXPECT_EQ(*DecodeCbor(Hex("9fff")), Value::MakeList());
  EXPECT_EQ(*DecodeCbor(Hex("9f018202039f0405ffff")),
            Value(Value::List{1, Value(Value::List{2, 3}), Value(Value::List{4, 5})}));
  EXPECT_EQ(*DecodeCbor(Hex("bf61610161629f0203ffff")),
            Value::Object({{"a", 1}, {"b", Value(Value::List{2, 3})}}));
  // Non-minimal integer and a double-width 1.5.
  EXPECT_EQ(*DecodeCbor(Hex("1b0000000000000001")), Value(1));
  EXPECT_EQ(*DecodeCbor(Hex("fb3ff8000000000000")), Value(1.5));
  // Half-precision infinity and NaN.
  EXPECT_TRUE(std::isinf(DecodeCbor(Hex("f97c00"))->AsDouble()));
  EXPECT_TRUE(std::isnan(DecodeCbor(Hex("f97e00"))->AsDouble()));
  // Undefined reads as null; unknown tags keep their content.
  EXPECT_TRUE(DecodeCbor(Hex("f7"))->is_null());
  EXPECT_EQ(*DecodeCbor(Hex("d82076687474703a2f2f7777772e6578616d706c652e636f6d")),
            Value("http://www.example.com"));
}

TEST(CborTest, Tag1IsATimestampBothWays) {
  auto t = DecodeCbor(Hex("c11a514b67b0"));  // 1(1363896240)
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->is_timestamp());
  EXPECT_EQ(t->AsDouble(), 1363896240.0);
  auto frac = DecodeCbor(Hex("c1fb41d452d9ec200000"));  // 1(1363896240.5)
  ASSERT_TRUE(frac.ok());
  EXPECT_EQ(frac->AsDouble(), 1363896240.5);
  EXPECT_EQ(HexEncode(EncodeCbor(Value::Timestamp(1363896240.5))), "c1fb41d452d9ec200000");
}

TEST(CborTest, RoundTripsNestedValues) {
  Value v = Value::Object({{"Name", "x"},
                           {"Count", int64_t{-5000000000}},
                           {"Ratio", 0.1},
                           {"Data", Value::Blob(std::string("\0\xff", 2))},
                           {"When", Value::Timestamp(1700000000.25)},
                           {"Tags", Value(Value::List{Value::Object({{"k", "v"}}), Value()})}});
  auto back = DecodeCbor(EncodeCbor(v));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, v);
}

TEST(CborTest, RejectsMalformedAndHostileInput) {
  const char* bad[] = {
      "",                    // empty
      "18",                  // truncated argument
      "62c3",                // string shorter than its length
      "1c",                  // reserved additional information
      "ff",                  // stray break
      "9f01",                // unterminated indefinite array
      "5f6161ff",            // text chunk inside a byte string
      "a1016161",            // non-text map key
      "0101",                // trailing bytes
      "9bffffffffffffffff",  // array claiming 2^64-1 elements
      "bb7fffffffffffffff",  // map claiming 2^63-1 pairs
      "5bffffffffffffffff",  // byte string claiming 2^64-1 bytes
      "c16161",              // tag 1 over a string
      "f818",                // simple value 24
  };
  for (const char* hex : bad) {
    auto r = DecodeCbor(Hex(hex));
    EXPECT_FALSE(r.ok()) << hex;
    if (!r.ok()) EXPECT_EQ(r.status().kind(), ErrorKind::kSerialization) << hex;
  }
}

TEST(CborTest, EnforcesTheDepthLimit) {
  std::string deep(100000, '\x81');  // [[[[...
  deep.push_back('\x01');
  auto r = DecodeCbor(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("depth"), std::string::npos);
  std::string ok(10, '\x81');
  ok.push_back('\x01');
  EXPECT_TRUE(DecodeCbor(ok).ok());
}

}  // namespace
}  // namespace nimbus::aws::protocol
