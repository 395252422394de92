#include "aws/protocol/xml.h"

#include <exception>
#include <pugixml.hpp>

#include "aws/protocol/scalar.h"

namespace nimbus::aws::protocol {
namespace {
using model::Member;
using model::Shape;
using model::ShapeType;

std::string_view LocalName(std::string_view name) {
  size_t colon = name.rfind(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

Status ConvertElement(const pugi::xml_node& node, int depth, XmlElement* out) {
  if (depth > kMaxXmlDepth) {
    return Status::Serialization("XML nesting exceeds the maximum depth of " +
                                 std::to_string(kMaxXmlDepth));
  }
  out->name = std::string(LocalName(node.name()));
  for (const pugi::xml_attribute& attr : node.attributes()) {
    out->attributes.emplace_back(attr.name(), attr.value());
  }
  for (const pugi::xml_node& child : node.children()) {
    switch (child.type()) {
      case pugi::node_element:
        out->children.emplace_back();
        NIMBUS_RETURN_IF_ERROR(ConvertElement(child, depth + 1, &out->children.back()));
        break;
      case pugi::node_pcdata:
      case pugi::node_cdata:
        out->text += child.value();
        break;
      case pugi::node_doctype:
        return Status::Serialization("XML DOCTYPE is not allowed");
      default:
        break;
    }
  }
  return Status::Ok();
}

Result<XmlElement> ParseXmlUnsafe(std::string_view text) {
  pugi::xml_document doc;
  unsigned options = pugi::parse_default | pugi::parse_doctype | pugi::parse_ws_pcdata_single;
  pugi::xml_parse_result parsed =
      doc.load_buffer(text.data(), text.size(), options, pugi::encoding_utf8);
  if (!parsed) {
    return Status::Serialization("Malformed XML: " + std::string(parsed.description()) +
                                 " at offset " + std::to_string(parsed.offset));
  }
  pugi::xml_node root;
  for (const pugi::xml_node& child : doc.children()) {
    if (child.type() == pugi::node_doctype) {
      return Status::Serialization("XML DOCTYPE is not allowed");
    }
    if (child.type() != pugi::node_element) continue;
    if (root) return Status::Serialization("Malformed XML: more than one root element");
    root = child;
  }
  if (!root) return Status::Serialization("Malformed XML: no root element");
  XmlElement element;
  NIMBUS_RETURN_IF_ERROR(ConvertElement(root, 1, &element));
  return element;
}

void AppendCharRef(unsigned char c, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  *out += "&#x";
  if (c >= 0x10) *out += kHex[c >> 4];
  *out += kHex[c & 0xF];
  *out += ';';
}

void AppendEscaped(std::string_view text, bool attribute, std::string* out) {
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&':
        *out += "&amp;";
        break;
      case '<':
        *out += "&lt;";
        break;
      case '>':
        *out += "&gt;";
        break;
      case '"':
        *out += "&quot;";
        break;
      case '\'':
        *out += "&apos;";
        break;
      case '\t':
      case '\n':
        if (attribute) {
          AppendCharRef(c, out);
        } else {
          *out += ch;
        }
        break;
      default:
        if (c < 0x20) {
          AppendCharRef(c, out);
        } else {
          *out += ch;
        }
    }
  }
}

bool IsFlattened(const Member* member, const Shape& shape) {
  return shape.flattened || (member && member->flattened);
}

bool IsFlattenedCollection(const Member& member) {
  return member.shape &&
         (member.shape->type == ShapeType::kList || member.shape->type == ShapeType::kMap) &&
         IsFlattened(&member, *member.shape);
}

std::string JoinPath(std::string_view path, std::string_view name) {
  std::string out(path);
  if (!out.empty()) out += '.';
  out += name;
  return out;
}

Result<Value> ReadXmlValue(const Member* member, const Shape& shape, const XmlElement& element,
                           const std::string& path);

Status ReadMapEntry(const Shape& shape, const XmlElement& entry, const std::string& path,
                    Value::Map* out) {
  if (!shape.key || !shape.value || !shape.value->shape) return Status::Ok();
  const XmlElement* key = entry.Child(SerializedName(*shape.key, "key"));
  const XmlElement* value = entry.Child(SerializedName(*shape.value, "value"));
  if (key == nullptr || value == nullptr) return Status::Ok();
  NIMBUS_ASSIGN_OR_RETURN(
      Value v, ReadXmlValue(&*shape.value, *shape.value->shape, *value, JoinPath(path, key->text)));
  if (!v.is_null()) (*out)[key->text] = std::move(v);
  return Status::Ok();
}

Result<Value> ReadFlattened(const Member& member, const std::vector<const XmlElement*>& elements,
                            const std::string& path) {
  const Shape& shape = *member.shape;
  if (shape.type == ShapeType::kMap) {
    Value::Map map;
    for (const XmlElement* entry : elements) {
      NIMBUS_RETURN_IF_ERROR(ReadMapEntry(shape, *entry, path, &map));
    }
    return Value(std::move(map));
  }
  Value::List list;
  if (!shape.member || !shape.member->shape) return Value(std::move(list));
  for (size_t i = 0; i < elements.size(); ++i) {
    NIMBUS_ASSIGN_OR_RETURN(Value v,
                            ReadXmlValue(&*shape.member, *shape.member->shape, *elements[i],
                                         path + "." + std::to_string(i + 1)));
    if (!v.is_null()) list.push_back(std::move(v));
  }
  return Value(std::move(list));
}

Result<Value> ReadXmlValue(const Member* member, const Shape& shape, const XmlElement& element,
                           const std::string& path) {
  switch (shape.type) {
    case ShapeType::kStructure: {
      Value out = Value::MakeMap();
      NIMBUS_RETURN_IF_ERROR(ReadXmlMembers(shape, element, path, &out));
      return out;
    }
    case ShapeType::kList: {
      if (IsFlattened(member, shape) && member != nullptr) {
        return ReadFlattened(*member, {&element}, path);
      }
      Value::List list;
      if (!shape.member || !shape.member->shape) return Value(std::move(list));
      std::vector<const XmlElement*> items =
          element.Children(SerializedName(*shape.member, "member"));
      for (size_t i = 0; i < items.size(); ++i) {
        NIMBUS_ASSIGN_OR_RETURN(Value v,
                                ReadXmlValue(&*shape.member, *shape.member->shape, *items[i],
                                             path + "." + std::to_string(i + 1)));
        if (!v.is_null()) list.push_back(std::move(v));
      }
      return Value(std::move(list));
    }
    case ShapeType::kMap: {
      if (IsFlattened(member, shape) && member != nullptr) {
        return ReadFlattened(*member, {&element}, path);
      }
      Value::Map map;
      for (const XmlElement* entry : element.Children("entry")) {
        NIMBUS_RETURN_IF_ERROR(ReadMapEntry(shape, *entry, path, &map));
      }
      return Value(std::move(map));
    }
    default:
      return ParseScalarText(shape, element.text, path);
  }
}

}  // namespace

std::string SerializedName(const Member& ref, std::string_view fallback) {
  if (!ref.location_name.empty()) return ref.location_name;
  if (ref.shape && !ref.shape->location_name.empty()) return ref.shape->location_name;
  return std::string(fallback);
}

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const XmlElement& child : children) {
    if (child.name == child_name) return &child;
  }
  return nullptr;
}

