// Model `pattern` constraints, matched with RE2 (linear time, so hostile input cannot
// make a request slow). AWS writes its patterns for Java; the POSIX classes Java spells
// \p{Alpha} are rewritten to RE2's [[:alpha:]]. A pattern RE2 still cannot compile
// (look-arounds, back-references) is skipped: it is counted and logged once.
//
// Thread-safety: safe to call from any thread; compiled patterns are cached process-wide.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace nimbus::aws::protocol {

enum class PatternResult { kMatch, kNoMatch, kUnsupported };

// Whether the whole of text matches pattern.
PatternResult MatchPattern(std::string_view pattern, std::string_view text);

// Java regex syntax -> RE2 syntax, for the constructs AWS models use.
std::string TranslateJavaPattern(std::string_view pattern);

// How many distinct patterns could not be compiled so far.
size_t UnsupportedPatternCount();

}  // namespace nimbus::aws::protocol
