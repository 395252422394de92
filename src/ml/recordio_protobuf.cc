#include "ml/recordio_protobuf.h"

#include <bit>
#include <cstring>

namespace nimbus::ml::recordio {
namespace {

static_assert(std::endian::native == std::endian::little,
              "RecordIO and protobuf fixed-width fields are little-endian; add byte swaps");

constexpr uint32_t kLengthMask = (1u << 29) - 1;

uint32_t LoadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

std::string Hex32(uint32_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(v >> shift) & 0xf]);
  return out;
}

// Protobuf wire types.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// A cursor over one message's bytes. Every read checks the bounds; a failed read leaves
// ok() false and the caller reports the message as malformed.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool done() const { return p_ >= end_; }

  bool Varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return false;
      uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *out = v;
        return true;
      }
    }
    return false;  // more than 10 bytes
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    *out = std::string_view(p_, n);
    p_ += n;
    return true;
  }
  bool LengthDelimited(std::string_view* out) {
    uint64_t n;
    return Varint(&n) && n <= static_cast<uint64_t>(end_ - p_) && Bytes(n, out);
  }
  bool Skip(uint32_t wire_type) {
    uint64_t ignored;
    std::string_view view;
    switch (wire_type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return Bytes(8, &view);
      case kLengthDelimited:
        return LengthDelimited(&view);
      case kFixed32:
        return Bytes(4, &view);
      default:  // groups (3, 4) are not in record.proto; 6 and 7 do not exist
        return false;
    }
  }

 private:
  const char* p_;
  const char* end_;
};

Status Malformed(std::string what) {
  return Status::Validation("malformed protobuf Record: " + std::move(what));
}

enum class ValueType { kFloat32, kFloat64, kInt32 };

bool ReadScalar(Cursor& c, ValueType type, std::vector<float>* out) {
  switch (type) {
    case ValueType::kFloat32: {
      std::string_view b;
      if (!c.Bytes(4, &b)) return false;
      float v;
      std::memcpy(&v, b.data(), 4);
      out->push_back(v);
      return true;
    }
    case ValueType::kFloat64: {
      std::string_view b;
      if (!c.Bytes(8, &b)) return false;
      double v;
      std::memcpy(&v, b.data(), 8);
      out->push_back(static_cast<float>(v));
      return true;
    }
    case ValueType::kInt32: {
      uint64_t v;
      if (!c.Varint(&v)) return false;
      // Negative int32 values are sign-extended to 64 bits on the wire.
      out->push_back(static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(v))));
      return true;
    }
  }
  return false;
}

uint32_t ScalarWireType(ValueType type) {
  switch (type) {
    case ValueType::kFloat32:
      return kFixed32;
    case ValueType::kFloat64:
      return kFixed64;
    case ValueType::kInt32:
      return kVarint;
  }
  return kVarint;
}

Status DecodeUint64s(Cursor& c, uint32_t wire_type, const char* name, std::vector<uint64_t>* out) {
  if (wire_type == kVarint) {
    uint64_t v;
    if (!c.Varint(&v)) return Malformed(std::string("bad varint in ") + name);
    out->push_back(v);
    return Status::Ok();
  }
  if (wire_type != kLengthDelimited) return Malformed(std::string("bad wire type for ") + name);
  std::string_view packed;
  if (!c.LengthDelimited(&packed)) return Malformed(std::string("truncated ") + name);
  Cursor inner(packed);
  while (!inner.done()) {
    uint64_t v;
    if (!inner.Varint(&v)) return Malformed(std::string("bad varint in ") + name);
    out->push_back(v);
  }
  return Status::Ok();
}