std::vector<const XmlElement*> XmlElement::Children(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const XmlElement& child : children) {
    if (child.name == child_name) out.push_back(&child);
  }
  return out;
}

const std::string* XmlElement::Attribute(std::string_view attr_name) const {
  for (const auto& [key, value] : attributes) {
    if (key == attr_name) return &value;
  }
  std::string_view local = LocalName(attr_name);
  for (const auto& [key, value] : attributes) {
    if (key == "xmlns" || key.rfind("xmlns:", 0) == 0) continue;
    if (LocalName(key) == local) return &value;
  }
  return nullptr;
}

Result<XmlElement> ParseXml(std::string_view text) {
  try {
    return ParseXmlUnsafe(text);
  } catch (const std::exception& e) {
    return Status::Serialization(std::string("XML could not be parsed: ") + e.what());
  }
}

void XmlWriter::Declaration() { out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"; }

void XmlWriter::OpenStart(std::string_view name) {
  out_ += '<';
  out_ += name;
  open_.emplace_back(name);
}

void XmlWriter::AppendAttribute(std::string_view name, std::string_view value) {
  out_ += ' ';
  out_ += name;
  out_ += "=\"";
  AppendEscaped(value, /*attribute=*/true, &out_);
  out_ += '"';
}

void XmlWriter::Open(std::string_view name,
                     std::initializer_list<std::pair<std::string_view, std::string_view>> attrs) {
  OpenStart(name);
  for (const auto& [key, value] : attrs) AppendAttribute(key, value);
  out_ += '>';
}

void XmlWriter::Open(std::string_view name, const Attributes& attrs) {
  OpenStart(name);
  for (const auto& [key, value] : attrs) AppendAttribute(key, value);
  out_ += '>';
}

void XmlWriter::Text(std::string_view text) { AppendEscaped(text, /*attribute=*/false, &out_); }

void XmlWriter::Close() {
  if (open_.empty()) return;
  out_ += "</";
  out_ += open_.back();
  out_ += '>';
  open_.pop_back();
}

void XmlWriter::Element(std::string_view name, std::string_view text) {
  Open(name);
  Text(text);
  Close();
}

std::string XmlWriter::Finish() {
  while (!open_.empty()) Close();
  std::string out = std::move(out_);
  out_.clear();
  return out;
}

std::string XmlMemberName(const Member& member) {
  if (member.shape && member.shape->type == ShapeType::kList &&
      IsFlattened(&member, *member.shape) && member.shape->member) {
    std::string item_name = SerializedName(*member.shape->member, "");
    if (!item_name.empty()) return item_name;
  }
  return SerializedName(member, member.name);
}

XmlWriter::Attributes XmlStructureAttributes(const Member* member, const Shape& shape,
                                             const Value& value) {
  XmlWriter::Attributes attrs;
  std::string uri;
  std::string prefix;
  if (member && !member->xml_namespace_uri.empty()) {
    uri = member->xml_namespace_uri;
    prefix = member->xml_namespace_prefix;
  } else if (!shape.xml_namespace_uri.empty()) {
    uri = shape.xml_namespace_uri;
    // The model keeps no prefix for a shape-level namespace; the shape's prefixed
    // attributes name it (S3's Grantee: xmlns:xsi + xsi:type).
    for (const Member& m : shape.members) {
      size_t colon = m.location_name.find(':');
      if (m.xml_attribute && colon != std::string::npos) {
        prefix = m.location_name.substr(0, colon);
        break;
      }
    }
  }
  if (!uri.empty()) attrs.emplace_back(prefix.empty() ? "xmlns" : "xmlns:" + prefix, uri);
  if (!value.is_map()) return attrs;
  for (const Member& m : shape.members) {
    if (!m.xml_attribute || !m.shape) continue;
    const Value* v = value.Find(m.name);
    if (v == nullptr || v->is_null()) continue;
    attrs.emplace_back(SerializedName(m, m.name),
                       FormatScalarText(*m.shape, *v, TimestampFormatFor(&m, *m.shape, kIso8601)));
  }
  return attrs;
}

void WriteXmlValue(XmlWriter* writer, const Member* member, const Shape& shape,
                   std::string_view name, const Value& value) {
  if (value.is_null()) return;
  switch (shape.type) {
    case ShapeType::kStructure:
      if (!value.is_map()) return;
      writer->Open(name, XmlStructureAttributes(member, shape, value));
      WriteXmlMembers(writer, shape, value);
      writer->Close();
      return;
    case ShapeType::kList: {
      if (!value.is_list() || !shape.member || !shape.member->shape) return;
      const Member& item = *shape.member;
      if (IsFlattened(member, shape)) {
        for (const Value& v : value.list()) WriteXmlValue(writer, &item, *item.shape, name, v);
        return;
      }
      std::string item_name = SerializedName(item, "member");
      writer->Open(name);
      for (const Value& v : value.list()) WriteXmlValue(writer, &item, *item.shape, item_name, v);
      writer->Close();
      return;
    }
    case ShapeType::kMap: {
      if (!value.is_map() || !shape.key || !shape.value || !shape.value->shape) return;
      std::string key_name = SerializedName(*shape.key, "key");
      std::string value_name = SerializedName(*shape.value, "value");
      bool flattened = IsFlattened(member, shape);
      if (!flattened) writer->Open(name);
      for (const auto& [k, v] : value.map()) {
        if (v.is_null()) continue;
        writer->Open(flattened ? name : "entry");
        writer->Element(key_name, k);
        WriteXmlValue(writer, &*shape.value, *shape.value->shape, value_name, v);
        writer->Close();
      }
      if (!flattened) writer->Close();
      return;
    }
    default:
      writer->Element(name,
                      FormatScalarText(shape, value, TimestampFormatFor(member, shape, kIso8601)));
  }
}

void WriteXmlMembers(XmlWriter* writer, const Shape& shape, const Value& value) {
  if (!value.is_map()) return;
  for (const Member& m : shape.members) {
    if (!m.location.empty() || m.xml_attribute || !m.shape) continue;
    const Value* v = value.Find(m.name);
    if (v == nullptr || v->is_null()) continue;
    WriteXmlValue(writer, &m, *m.shape, XmlMemberName(m), *v);
  }
}

Status ReadXmlMembers(const Shape& shape, const XmlElement& element, std::string_view path,
                      Value* out) {
  if (out->is_null()) *out = Value::MakeMap();
  for (const Member& m : shape.members) {
    if (!m.location.empty() || !m.shape) continue;
    if (m.xml_attribute) {
      std::string attr_name = SerializedName(m, m.name);
      const std::string* attr = element.Attribute(attr_name);
      if (attr == nullptr) continue;
      NIMBUS_ASSIGN_OR_RETURN(Value v, ParseScalarText(*m.shape, *attr, JoinPath(path, attr_name)));
      (*out)[m.name] = std::move(v);
      continue;
    }
    std::string name = XmlMemberName(m);
    std::string member_path = JoinPath(path, name);
    if (IsFlattenedCollection(m)) {
      std::vector<const XmlElement*> elements = element.Children(name);
      // botocore's serializer names flattened list elements after the member itself,
      // its parser after the list's member: accept both.
      std::string ref_name = SerializedName(m, m.name);
      if (elements.empty() && ref_name != name) elements = element.Children(ref_name);
      if (elements.empty()) continue;
      NIMBUS_ASSIGN_OR_RETURN(Value v, ReadFlattened(m, elements, member_path));
      (*out)[m.name] = std::move(v);
      continue;
    }
    const XmlElement* child = element.Child(name);
    if (child == nullptr) continue;
    NIMBUS_ASSIGN_OR_RETURN(Value v, ReadXmlValue(&m, *m.shape, *child, member_path));
    if (!v.is_null()) (*out)[m.name] = std::move(v);
  }
  return Status::Ok();
}

}  // namespace nimbus::aws::protocol
