#include "telemetry/metric_math.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

#include "core/strings.h"

namespace nimbus::telemetry {

MathValue MathValue::Scalar(double v) {
  MathValue m;
  m.kind = Kind::kScalar;
  m.scalar = v;
  return m;
}

MathValue MathValue::Series(TimeSeries s) {
  MathValue m;
  m.kind = Kind::kSeries;
  m.series.push_back(std::move(s));
  return m;
}

MathValue MathValue::Array(std::vector<TimeSeries> s) {
  MathValue m;
  m.kind = Kind::kArray;
  m.series = std::move(s);
  return m;
}

struct MathExpression::Node {
  enum class Type { kNumber, kRef, kNeg, kBinary, kArray, kCall, kString, kKeyword };
  Type type = Type::kNumber;
  double number = 0;
  std::string text;  // id, function name, string literal, keyword, or operator
  std::vector<std::shared_ptr<const Node>> children;
};

namespace {

using Node = MathExpression::Node;
using NodePtr = std::shared_ptr<const Node>;

Status MathError(std::string msg) { return Status::Aws("ValidationError", 400, std::move(msg)); }

// ---------------------------------------------------------------------------------------
// Parsing: a recursive-descent parser straight over the text.

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<NodePtr> ParseAll() {
    NIMBUS_ASSIGN_OR_RETURN(NodePtr root, ParseExpr());
    SkipSpace();
    if (pos_ < text_.size()) return Error("unexpected '" + std::string(1, text_[pos_]) + "'");
    return root;
  }

  std::vector<std::string> references;
  bool uses_metrics = false;