Status DecodeTensor(std::string_view bytes, ValueType type, Tensor* t) {
  Cursor c(bytes);
  while (!c.done()) {
    uint64_t tag;
    if (!c.Varint(&tag)) return Malformed("bad tag in tensor");
    uint32_t field = static_cast<uint32_t>(tag >> 3);
    uint32_t wire = static_cast<uint32_t>(tag & 7);
    if (field == 1) {
      if (wire == kLengthDelimited) {
        std::string_view packed;
        if (!c.LengthDelimited(&packed)) return Malformed("truncated tensor values");
        if (type == ValueType::kFloat32 && packed.size() % 4 != 0) {
          return Malformed("packed float values of " + std::to_string(packed.size()) + " bytes");
        }
        if (type == ValueType::kFloat64 && packed.size() % 8 != 0) {
          return Malformed("packed double values of " + std::to_string(packed.size()) + " bytes");
        }
        if (type == ValueType::kFloat32) {
          // The common case, copied in one go.
          size_t n = packed.size() / 4;
          size_t old = t->values.size();
          t->values.resize(old + n);
          std::memcpy(t->values.data() + old, packed.data(), packed.size());
        } else {
          Cursor inner(packed);
          while (!inner.done()) {
            if (!ReadScalar(inner, type, &t->values)) return Malformed("bad tensor value");
          }
        }
      } else if (wire == ScalarWireType(type)) {
        if (!ReadScalar(c, type, &t->values)) return Malformed("truncated tensor value");
      } else {
        return Malformed("bad wire type for tensor values");
      }
    } else if (field == 2) {
      NIMBUS_RETURN_IF_ERROR(DecodeUint64s(c, wire, "tensor keys", &t->keys));
    } else if (field == 3) {
      NIMBUS_RETURN_IF_ERROR(DecodeUint64s(c, wire, "tensor shape", &t->shape));
    } else if (!c.Skip(wire)) {
      return Malformed("bad field " + std::to_string(field) + " in tensor");
    }
  }
  return Status::Ok();
}

// Value { oneof { float32_tensor = 2; float64_tensor = 3; int32_tensor = 7; bytes = 9 } }.
Status DecodeValue(std::string_view bytes, Tensor* t) {
  Cursor c(bytes);
  uint32_t current = 0;  // the oneof case seen last
  while (!c.done()) {
    uint64_t tag;
    if (!c.Varint(&tag)) return Malformed("bad tag in Value");
    uint32_t field = static_cast<uint32_t>(tag >> 3);
    uint32_t wire = static_cast<uint32_t>(tag & 7);
    if (field == 2 || field == 3 || field == 7) {
      if (wire != kLengthDelimited) return Malformed("bad wire type for a tensor");
      std::string_view tensor;
      if (!c.LengthDelimited(&tensor)) return Malformed("truncated tensor");
      // A oneof member seen again merges (repeated fields concatenate); another one replaces.
      if (field != current) t->Clear();
      current = field;
      t->present = true;
      ValueType type = field == 2   ? ValueType::kFloat32
                       : field == 3 ? ValueType::kFloat64
                                    : ValueType::kInt32;
      NIMBUS_RETURN_IF_ERROR(DecodeTensor(tensor, type, t));
    } else if (field == 9) {
      return Status::Validation(
          "Bytes values are not supported; the built-in algorithms read Float32Tensor, "
          "Float64Tensor or Int32Tensor");
    } else if (!c.Skip(wire)) {
      return Malformed("bad field " + std::to_string(field) + " in Value");
    }
  }
  return Status::Ok();
}

