// What every SageMaker resource handler shares: reading members of stored documents and
// the Tags member of Create* requests.
//
// Thread-safety: free functions without state.
#pragma once

#include <string>
#include <string_view>

#include "control/resource_store.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::services {

// value[key], or a null Value when value is not a map or has no such member.
const Value& Member(const Value& value, std::string_view key);

// A stored body as the API shows it: without the controller's "_runtime" record.
Value PublicBody(const Value& body);

// SageMaker's error for a request it refuses: ValidationException (400) with message.
Status Invalid(std::string message);

// The request's Tags ([{Key, Value}]); none when absent.
Result<control::Tags> ParseTags(const Value& input);

}  // namespace nimbus::services
