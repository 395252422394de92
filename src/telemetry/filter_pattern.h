// FilterPattern: the CloudWatch Logs filter-pattern language that FilterLogEvents (and,
// later, metric and subscription filters) match log event messages against.
//
// Supported syntax, as AWS documents it:
//   - empty pattern (or only blanks): every event matches;
//   - terms: `ERROR Exception` — every term must occur in the message (substring,
//     case-sensitive); `"quoted phrase"` is one term (with \" and \\ escapes);
//   - `?ERROR ?WARN` — at least one of the `?` terms must occur;
//   - `-term` — the event must not contain the term (`ERROR -Retry`);
//   - JSON patterns: `{ $.field = value }` against messages that are JSON documents, with
//     selectors `$.a.b`, `$.list[0]`, `$.list[*]`; comparisons `=` and `!=` on strings
//     (quoted or bare, `*` as a wildcard) and `= != < <= > >=` on numbers; `IS NULL`,
//     `IS TRUE`, `IS FALSE`, `NOT EXISTS`; `&&`, `||` (`&&` binds tighter) and parentheses.
// Space-delimited patterns (`[ip, user, ...]`) and regular expressions (`%...%`) are not
// supported: they fail to parse. A string comparison against a number or boolean compares
// with its JSON text; a numeric comparison needs a JSON number. A missing field makes
// every comparison false except NOT EXISTS, so `!=` means "present and different".
//
// Parse errors are InvalidParameterException (400) "Invalid filter pattern: ...".
//
// Ownership and thread-safety: a FilterPattern is an immutable value holding a shared,
// read-only syntax tree; copies are cheap and Matches() may run on many threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace nimbus::telemetry {

class FilterPattern {
 public:
  // The pattern that matches every event.
  FilterPattern();

  static Result<FilterPattern> Parse(std::string_view pattern);

  bool Matches(std::string_view message) const;
  // True for the empty pattern, so that callers can skip matching altogether.
  bool MatchesEverything() const { return root_ == nullptr; }
  const std::string& text() const { return text_; }

  struct Node;  // the syntax tree, defined in filter_pattern.cc

 private:
  std::shared_ptr<const Node> root_;
  std::string text_;
};

}  // namespace nimbus::telemetry