// A map entry { string key = 1; Value value = 2 }: decodes the value into *t when the key is
// "values".
Status DecodeEntry(std::string_view bytes, Tensor* t) {
  Cursor c(bytes);
  std::string_view key;
  std::string_view value;
  bool has_value = false;
  while (!c.done()) {
    uint64_t tag;
    if (!c.Varint(&tag)) return Malformed("bad tag in map entry");
    uint32_t field = static_cast<uint32_t>(tag >> 3);
    uint32_t wire = static_cast<uint32_t>(tag & 7);
    if ((field == 1 || field == 2) && wire != kLengthDelimited) {
      return Malformed("bad wire type in map entry");
    }
    if (field == 1) {
      if (!c.LengthDelimited(&key)) return Malformed("truncated map key");
    } else if (field == 2) {
      if (!c.LengthDelimited(&value)) return Malformed("truncated map value");
      has_value = true;
    } else if (!c.Skip(wire)) {
      return Malformed("bad field in map entry");
    }
  }
  if (key != "values") return Status::Ok();
  // A later entry for the same key replaces the earlier one, as for any protobuf map.
  t->Clear();
  t->present = true;
  if (!has_value) return Status::Ok();
  return DecodeValue(value, t);
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutU32(uint32_t v, std::string* out) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

// Sizes of the nested messages of one "values" map entry holding a Float32Tensor.
struct EntrySizes {
  size_t tensor = 0;
  size_t value = 0;
  size_t entry = 0;
};

EntrySizes SizeEntry(size_t count, size_t keys_bytes, bool sparse, uint64_t dim) {
  EntrySizes s;
  if (count > 0) s.tensor += 1 + VarintSize(count * 4) + count * 4;
  if (keys_bytes > 0) s.tensor += 1 + VarintSize(keys_bytes) + keys_bytes;
  if (sparse) s.tensor += 1 + VarintSize(VarintSize(dim)) + VarintSize(dim);
  s.value = 1 + VarintSize(s.tensor) + s.tensor;
  s.entry = 2 + 6 + 1 + VarintSize(s.value) + s.value;  // key "values", then the value
  return s;
}

void PutEntry(uint32_t record_field, const EntrySizes& s, const float* values, size_t count,
              const int64_t* keys, size_t keys_bytes, bool sparse, uint64_t dim, std::string* out) {
  out->push_back(static_cast<char>(record_field << 3 | kLengthDelimited));
  PutVarint(s.entry, out);
  out->push_back(static_cast<char>(1 << 3 | kLengthDelimited));  // key
  out->push_back(6);
  out->append("values");
  out->push_back(static_cast<char>(2 << 3 | kLengthDelimited));  // value
  PutVarint(s.value, out);
  out->push_back(static_cast<char>(2 << 3 | kLengthDelimited));  // float32_tensor
  PutVarint(s.tensor, out);
  if (count > 0) {
    out->push_back(static_cast<char>(1 << 3 | kLengthDelimited));  // values, packed
    PutVarint(count * 4, out);
    out->append(reinterpret_cast<const char*>(values), count * 4);
  }
  if (keys_bytes > 0) {
    out->push_back(static_cast<char>(2 << 3 | kLengthDelimited));  // keys, packed
    PutVarint(keys_bytes, out);
    for (size_t i = 0; i < count; ++i) PutVarint(static_cast<uint64_t>(keys[i]), out);
  }
  if (sparse) {
    out->push_back(static_cast<char>(3 << 3 | kLengthDelimited));  // shape, packed
    PutVarint(VarintSize(dim), out);
    PutVarint(dim, out);
  }
}

}  // namespace