 private:
  Status Error(const std::string& what) const {
    return MathError("Syntax error in metric math expression at position " +
                     std::to_string(pos_ + 1) + ": " + what + ".");
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  bool Accept(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  Status Expect(char c) {
    if (Accept(c)) return Status::Ok();
    if (pos_ >= text_.size()) return Error(std::string("expected '") + c + "' at the end");
    return Error(std::string("expected '") + c + "'");
  }

  static NodePtr Binary(char op, NodePtr l, NodePtr r) {
    auto n = std::make_shared<Node>();
    n->type = Node::Type::kBinary;
    n->text = std::string(1, op);
    n->children = {std::move(l), std::move(r)};
    return n;
  }

  Result<NodePtr> ParseExpr() {
    NIMBUS_ASSIGN_OR_RETURN(NodePtr left, ParseTerm());
    while (true) {
      if (Accept('+')) {
        NIMBUS_ASSIGN_OR_RETURN(NodePtr right, ParseTerm());
        left = Binary('+', left, right);
      } else if (Accept('-')) {
        NIMBUS_ASSIGN_OR_RETURN(NodePtr right, ParseTerm());
        left = Binary('-', left, right);
      } else {
        return left;
      }
    }
  }

  Result<NodePtr> ParseTerm() {
    NIMBUS_ASSIGN_OR_RETURN(NodePtr left, ParseUnary());
    while (true) {
      if (Accept('*')) {
        NIMBUS_ASSIGN_OR_RETURN(NodePtr right, ParseUnary());
        left = Binary('*', left, right);
      } else if (Accept('/')) {
        NIMBUS_ASSIGN_OR_RETURN(NodePtr right, ParseUnary());
        left = Binary('/', left, right);
      } else {
        return left;
      }
    }
  }

  Result<NodePtr> ParseUnary() {
    if (Accept('-')) {
      NIMBUS_ASSIGN_OR_RETURN(NodePtr operand, ParseUnary());
      auto n = std::make_shared<Node>();
      n->type = Node::Type::kNeg;
      n->children = {std::move(operand)};
      return NodePtr(n);
    }
    if (Accept('+')) return ParseUnary();
    return ParsePrimary();
  }

  Result<NodePtr> ParsePrimary() {
    SkipSpace();
    if (pos_ >= text_.size()) return Error("the expression ends too early");
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      NIMBUS_ASSIGN_OR_RETURN(NodePtr inner, ParseExpr());
      NIMBUS_RETURN_IF_ERROR(Expect(')'));
      return inner;
    }
    if (c == '[') {
      ++pos_;
      auto n = std::make_shared<Node>();
      n->type = Node::Type::kArray;
      do {
        NIMBUS_ASSIGN_OR_RETURN(NodePtr item, ParseExpr());
        n->children.push_back(std::move(item));
      } while (Accept(','));
      NIMBUS_RETURN_IF_ERROR(Expect(']'));
      return NodePtr(n);
    }
    if (c == '"') {
      const size_t close = text_.find('"', pos_ + 1);
      if (close == std::string_view::npos) return Error("unterminated string");
      auto n = std::make_shared<Node>();
      n->type = Node::Type::kString;
      n->text = std::string(text_.substr(pos_ + 1, close - pos_ - 1));
      pos_ = close + 1;
      return NodePtr(n);
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return ParseNumber();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const size_t begin = pos_;
      while (pos_ < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
        ++pos_;
      }
      std::string word(text_.substr(begin, pos_ - begin));
      if (std::islower(static_cast<unsigned char>(word[0]))) {
        auto n = std::make_shared<Node>();
        n->type = Node::Type::kRef;
        n->text = word;
        if (std::find(references.begin(), references.end(), word) == references.end()) {
          references.push_back(word);
        }
        return NodePtr(n);
      }
      if (!Accept('(')) {
        if (word == "REPEAT" || word == "LINEAR") {
          auto n = std::make_shared<Node>();
          n->type = Node::Type::kKeyword;
          n->text = word;
          return NodePtr(n);
        }
        pos_ = begin;
        return Error("'" + word + "' is neither a function call nor a query id (ids start " +
                     "with a lowercase letter)");
      }
      auto n = std::make_shared<Node>();
      n->type = Node::Type::kCall;
      n->text = word;
      if (word == "METRICS") uses_metrics = true;
      if (!Accept(')')) {
        do {
          NIMBUS_ASSIGN_OR_RETURN(NodePtr arg, ParseExpr());
          n->children.push_back(std::move(arg));
        } while (Accept(','));
        NIMBUS_RETURN_IF_ERROR(Expect(')'));
      }
      return NodePtr(n);
    }
    return Error("unexpected '" + std::string(1, c) + "'");
  }

  Result<NodePtr> ParseNumber() {
    const size_t begin = pos_;
    while (pos_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.')) {
      ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < text_.size() && (text_[p] == '+' || text_[p] == '-')) ++p;
      if (p < text_.size() && std::isdigit(static_cast<unsigned char>(text_[p]))) {
        pos_ = p;
        while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
          ++pos_;
        }
      }
    }
    const std::string literal(text_.substr(begin, pos_ - begin));
    char* end = nullptr;
    const double v = std::strtod(literal.c_str(), &end);
    if (end != literal.c_str() + literal.size() || !std::isfinite(v)) {
      pos_ = begin;
      return Error("'" + literal + "' is not a number");
    }
    auto n = std::make_shared<Node>();
    n->type = Node::Type::kNumber;
    n->number = v;
    return NodePtr(n);
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------
// Evaluation helpers over series.

double ApplyOp(char op, double a, double b) {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    default:
      return a / b;
  }
}

void PushFinite(TimeSeries& s, double t, double v) {
  if (std::isfinite(v)) {
    s.timestamps.push_back(t);
    s.values.push_back(v);
  }
}

TimeSeries EmptyLike(const TimeSeries& s) {
  TimeSeries out;
  out.id = s.id;
  out.label = s.label;
  out.period = s.period;
  return out;
}

template <typename Fn>
TimeSeries MapSeries(const TimeSeries& s, Fn fn) {
  TimeSeries out = EmptyLike(s);
  for (size_t i = 0; i < s.values.size(); ++i) PushFinite(out, s.timestamps[i], fn(s.values[i]));
  return out;
}

// Points at the timestamps both series have.
TimeSeries Combine(char op, const TimeSeries& a, const TimeSeries& b) {
  TimeSeries out = EmptyLike(a);
  out.period = std::min(a.period, b.period);
  size_t i = 0, j = 0;
  while (i < a.timestamps.size() && j < b.timestamps.size()) {
    if (a.timestamps[i] < b.timestamps[j]) {
      ++i;
    } else if (b.timestamps[j] < a.timestamps[i]) {
      ++j;
    } else {
      PushFinite(out, a.timestamps[i], ApplyOp(op, a.values[i], b.values[j]));
      ++i;
      ++j;
    }
  }
  return out;
}

// Applies fn(series) to a series or to each member of an array; scalars are an error
// naming the function.
template <typename Fn>
Result<MathValue> PerSeries(const std::string& fn_name, const MathValue& v, Fn fn) {
  if (v.kind == MathValue::Kind::kScalar) {
    return MathError("The function " + fn_name + " takes a time series or an array of " +
                     "time series, not a scalar.");
  }
  MathValue out = v;
  for (TimeSeries& s : out.series) s = fn(s);
  return out;
}

// Applies a numeric function to a scalar, a series or an array.
template <typename Fn>
MathValue Elementwise(const MathValue& v, Fn fn) {
  if (v.kind == MathValue::Kind::kScalar) return MathValue::Scalar(fn(v.scalar));
  MathValue out = v;
  for (TimeSeries& s : out.series) s = MapSeries(s, fn);
  return out;
}

enum class Reduce { kSum, kAvg, kMin, kMax, kStddev };

double ReduceValues(Reduce how, const std::vector<double>& values) {
  if (values.empty()) return std::nan("");
  switch (how) {
    case Reduce::kSum: {
      double s = 0;
      for (double v : values) s += v;
      return s;
    }
    case Reduce::kAvg: {
      double s = 0;
      for (double v : values) s += v;
      return s / static_cast<double>(values.size());
    }
    case Reduce::kMin:
      return *std::min_element(values.begin(), values.end());
    case Reduce::kMax:
      return *std::max_element(values.begin(), values.end());
    case Reduce::kStddev: {
      double mean = 0;
      for (double v : values) mean += v;
      mean /= static_cast<double>(values.size());
      double sq = 0;
      for (double v : values) sq += (v - mean) * (v - mean);
      // CloudWatch's STDDEV is the sample standard deviation.
      return values.size() < 2 ? 0.0 : std::sqrt(sq / static_cast<double>(values.size() - 1));
    }
  }
  return std::nan("");
}

// SUM/AVG/...: of an array, a series over the union of timestamps; of one series, a
// scalar over its values; of a scalar, the scalar.
MathValue ReduceValue(Reduce how, const MathValue& v) {
  if (v.kind == MathValue::Kind::kScalar) return v;
  if (v.kind == MathValue::Kind::kSeries)
    return MathValue::Scalar(ReduceValues(how, v.series[0].values));
  std::map<double, std::vector<double>> at;
  int period = 0;
  for (const TimeSeries& s : v.series) {
    period = period == 0 ? s.period : std::min(period, s.period);
    for (size_t i = 0; i < s.values.size(); ++i) at[s.timestamps[i]].push_back(s.values[i]);
  }
  TimeSeries out;
  out.period = period == 0 ? 60 : period;
  for (const auto& [t, values] : at) PushFinite(out, t, ReduceValues(how, values));
  return MathValue::Series(std::move(out));
}

TimeSeries Fill(const TimeSeries& s, const std::string& mode, double value, double start,
                double end) {
  std::map<double, double> known;
  for (size_t i = 0; i < s.values.size(); ++i) known[s.timestamps[i]] = s.values[i];
  TimeSeries out = EmptyLike(s);
  const double step = s.period > 0 ? s.period : 60;
  // A bound on the grid, far above any valid request (GetMetricData allows 100,800 points).
  constexpr double kMaxGridPoints = 1e6;
  if ((end - start) / step > kMaxGridPoints) return s;
  for (double t = start; t < end; t += step) {
    if (auto it = known.find(t); it != known.end()) {
      out.timestamps.push_back(t);
      out.values.push_back(it->second);
      continue;
    }
    std::optional<double> fill;
    if (mode.empty()) {
      fill = value;
    } else {
      auto after = known.upper_bound(t);
      auto before = after == known.begin() ? known.end() : std::prev(after);
      if (mode == "REPEAT") {
        if (before != known.end()) fill = before->second;
      } else if (before != known.end() && after != known.end()) {  // LINEAR
        const double f = (t - before->first) / (after->first - before->first);
        fill = before->second + f * (after->second - before->second);
      }
    }
    if (fill) PushFinite(out, t, *fill);
  }
  // Points off the grid stay.
  for (const auto& [t, v] : known) {
    if (std::fmod(t - start, step) != 0 || t < start || t >= end) {
      auto pos = std::lower_bound(out.timestamps.begin(), out.timestamps.end(), t);
      const size_t idx = pos - out.timestamps.begin();
      out.timestamps.insert(pos, t);
      out.values.insert(out.values.begin() + idx, v);
    }
  }
  return out;
}

class Evaluator {
 public:
  explicit Evaluator(const MathContext& ctx) : ctx_(ctx) {}

