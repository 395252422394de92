// Tagging handlers: the three shapes in which AWS services expose tags, mapped onto
// ResourceStore's tags-by-ARN, so that a service registers its tagging operations in a
// few lines:
//
//   (1) SageMaker: AddTags {ResourceArn, Tags: [{Key, Value}]} -> {Tags},
//       DeleteTags {ResourceArn, TagKeys}, ListTags {ResourceArn, MaxResults, NextToken}
//       -> {Tags, NextToken}                                        SageMakerTagStyle()
//   (2) TagResource / UntagResource / ListTagsForResource with Tags as a list of
//       {Key, Value} (Comprehend, Forecast, Personalize)           ListTagStyle()
//   (3) the same operations with tags as a map {key: value} (Lambda: Resource/Tags;
//       CloudWatch Logs: resourceArn/tags)                          MapTagStyle(...)
//
//   registry.Register("sagemaker", "AddTags", [&](const Value& in, aws::RequestContext& ctx) {
//     return control::AddTagsHandler(resources, in, style, ctx.account_id);
//   });
//
// An ARN of a registered kind that names no resource (or another account's) is the kind's
// not-found error; an ARN of no registered kind is the style's not_found. Member names
// are the model's member names, as handlers receive them.
//
// Thread-safety: the handlers are stateless; ResourceStore is thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/resource_kind.h"
#include "control/resource_store.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::control {

struct TagStyle {
  // Input members, each tried in order; the first present is used.
  std::vector<std::string> arn_members = {"ResourceArn"};
  std::vector<std::string> tags_members = {"Tags"};
  std::vector<std::string> tag_keys_members = {"TagKeys"};
  bool tags_as_map = false;  // {key: value} rather than [{Key, Value}]

  // Output.
  std::string output_tags_member = "Tags";
  std::string output_arn_member;  // ListTags* echoes the ARN under this name when set
  bool add_returns_tags = false;  // SageMaker's AddTags answers with the tags it added
  bool list_paginated = false;    // ListTags* reads MaxResults/NextToken, writes NextToken

  // For an ARN of no registered kind; {arn} is replaced.
  ErrorSpec not_found = {"ResourceNotFoundException", 400, "Resource {arn} was not found."};
  std::string validation_code = "ValidationException";
};

TagStyle SageMakerTagStyle();
TagStyle ListTagStyle();
// e.g. MapTagStyle("Resource", "Tags", "TagKeys") for Lambda,
//      MapTagStyle("resourceArn", "tags", "tagKeys") for CloudWatch Logs.
TagStyle MapTagStyle(std::string arn_member, std::string tags_member, std::string tag_keys_member);

// AddTags / TagResource: adds or overwrites the given tags.
Result<Value> AddTagsHandler(ResourceStore& store, const Value& input, const TagStyle& style,
                             std::string_view caller_account = {});
// DeleteTags / UntagResource: removes the given keys; absent keys are ignored.
Result<Value> RemoveTagsHandler(ResourceStore& store, const Value& input, const TagStyle& style,
                                std::string_view caller_account = {});
// ListTags / ListTagsForResource.
Result<Value> ListTagsHandler(ResourceStore& store, const Value& input, const TagStyle& style,
                              std::string_view caller_account = {});

// [{Key, Value}] <-> Tags. Parsing fails (with validation_code) on a malformed entry;
// a missing Value is the empty string, as on AWS.
Value ToTagList(const Tags& tags);
Result<Tags> ParseTagList(const Value& list,
                          std::string_view validation_code = "ValidationException");
// {key: value} <-> Tags. A map has no order: parsed tags come in key order.
Value ToTagMap(const Tags& tags);
Result<Tags> ParseTagMap(const Value& map,
                         std::string_view validation_code = "ValidationException");

}  // namespace nimbus::control