Result<bool> Reader::Next(std::string_view* payload, std::string* scratch) {
  bool split = false;  // inside a record that dmlc's writer split at embedded magic numbers
  while (true) {
    size_t remaining = data_.size() - offset_;
    if (remaining == 0) {
      if (split) return Status::Validation("truncated: the data ends inside a split record");
      return false;
    }
    if (remaining < 8) {
      return Status::Validation("truncated: " + std::to_string(remaining) +
                                " bytes at byte offset " + std::to_string(offset_) +
                                " are too few for a record header");
    }
    uint32_t magic = LoadU32(data_.data() + offset_);
    if (magic != kMagic) {
      return Status::Validation("bad magic number " + Hex32(magic) + " at byte offset " +
                                std::to_string(offset_) + ", expected " + Hex32(kMagic));
    }
    uint32_t lrec = LoadU32(data_.data() + offset_ + 4);
    uint32_t cflag = lrec >> 29;
    uint32_t length = lrec & kLengthMask;
    if (remaining - 8 < length) {
      return Status::Validation("truncated: the header at byte offset " + std::to_string(offset_) +
                                " announces " + std::to_string(length) + " bytes, " +
                                std::to_string(remaining - 8) + " remain");
    }
    if (cflag > 3) {
      return Status::Validation("bad continuation flag " + std::to_string(cflag) +
                                " at byte offset " + std::to_string(offset_));
    }
    if (split != (cflag == 2 || cflag == 3)) {
      return Status::Validation(std::string(split ? "a split record is interrupted"
                                                  : "a continuation part has no first part") +
                                " at byte offset " + std::to_string(offset_));
    }
    std::string_view part = data_.substr(offset_ + 8, length);
    // The last record may omit its padding; nothing follows it to misalign.
    size_t padded = (static_cast<size_t>(length) + 3) & ~size_t{3};
    offset_ = std::min(data_.size(), offset_ + 8 + padded);
    if (cflag == 0) {
      *payload = part;
      return true;
    }
    if (cflag == 1) scratch->clear();
    scratch->append(part);
    if (cflag == 3) {
      *payload = *scratch;
      return true;
    }
    // The writer dropped the magic number where it split; put it back.
    char magic_bytes[4];
    std::memcpy(magic_bytes, &kMagic, 4);
    scratch->append(magic_bytes, 4);
    split = true;
  }
}

void AppendRecord(std::string_view payload, std::string* out) {
  char magic_bytes[4];
  std::memcpy(magic_bytes, &kMagic, 4);
  const size_t length = payload.size();
  const size_t lower_align = length & ~size_t{3};
  size_t start = 0;  // the first byte not yet written
  for (size_t i = 0; i < lower_align; i += 4) {
    if (std::memcmp(payload.data() + i, magic_bytes, 4) == 0) {
      PutU32(kMagic, out);
      PutU32((start == 0 ? 1u : 2u) << 29 | static_cast<uint32_t>(i - start), out);
      out->append(payload.data() + start, i - start);  // 4-aligned: no padding
      start = i + 4;
    }
  }
  PutU32(kMagic, out);
  PutU32((start != 0 ? 3u : 0u) << 29 | static_cast<uint32_t>(length - start), out);
  out->append(payload.data() + start, length - start);
  out->append((4 - (length - start) % 4) % 4, '\0');
}

Status DecodeRecord(std::string_view payload, Record* out) {
  out->Clear();
  Cursor c(payload);
  while (!c.done()) {
    uint64_t tag;
    if (!c.Varint(&tag)) return Malformed("bad tag");
    uint32_t field = static_cast<uint32_t>(tag >> 3);
    uint32_t wire = static_cast<uint32_t>(tag & 7);
    if (field == 1 || field == 2) {
      if (wire != kLengthDelimited) return Malformed("bad wire type for a map");
      std::string_view entry;
      if (!c.LengthDelimited(&entry)) {
        return Malformed(field == 1 ? "truncated features" : "truncated label");
      }
      NIMBUS_RETURN_IF_ERROR(DecodeEntry(entry, field == 1 ? &out->features : &out->label));
    } else if (!c.Skip(wire)) {
      return Malformed("bad field " + std::to_string(field));
    }
  }
  return Status::Ok();
}

void EncodeRecord(const float* values, size_t count, bool sparse, const int64_t* keys, uint64_t dim,
                  const float* label, std::string* out) {
  size_t keys_bytes = 0;
  if (sparse) {
    for (size_t i = 0; i < count; ++i) keys_bytes += VarintSize(static_cast<uint64_t>(keys[i]));
  }
  EntrySizes features = SizeEntry(count, keys_bytes, sparse, dim);
  PutEntry(1, features, values, count, keys, keys_bytes, sparse, dim, out);
  if (label != nullptr) {
    EntrySizes l = SizeEntry(1, 0, false, 0);
    PutEntry(2, l, label, 1, nullptr, 0, false, 0, out);
  }
}

}  // namespace nimbus::ml::recordio
