#include "aws/protocol/query.h"

#include <algorithm>
#include <map>
#include <memory>

#include "aws/protocol/scalar.h"
#include "aws/protocol/xml.h"

namespace nimbus::aws::protocol {
namespace {
using model::Member;
using model::Shape;
using model::ShapeType;

// The parameters as a tree of their dot-separated key parts: "A.member.1.B=x" is
// A -> member -> 1 -> B (value x). Parsing walks the shape and looks names up here, so
// parameters the shape does not name cost nothing and are ignored.
struct ParamNode {
  bool has_value = false;
  std::string value;
  std::map<std::string, std::unique_ptr<ParamNode>, std::less<>> children;

  const ParamNode* Child(std::string_view name) const {
    auto it = children.find(name);
    return it == children.end() ? nullptr : it->second.get();
  }
};

Status Insert(std::string_view key, const std::string& value, ParamNode* root) {
  ParamNode* node = root;
  size_t depth = 0;
  while (true) {
    if (++depth > kMaxQueryKeyDepth) {
      return Status::Serialization("Query parameter '" + std::string(key.substr(0, 256)) +
                                   "' nests deeper than " + std::to_string(kMaxQueryKeyDepth) +
                                   " levels");
    }
    size_t dot = key.find('.');
    std::string_view part = key.substr(0, dot);
    auto it = node->children.find(part);
    if (it == node->children.end()) {
      it = node->children.emplace(std::string(part), std::make_unique<ParamNode>()).first;
    }
    node = it->second.get();
    if (dot == std::string_view::npos) break;
    key.remove_prefix(dot + 1);
  }
  node->has_value = true;
  node->value = value;
  return Status::Ok();
}

bool IsIndex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The children of node whose names are decimal indexes, in numeric order. Indexes are
// compared as digit strings, so an absurd "member.99999999999999999999" neither
// overflows nor allocates anything but its own entry.
std::vector<std::pair<std::string_view, const ParamNode*>> IndexedChildren(const ParamNode& node) {
  std::vector<std::pair<std::string_view, const ParamNode*>> out;
  for (const auto& [name, child] : node.children) {
    if (!IsIndex(name)) continue;
    std::string_view digits = name;
    while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
    out.emplace_back(digits, child.get());
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    if (a.first.size() != b.first.size()) return a.first.size() < b.first.size();
    return a.first < b.first;
  });
  return out;
}

std::string QueryName(const Member& member) {
  if (!member.query_name.empty()) return member.query_name;
  // A flattened list takes its member's name (botocore replaces the last key part).
  return XmlMemberName(member);
}

std::string Join(const std::string& path, std::string_view part) {
  return path.empty() ? std::string(part) : path + "." + std::string(part);
}

// Returns a null Value when node carries nothing for shape.
Result<Value> ParseNode(const Member* member, const Shape& shape, const ParamNode& node,
                        const std::string& path);

Result<Value> ParseStructure(const Shape& shape, const ParamNode& node, const std::string& path) {
  Value::Map out;
  for (const Member& m : shape.members) {
    if (!m.shape) continue;
    std::string name = QueryName(m);
    const ParamNode* child = node.Child(name);
    if (child == nullptr) continue;
    NIMBUS_ASSIGN_OR_RETURN(Value v, ParseNode(&m, *m.shape, *child, Join(path, name)));
    if (!v.is_null()) out.insert_or_assign(m.name, std::move(v));
  }
  return Value(std::move(out));
}

Result<Value> ParseList(const Member* member, const Shape& shape, const ParamNode& node,
                        const std::string& path) {
  Value::List list;
  if (!shape.member || !shape.member->shape) return Value(std::move(list));
  const Member& item = *shape.member;
  bool flattened = shape.flattened || (member && member->flattened);
  std::string items_path = path;
  const ParamNode* items = &node;
  if (!flattened) {
    std::string item_name = SerializedName(item, "member");
    items = node.Child(item_name);
    items_path = Join(path, item_name);
  }
  if (items == nullptr) return Value(std::move(list));  // "Name=": an empty list
  for (const auto& [index, child] : IndexedChildren(*items)) {
    NIMBUS_ASSIGN_OR_RETURN(Value v,
                            ParseNode(&item, *item.shape, *child, Join(items_path, index)));
    if (!v.is_null()) list.push_back(std::move(v));
  }
  return Value(std::move(list));
}

Result<Value> ParseMap(const Member* member, const Shape& shape, const ParamNode& node,
                       const std::string& path) {
  Value::Map map;
  if (!shape.key || !shape.value || !shape.value->shape) return Value(std::move(map));
  bool flattened = shape.flattened || (member && member->flattened);
  std::string entries_path = path;
  const ParamNode* entries = &node;
  if (!flattened) {
    entries = node.Child("entry");
    entries_path = Join(path, "entry");
  }
  if (entries == nullptr) return Value(std::move(map));
  std::string key_name = SerializedName(*shape.key, "key");
  std::string value_name = SerializedName(*shape.value, "value");
  for (const auto& [index, entry] : IndexedChildren(*entries)) {
    const ParamNode* key = entry->Child(key_name);
    const ParamNode* value = entry->Child(value_name);
    if (key == nullptr || !key->has_value || value == nullptr) continue;
    std::string entry_path = Join(entries_path, index);
    NIMBUS_ASSIGN_OR_RETURN(Value v, ParseNode(&*shape.value, *shape.value->shape, *value,
                                               Join(entry_path, value_name)));
    if (!v.is_null()) map.insert_or_assign(key->value, std::move(v));
  }
  return Value(std::move(map));
}

Result<Value> ParseNode(const Member* member, const Shape& shape, const ParamNode& node,
                        const std::string& path) {
  switch (shape.type) {
    case ShapeType::kStructure:
      return ParseStructure(shape, node, path);
    case ShapeType::kList:
      return ParseList(member, shape, node, path);
    case ShapeType::kMap:
      return ParseMap(member, shape, node, path);
    default:
      if (!node.has_value) return Value();
      return ParseScalarText(shape, node.value, path);
  }
}

}  // namespace

