#include "telemetry/filter_pattern.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/strings.h"

namespace nimbus::telemetry {
namespace {

using Json = nlohmann::json;

// Nesting deeper than this is refused, so that a hostile pattern cannot exhaust the
// stack of the recursive-descent parser or of the evaluator.
constexpr int kMaxDepth = 64;

Status Invalid(const std::string& detail) {
  return Status::Aws("InvalidParameterException", 400, "Invalid filter pattern: " + detail);
}

// Glob where only '*' is special (AWS filter patterns have no single-character wildcard).
bool Glob(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// ---- JSON patterns -------------------------------------------------------------------

struct Step {
  enum class Kind { kField, kIndex, kAnyIndex };
  Kind kind;
  std::string field;
  size_t index = 0;
};

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe, kIsNull, kIsTrue, kIsFalse, kNotExists };

struct JsonExpr {
  enum class Kind { kAnd, kOr, kCompare };
  Kind kind = Kind::kCompare;
  std::vector<std::unique_ptr<JsonExpr>> children;  // kAnd / kOr
  std::vector<Step> selector;                       // kCompare
  Op op = Op::kEq;
  bool numeric = false;  // the literal is a number
  double number = 0;
  std::string text;  // the literal as written (a string pattern when !numeric)
};

void Select(const Json& node, const std::vector<Step>& steps, size_t i,
            std::vector<const Json*>& out) {
  if (i == steps.size()) {
    out.push_back(&node);
    return;
  }
  const Step& step = steps[i];
  switch (step.kind) {
    case Step::Kind::kField:
      if (node.is_object()) {
        auto it = node.find(step.field);
        if (it != node.end()) Select(*it, steps, i + 1, out);
      }
      break;
    case Step::Kind::kIndex:
      if (node.is_array() && step.index < node.size()) Select(node[step.index], steps, i + 1, out);
      break;
    case Step::Kind::kAnyIndex:
      if (node.is_array()) {
        for (const Json& element : node) Select(element, steps, i + 1, out);
      }
      break;
  }
}

bool EqualsLiteral(const JsonExpr& e, const Json& node) {
  if (e.numeric) return node.is_number() && node.get<double>() == e.number;
  if (node.is_string()) return Glob(e.text, node.get_ref<const std::string&>());
  if (node.is_number() || node.is_boolean()) return Glob(e.text, node.dump());
  return false;
}

bool Compare(const JsonExpr& e, const Json& doc) {
  std::vector<const Json*> nodes;
  Select(doc, e.selector, 0, nodes);
  if (e.op == Op::kNotExists) return nodes.empty();
  for (const Json* node : nodes) {
    switch (e.op) {
      case Op::kIsNull:
        if (node->is_null()) return true;
        break;
      case Op::kIsTrue:
        if (node->is_boolean() && node->get<bool>()) return true;
        break;
      case Op::kIsFalse:
        if (node->is_boolean() && !node->get<bool>()) return true;
        break;
      case Op::kEq:
        if (EqualsLiteral(e, *node)) return true;
        break;
      case Op::kNe:
        break;  // decided below: no selected node equals the literal
      default: {
        if (!node->is_number()) break;
        const double v = node->get<double>();
        if ((e.op == Op::kLt && v < e.number) || (e.op == Op::kLe && v <= e.number) ||
            (e.op == Op::kGt && v > e.number) || (e.op == Op::kGe && v >= e.number)) {
          return true;
        }
      }
    }
  }
  if (e.op == Op::kNe && !nodes.empty()) {
    for (const Json* node : nodes) {
      if (EqualsLiteral(e, *node)) return false;
    }
    return true;
  }
  return false;
}

bool Eval(const JsonExpr& e, const Json& doc) {
  switch (e.kind) {
    case JsonExpr::Kind::kAnd:
      for (const auto& c : e.children) {
        if (!Eval(*c, doc)) return false;
      }
      return true;
    case JsonExpr::Kind::kOr:
      for (const auto& c : e.children) {
        if (Eval(*c, doc)) return true;
      }
      return false;
    case JsonExpr::Kind::kCompare:
      return Compare(e, doc);
  }
  return false;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

// Characters that end a bare word inside a JSON pattern.
bool EndsBareWord(char c) {
  return IsSpace(c) || c == '(' || c == ')' || c == '&' || c == '|' || c == '=' || c == '!' ||
         c == '<' || c == '>' || c == '"' || c == '}';
}

// Parses a double-quoted string starting at text[pos] == '"'; on success pos is past the
// closing quote.
Result<std::string> ParseQuoted(std::string_view text, size_t& pos) {
  std::string out;
  ++pos;
  while (pos < text.size()) {
    char c = text[pos++];
    if (c == '"') return out;
    if (c == '\\') {
      if (pos >= text.size()) break;
      out.push_back(text[pos++]);
    } else {
      out.push_back(c);
    }
  }
  return Invalid("unterminated quoted string");
}

std::optional<double> ParseNumber(const std::string& word) {
  if (word.empty()) return std::nullopt;
  const char c = word[0];
  if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.')) {
    return std::nullopt;
  }
  char* end = nullptr;
  double v = std::strtod(word.c_str(), &end);
  if (end != word.c_str() + word.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

class JsonPatternParser {
 public:
  explicit JsonPatternParser(std::string_view text) : text_(text) {}

  Result<std::unique_ptr<JsonExpr>> ParseAll() {
    NIMBUS_ASSIGN_OR_RETURN(auto expr, ParseOr(0));
    SkipSpace();
    if (pos_ != text_.size()) {
      return Invalid("unexpected '" + std::string(text_.substr(pos_, 20)) + "'");
    }
    return expr;
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }
  bool Consume(std::string_view token) {
    SkipSpace();
    if (text_.substr(pos_, token.size()) == token) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  std::string BareWord() {
    SkipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && !EndsBareWord(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }
  // Consumes the keyword when the next bare word is it (case-insensitively).
  bool Keyword(std::string_view word) {
    size_t saved = pos_;
    if (EqualsIgnoreCase(BareWord(), word)) return true;
    pos_ = saved;
    return false;
  }

  Result<std::unique_ptr<JsonExpr>> ParseOr(int depth) {
    NIMBUS_ASSIGN_OR_RETURN(auto first, ParseAnd(depth));
    if (SkipSpace(), text_.substr(pos_, 2) != "||") return first;
    auto node = std::make_unique<JsonExpr>();
    node->kind = JsonExpr::Kind::kOr;
    node->children.push_back(std::move(first));
    while (Consume("||")) {
      NIMBUS_ASSIGN_OR_RETURN(auto next, ParseAnd(depth));
      node->children.push_back(std::move(next));
    }
    return node;
  }

  Result<std::unique_ptr<JsonExpr>> ParseAnd(int depth) {
    NIMBUS_ASSIGN_OR_RETURN(auto first, ParsePrimary(depth));
    if (SkipSpace(), text_.substr(pos_, 2) != "&&") return first;
    auto node = std::make_unique<JsonExpr>();
    node->kind = JsonExpr::Kind::kAnd;
    node->children.push_back(std::move(first));
    while (Consume("&&")) {
      NIMBUS_ASSIGN_OR_RETURN(auto next, ParsePrimary(depth));
      node->children.push_back(std::move(next));
    }
    return node;
  }

  Result<std::unique_ptr<JsonExpr>> ParsePrimary(int depth) {
    if (depth > kMaxDepth) return Invalid("too deeply nested");
    if (Consume("(")) {
      NIMBUS_ASSIGN_OR_RETURN(auto inner, ParseOr(depth + 1));
      if (!Consume(")")) return Invalid("missing ')'");
      return inner;
    }
    return ParseComparison();
  }

  Result<std::vector<Step>> ParseSelector() {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != '$') {
      return Invalid("expected a selector starting with '$'");
    }
    ++pos_;
    std::vector<Step> steps;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '.') {
        ++pos_;
        size_t start = pos_;
        while (pos_ < text_.size() && !EndsBareWord(text_[pos_]) && text_[pos_] != '.' &&
               text_[pos_] != '[' && text_[pos_] != ']') {
          ++pos_;
        }
        if (pos_ == start) return Invalid("empty field name in selector");
        steps.push_back({Step::Kind::kField, std::string(text_.substr(start, pos_ - start))});
      } else if (c == '[') {
        size_t close = text_.find(']', pos_);
        if (close == std::string_view::npos) return Invalid("missing ']' in selector");
        std::string_view inside = text_.substr(pos_ + 1, close - pos_ - 1);
        if (inside == "*") {
          steps.push_back({Step::Kind::kAnyIndex, ""});
        } else {
          auto index = ParseInt(inside);
          if (!index || *index < 0 || inside.empty() || inside[0] == '+' || inside[0] == '-') {
            return Invalid("bad array index '" + std::string(inside) + "'");
          }
          steps.push_back({Step::Kind::kIndex, "", static_cast<size_t>(*index)});
        }
        pos_ = close + 1;
      } else {
        break;
      }
    }
    if (steps.empty()) return Invalid("selector names no field");
    return steps;
  }

  Result<std::unique_ptr<JsonExpr>> ParseComparison() {
    auto node = std::make_unique<JsonExpr>();
    NIMBUS_ASSIGN_OR_RETURN(node->selector, ParseSelector());
    SkipSpace();
    if (Keyword("IS")) {
      if (Keyword("NULL")) {
        node->op = Op::kIsNull;
      } else if (Keyword("TRUE")) {
        node->op = Op::kIsTrue;
      } else if (Keyword("FALSE")) {
        node->op = Op::kIsFalse;
      } else {
        return Invalid("expected NULL, TRUE or FALSE after IS");
      }
      return node;
    }
    if (Keyword("NOT")) {
      if (!Keyword("EXISTS")) return Invalid("expected EXISTS after NOT");
      node->op = Op::kNotExists;
      return node;
    }
    if (Consume("!=")) {
      node->op = Op::kNe;
    } else if (Consume("<=")) {
      node->op = Op::kLe;
    } else if (Consume(">=")) {
      node->op = Op::kGe;
    } else if (Consume("<")) {
      node->op = Op::kLt;
    } else if (Consume(">")) {
      node->op = Op::kGt;
    } else if (Consume("=")) {
      node->op = Op::kEq;
    } else {
      return Invalid("expected a comparison operator after the selector");
    }
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '"') {
      NIMBUS_ASSIGN_OR_RETURN(node->text, ParseQuoted(text_, pos_));
    } else {
      node->text = BareWord();
      if (node->text.empty()) return Invalid("missing value after the operator");
      if (auto number = ParseNumber(node->text)) {
        node->numeric = true;
        node->number = *number;
      }
    }
    const bool relational = node->op != Op::kEq && node->op != Op::kNe;
    if (relational && !node->numeric) {
      return Invalid("'" + node->text + "' is not a number; <, <=, > and >= compare numbers");
    }
    return node;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

// ---- the pattern ---------------------------------------------------------------------

struct FilterPattern::Node {
  std::vector<std::string> all;    // plain terms: each must occur
  std::vector<std::string> any;    // ?terms: one must occur (when there are any)
  std::vector<std::string> none;   // -terms: none may occur
  std::unique_ptr<JsonExpr> json;  // set for a JSON pattern; the term lists are then empty
};

FilterPattern::FilterPattern() = default;

Result<FilterPattern> FilterPattern::Parse(std::string_view pattern) {
  FilterPattern out;
  out.text_ = std::string(pattern);
  std::string_view text = Trim(pattern);
  if (text.empty()) return out;
  auto node = std::make_shared<Node>();
  if (text.front() == '{') {
    if (text.back() != '}' || text.size() < 2) return Invalid("a JSON pattern must end with '}'");
    JsonPatternParser parser(text.substr(1, text.size() - 2));
    NIMBUS_ASSIGN_OR_RETURN(node->json, parser.ParseAll());
    out.root_ = std::move(node);
    return out;
  }
  if (text.front() == '[') {
    return Invalid("space-delimited patterns ([...]) are not supported by Nimbus");
  }
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && IsSpace(text[pos])) ++pos;
    if (pos >= text.size()) break;
    std::vector<std::string>* list = &node->all;
    if ((text[pos] == '?' || text[pos] == '-') && pos + 1 < text.size() &&
        !IsSpace(text[pos + 1])) {
      list = text[pos] == '?' ? &node->any : &node->none;
      ++pos;
    }
    std::string term;
    if (text[pos] == '"') {
      NIMBUS_ASSIGN_OR_RETURN(term, ParseQuoted(text, pos));
      if (pos < text.size() && !IsSpace(text[pos])) {
        return Invalid("a quoted term must be followed by a blank");
      }
    } else {
      size_t start = pos;
      while (pos < text.size() && !IsSpace(text[pos])) ++pos;
      term = std::string(text.substr(start, pos - start));
      if (term.find('"') != std::string::npos) {
        return Invalid("misplaced '\"' in term '" + term + "'");
      }
      if (term.front() == '{' || term.front() == '[') {
        return Invalid("'" + term + "' mixes a JSON or space-delimited pattern with terms");
      }
      if (term.size() >= 2 && term.front() == '%' && term.back() == '%') {
        return Invalid("regular expressions (%...%) are not supported by Nimbus");
      }
    }
    list->push_back(std::move(term));
  }
  out.root_ = std::move(node);
  return out;
}

bool FilterPattern::Matches(std::string_view message) const {
  if (!root_) return true;
  if (root_->json) {
    std::string_view trimmed = Trim(message);
    if (trimmed.empty() || (trimmed.front() != '{' && trimmed.front() != '[')) return false;
    Json doc = Json::parse(trimmed.begin(), trimmed.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return false;
    return Eval(*root_->json, doc);
  }
  for (const std::string& term : root_->all) {
    if (message.find(term) == std::string_view::npos) return false;
  }
  for (const std::string& term : root_->none) {
    if (message.find(term) != std::string_view::npos) return false;
  }
  if (root_->any.empty()) return true;
  for (const std::string& term : root_->any) {
    if (message.find(term) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace nimbus::telemetry