  Result<MathValue> Eval(const Node& n) {
    switch (n.type) {
      case Node::Type::kNumber:
        return MathValue::Scalar(n.number);
      case Node::Type::kRef:
        return ctx_.resolve(n.text);
      case Node::Type::kNeg: {
        NIMBUS_ASSIGN_OR_RETURN(MathValue v, Eval(*n.children[0]));
        return Elementwise(v, [](double x) { return -x; });
      }
      case Node::Type::kBinary:
        return EvalBinary(n);
      case Node::Type::kArray: {
        std::vector<TimeSeries> members;
        for (const auto& child : n.children) {
          NIMBUS_ASSIGN_OR_RETURN(MathValue v, Eval(*child));
          if (v.kind == MathValue::Kind::kScalar) {
            return MathError("An array [...] holds time series, not scalars.");
          }
          for (TimeSeries& s : v.series) members.push_back(std::move(s));
        }
        return MathValue::Array(std::move(members));
      }
      case Node::Type::kCall:
        return EvalCall(n);
      case Node::Type::kString:
        return MathError("A string (\"" + n.text + "\") is only valid as the argument of METRICS.");
      case Node::Type::kKeyword:
        return MathError(n.text + " is only valid as the second argument of FILL.");
    }
    return MathError("Invalid metric math expression.");
  }