Result<Value> ParseQueryParams(const model::Shape* input,
                               const std::vector<std::pair<std::string, std::string>>& params) {
  if (input == nullptr) return Value::MakeMap();
  ParamNode root;
  for (const auto& [key, value] : params) {
    NIMBUS_RETURN_IF_ERROR(Insert(key, value, &root));
  }
  return ParseStructure(*input, root, "");
}

std::string SerializeQueryResponse(const model::ServiceModel& service, const model::Operation& op,
                                   const Value& output, std::string_view request_id) {
  XmlWriter writer;
  std::string root = op.name + "Response";
  if (service.xml_namespace.empty()) {
    writer.Open(root);
  } else {
    writer.Open(root, {{"xmlns", service.xml_namespace}});
  }
  if (op.output != nullptr) {
    writer.Open(op.result_wrapper.empty() ? op.name + "Result" : op.result_wrapper);
    WriteXmlMembers(&writer, *op.output, output);
    writer.Close();
  }
  writer.Open("ResponseMetadata");
  writer.Element("RequestId", request_id);
  writer.Close();
  return writer.Finish();
}

std::string SerializeQueryError(const model::ServiceModel* service, std::string_view code,
                                std::string_view message, bool sender_fault,
                                std::string_view request_id) {
  XmlWriter writer;
  if (service == nullptr || service->xml_namespace.empty()) {
    writer.Open("ErrorResponse");
  } else {
    writer.Open("ErrorResponse", {{"xmlns", service->xml_namespace}});
  }
  writer.Open("Error");
  writer.Element("Type", sender_fault ? "Sender" : "Receiver");
  writer.Element("Code", code);
  writer.Element("Message", message);
  writer.Close();
  writer.Element("RequestId", request_id);
  return writer.Finish();
}

}  // namespace nimbus::aws::protocol
