#include "aws/protocol/pattern.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "core/logging.h"
#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {

constexpr std::pair<std::string_view, std::string_view> kPosixClasses[] = {
    {"Lower", "lower"}, {"Upper", "upper"}, {"ASCII", "ascii"}, {"Alpha", "alpha"},
    {"Digit", "digit"}, {"Alnum", "alnum"}, {"Punct", "punct"}, {"Graph", "graph"},
    {"Print", "print"}, {"Blank", "blank"}, {"Cntrl", "cntrl"}, {"XDigit", "xdigit"},
    {"Space", "space"},
};

struct Cache {
  std::shared_mutex mu;
  // nullptr: the pattern does not compile.
  std::map<std::string, std::unique_ptr<RE2>, std::less<>> compiled;
  size_t unsupported = 0;
};

Cache& GetCache() {
  static Cache* cache = new Cache();
  return *cache;
}

}  // namespace

std::string TranslateJavaPattern(std::string_view p) {
  std::string out;
  out.reserve(p.size());
  int class_depth = 0;
  bool after_quantifier = false;  // the last token was ?, *, + or {m,n}
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    bool quantifier = false;
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      size_t close = e == 'p' && i + 2 < p.size() && p[i + 2] == '{' ? p.find('}', i + 3)
                                                                     : std::string_view::npos;
      const std::string_view* posix = nullptr;
      if (close != std::string_view::npos) {
        std::string_view name = p.substr(i + 3, close - i - 3);
        for (const auto& [java, re2_name] : kPosixClasses) {
          if (name == java) posix = &re2_name;
        }
      }
      if (posix) {
        out += class_depth > 0 ? "[:" + std::string(*posix) + ":]"
                               : "[[:" + std::string(*posix) + ":]]";
        i = close;
      } else if (e == 'u' && i + 5 < p.size() &&
                 std::all_of(p.begin() + i + 2, p.begin() + i + 6,
                             [](char h) { return std::isxdigit(static_cast<unsigned char>(h)); })) {
        out += "\\x{" + std::string(p.substr(i + 2, 4)) + "}";  // Java's \uXXXX
        i += 5;
      } else if (e == 'Z') {  // Java's end of input (before a final newline)
        out += "\\z";
        ++i;
      } else {
        out += c;
        out += p[++i];
      }
      after_quantifier = false;
      continue;
    }
    if (class_depth == 0) {
      if (c == '+' && after_quantifier) {
        continue;  // Java's possessive quantifier: RE2 never backtracks anyway
      }
      if (c == '{') {
        // {m}, {m,} or {m,n}: RE2 allows at most 1000 repetitions, so larger bounds are
        // relaxed (the model's min/max length constraints still apply).
        size_t close = p.find('}', i);
        std::string_view body =
            close == std::string_view::npos ? "" : p.substr(i + 1, close - i - 1);
        size_t comma = body.find(',');
        auto lo = ParseInt(body.substr(0, comma));
        auto hi = comma == std::string_view::npos || comma + 1 == body.size()
                      ? std::optional<int64_t>()
                      : ParseInt(body.substr(comma + 1));
        if (lo && (comma == std::string_view::npos || comma + 1 == body.size() || hi)) {
          int64_t min = std::min<int64_t>(*lo, 1000);
          if (comma == std::string_view::npos && *lo <= 1000) {
            out += "{" + std::to_string(*lo) + "}";
          } else if (hi && *hi <= 1000) {
            out += "{" + std::to_string(min) + "," + std::to_string(*hi) + "}";
          } else {
            out += "{" + std::to_string(min) + ",}";
          }
          i = close;
          after_quantifier = true;
          continue;
        }
      }
      quantifier = c == '?' || c == '*' || c == '+';
    }
    if (c == '[') {
      ++class_depth;
    } else if (c == ']' && class_depth > 0) {
      --class_depth;
    }
    out += c;
    after_quantifier = quantifier;
  }
  return out;
}

PatternResult MatchPattern(std::string_view pattern, std::string_view text) {
  Cache& cache = GetCache();
  const RE2* re = nullptr;
  bool found = false;
  {
    std::shared_lock lock(cache.mu);
    auto it = cache.compiled.find(pattern);
    if (it != cache.compiled.end()) {
      found = true;
      re = it->second.get();
    }
  }
  if (!found) {
    RE2::Options options;
    options.set_log_errors(false);
    auto compiled = std::make_unique<RE2>(TranslateJavaPattern(pattern), options);
    std::unique_lock lock(cache.mu);
    auto [it, inserted] = cache.compiled.try_emplace(std::string(pattern));
    if (inserted) {
      if (compiled->ok()) {
        it->second = std::move(compiled);
      } else {
        ++cache.unsupported;
        Log(LogLevel::kWarn, "model_pattern_unsupported",
            {{"pattern", std::string(pattern)}, {"error", compiled->error()}});
      }
    }
    re = it->second.get();
  }
  if (!re) return PatternResult::kUnsupported;
  return RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re) ? PatternResult::kMatch
                                                                         : PatternResult::kNoMatch;
}

size_t UnsupportedPatternCount() {
  Cache& cache = GetCache();
  std::shared_lock lock(cache.mu);
  return cache.unsupported;
}

}  // namespace nimbus::aws::protocol
