#include "control/tagging.h"

#include <algorithm>
#include <utility>

namespace nimbus::control {
namespace {

Status Invalid(std::string_view code, std::string message) {
  return Status::Aws(std::string(code), 400, std::move(message));
}

// The first of names present (and not null) in input, or nullptr.
const Value* FindMember(const Value& input, const std::vector<std::string>& names,
                        std::string* used = nullptr) {
  for (const std::string& name : names) {
    const Value* v = input.Find(name);
    if (v && !v->is_null()) {
      if (used) *used = name;
      return v;
    }
  }
  return nullptr;
}

Result<std::string> ArnOf(const Value& input, const TagStyle& style) {
  const Value* arn = FindMember(input, style.arn_members);
  if (!arn || !arn->is_string() || arn->AsString().empty()) {
    return Invalid(style.validation_code,
                   "The " + style.arn_members.front() + " member is required and must be an ARN.");
  }
  return arn->AsString();
}

// The store words not-found errors for the kinds it knows; the rest take the style's.
Status Reword(Status status, const TagStyle& style, std::string_view arn) {
  if (status.kind() == ErrorKind::kNotFound && status.code().empty()) {
    return MakeError(style.not_found, ErrorKind::kNotFound, {{"arn", std::string(arn)}});
  }
  return status;
}

}  // namespace

TagStyle SageMakerTagStyle() {
  TagStyle s;
  s.add_returns_tags = true;
  s.list_paginated = true;
  s.not_found = {"ValidationException", 400, "Resource {arn} does not exist."};
  return s;
}

TagStyle ListTagStyle() {
  TagStyle s;
  s.output_arn_member = "ResourceArn";
  return s;
}

TagStyle MapTagStyle(std::string arn_member, std::string tags_member, std::string tag_keys_member) {
  TagStyle s;
  s.arn_members = {std::move(arn_member)};
  s.tags_members = {tags_member};
  s.tag_keys_members = {std::move(tag_keys_member)};
  s.tags_as_map = true;
  s.output_tags_member = std::move(tags_member);
  return s;
}

Value ToTagList(const Tags& tags) {
  Value out = Value::MakeList();
  for (const Tag& t : tags)
    out.Append(Value::Object({{"Key", Value(t.key)}, {"Value", Value(t.value)}}));
  return out;
}

Result<Tags> ParseTagList(const Value& list, std::string_view validation_code) {
  if (!list.is_list()) return Invalid(validation_code, "Tags must be a list of {Key, Value}.");
  Tags out;
  for (const Value& e : list.list()) {
    const Value* key = e.Find("Key");
    const Value* value = e.Find("Value");
    if (!e.is_map() || !key || !key->is_string() ||
        (value && !value->is_null() && !value->is_string())) {
      return Invalid(validation_code, "Each tag must have a string Key and a string Value.");
    }
    out.push_back({key->AsString(), value ? value->AsString() : std::string()});
  }
  return out;
}

Value ToTagMap(const Tags& tags) {
  Value out = Value::MakeMap();
  for (const Tag& t : tags) out[t.key] = Value(t.value);
  return out;
}

Result<Tags> ParseTagMap(const Value& map, std::string_view validation_code) {
  if (!map.is_map()) return Invalid(validation_code, "Tags must be a map of key to value.");
  Tags out;
  for (const auto& [key, value] : map.map()) {
    if (!value.is_string()) {
      return Invalid(validation_code, "The value of tag \"" + key + "\" must be a string.");
    }
    out.push_back({key, value.AsString()});
  }
  return out;
}

Result<Value> AddTagsHandler(ResourceStore& store, const Value& input, const TagStyle& style,
                             std::string_view caller_account) {
  NIMBUS_ASSIGN_OR_RETURN(std::string arn, ArnOf(input, style));
  std::string member;
  const Value* tags_in = FindMember(input, style.tags_members, &member);
  if (!tags_in) {
    return Invalid(style.validation_code,
                   "The " + style.tags_members.front() + " member is required.");
  }
  NIMBUS_ASSIGN_OR_RETURN(Tags tags, style.tags_as_map
                                         ? ParseTagMap(*tags_in, style.validation_code)
                                         : ParseTagList(*tags_in, style.validation_code));
  Result<Tags> added = store.AddTags(arn, tags, caller_account);
  if (!added.ok()) return Reword(added.status(), style, arn);
  Value out = Value::MakeMap();
  if (style.add_returns_tags) out[style.output_tags_member] = ToTagList(tags);
  return out;
}

Result<Value> RemoveTagsHandler(ResourceStore& store, const Value& input, const TagStyle& style,
                                std::string_view caller_account) {
  NIMBUS_ASSIGN_OR_RETURN(std::string arn, ArnOf(input, style));
  const Value* keys_in = FindMember(input, style.tag_keys_members);
  if (!keys_in || !keys_in->is_list()) {
    return Invalid(style.validation_code, "The " + style.tag_keys_members.front() +
                                              " member is required and must be a list.");
  }
  std::vector<std::string> keys;
  for (const Value& k : keys_in->list()) {
    if (!k.is_string()) {
      return Invalid(style.validation_code,
                     "Each entry of " + style.tag_keys_members.front() + " must be a string.");
    }
    keys.push_back(k.AsString());
  }
  Status removed = store.RemoveTags(arn, keys, caller_account);
  if (!removed.ok()) return Reword(removed, style, arn);
  return Value::MakeMap();
}

Result<Value> ListTagsHandler(ResourceStore& store, const Value& input, const TagStyle& style,
                              std::string_view caller_account) {
  NIMBUS_ASSIGN_OR_RETURN(std::string arn, ArnOf(input, style));
  int max_results = 0;
  std::string next_token;
  if (style.list_paginated) {
    if (const Value* max = input.Find("MaxResults"); max && !max->is_null()) {
      if (max->AsInt() < 1) {
        return Invalid(style.validation_code, "MaxResults must be at least 1.");
      }
      max_results = static_cast<int>(std::min<int64_t>(max->AsInt(), 1 << 20));
    }
    next_token = input.GetString("NextToken");
  }
  Result<TagPage> page = store.ListTags(arn, max_results, next_token, caller_account);
  if (!page.ok()) return Reword(page.status(), style, arn);
  Value out = Value::MakeMap();
  out[style.output_tags_member] = style.tags_as_map ? ToTagMap(page->tags) : ToTagList(page->tags);
  if (!style.output_arn_member.empty()) out[style.output_arn_member] = Value(arn);
  if (!page->next_token.empty()) out["NextToken"] = Value(page->next_token);
  return out;
}

}  // namespace nimbus::control