 private:
  Result<MathValue> EvalBinary(const Node& n) {
    NIMBUS_ASSIGN_OR_RETURN(MathValue a, Eval(*n.children[0]));
    NIMBUS_ASSIGN_OR_RETURN(MathValue b, Eval(*n.children[1]));
    const char op = n.text[0];
    using K = MathValue::Kind;
    if (a.kind == K::kScalar && b.kind == K::kScalar) {
      return MathValue::Scalar(ApplyOp(op, a.scalar, b.scalar));
    }
    if (a.kind == K::kArray && b.kind == K::kArray) {
      return MathError("Arithmetic between two arrays of time series is not supported.");
    }
    if (b.kind == K::kScalar) {
      const double s = b.scalar;
      return Elementwise(a, [&](double x) { return ApplyOp(op, x, s); });
    }
    if (a.kind == K::kScalar) {
      const double s = a.scalar;
      return Elementwise(b, [&](double x) { return ApplyOp(op, s, x); });
    }
    // Series with series, or either with an array: combine per member.
    MathValue out;
    out.kind = (a.kind == K::kArray || b.kind == K::kArray) ? K::kArray : K::kSeries;
    if (a.kind == K::kArray) {
      for (const TimeSeries& s : a.series) out.series.push_back(Combine(op, s, b.series[0]));
    } else if (b.kind == K::kArray) {
      for (const TimeSeries& s : b.series) {
        TimeSeries c = Combine(op, a.series[0], s);
        c.id = s.id;
        c.label = s.label;
        out.series.push_back(std::move(c));
      }
    } else {
      out.series.push_back(Combine(op, a.series[0], b.series[0]));
    }
    return out;
  }

  Status Arity(const Node& n, size_t want) {
    if (n.children.size() == want) return Status::Ok();
    return MathError("The function " + n.text + " takes " + std::to_string(want) + " argument" +
                     (want == 1 ? "" : "s") + ", got " + std::to_string(n.children.size()) + ".");
  }

  Result<MathValue> EvalCall(const Node& n) {
    const std::string& f = n.text;
    if (f == "METRICS") {
      std::string filter;
      if (n.children.size() > 1) return Arity(n, 1);
      if (n.children.size() == 1) {
        if (n.children[0]->type != Node::Type::kString) {
          return MathError("The argument of METRICS must be a string in double quotes.");
        }
        filter = n.children[0]->text;
      }
      std::vector<TimeSeries> members;
      for (const std::string& id : ctx_.metric_ids) {
        if (!filter.empty() && id.find(filter) == std::string::npos) continue;
        NIMBUS_ASSIGN_OR_RETURN(MathValue v, ctx_.resolve(id));
        for (TimeSeries& s : v.series) members.push_back(std::move(s));
      }
      return MathValue::Array(std::move(members));
    }
    if (f == "FILL") {
      NIMBUS_RETURN_IF_ERROR(Arity(n, 2));
      NIMBUS_ASSIGN_OR_RETURN(MathValue v, Eval(*n.children[0]));
      const Node& how = *n.children[1];
      std::string mode;
      double value = 0;
      if (how.type == Node::Type::kKeyword) {
        mode = how.text;
      } else {
        NIMBUS_ASSIGN_OR_RETURN(MathValue fill, Eval(how));
        if (fill.kind != MathValue::Kind::kScalar) {
          return MathError("The second argument of FILL must be a number, REPEAT or LINEAR.");
        }
        value = fill.scalar;
      }
      return PerSeries(
          f, v, [&](const TimeSeries& s) { return Fill(s, mode, value, ctx_.start, ctx_.end); });
    }
    static const std::map<std::string, Reduce, std::less<>> kReducers = {
        {"SUM", Reduce::kSum},
        {"AVG", Reduce::kAvg},
        {"MIN", Reduce::kMin},
        {"MAX", Reduce::kMax},
        {"STDDEV", Reduce::kStddev}};
    if (auto it = kReducers.find(f); it != kReducers.end()) {
      NIMBUS_RETURN_IF_ERROR(Arity(n, 1));
      NIMBUS_ASSIGN_OR_RETURN(MathValue v, Eval(*n.children[0]));
      return ReduceValue(it->second, v);
    }
    static const std::map<std::string, double (*)(double), std::less<>> kElementwise = {
        {"ABS", [](double x) { return std::fabs(x); }},
        {"CEIL", [](double x) { return std::ceil(x); }},
        {"FLOOR", [](double x) { return std::floor(x); }},
        {"LOG", [](double x) { return std::log(x); }},
        {"LOG10", [](double x) { return std::log10(x); }}};
    if (auto it = kElementwise.find(f); it != kElementwise.end()) {
      NIMBUS_RETURN_IF_ERROR(Arity(n, 1));
      NIMBUS_ASSIGN_OR_RETURN(MathValue v, Eval(*n.children[0]));
      return Elementwise(v, it->second);
    }
    if (f == "RATE" || f == "DIFF" || f == "DIFF_TIME") {
      NIMBUS_RETURN_IF_ERROR(Arity(n, 1));
      NIMBUS_ASSIGN_OR_RETURN(MathValue v, Eval(*n.children[0]));
      return PerSeries(f, v, [&](const TimeSeries& s) {
        TimeSeries out = EmptyLike(s);
        for (size_t i = 1; i < s.values.size(); ++i) {
          const double dv = s.values[i] - s.values[i - 1];
          const double dt = s.timestamps[i] - s.timestamps[i - 1];
          PushFinite(out, s.timestamps[i], f == "RATE" ? dv / dt : f == "DIFF" ? dv : dt);
        }
        return out;
      });
    }
    if (f == "PERIOD") {
      NIMBUS_RETURN_IF_ERROR(Arity(n, 1));
      NIMBUS_ASSIGN_OR_RETURN(MathValue v, Eval(*n.children[0]));
      return PerSeries(f, v, [](const TimeSeries& s) {
        return MapSeries(s, [&](double) { return static_cast<double>(s.period); });
      });
    }
    return MathError("Unrecognized function " + f + " in metric math expression.");
  }

  const MathContext& ctx_;
};

}  // namespace

Result<MathExpression> MathExpression::Parse(std::string_view text) {
  if (Trim(text).empty()) return MathError("The metric math expression is empty.");
  Parser parser(text);
  NIMBUS_ASSIGN_OR_RETURN(NodePtr root, parser.ParseAll());
  MathExpression e;
  e.root_ = std::move(root);
  e.references_ = std::move(parser.references);
  e.uses_metrics_ = parser.uses_metrics;
  return e;
}

Result<MathValue> MathExpression::Evaluate(const MathContext& ctx) const {
  Evaluator evaluator(ctx);
  return evaluator.Eval(*root_);
}

}  // namespace nimbus::telemetry
