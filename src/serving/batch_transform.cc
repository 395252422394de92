#include "serving/batch_transform.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/compression.h"
#include "core/json.h"
#include "core/strings.h"
#include "ml/recordio_protobuf.h"

namespace nimbus::serving {
namespace {

constexpr std::string_view kLogPrefix = "[sagemaker logs]: ";
// A gzip input file is inflated in memory; beyond this it is refused rather than exhausting
// the instance.
constexpr size_t kMaxInflatedBytes = size_t{4} << 30;
constexpr size_t kMaxLoggedBodyBytes = 4096;

Status Invalid(std::string message) { return Status::Validation(std::move(message)); }

// 'text' (built by appending: GCC 12 warns falsely on "'" + std::string).
std::string Quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '\'';
  out.append(text);
  out += '\'';
  return out;
}

// "text/csv; charset=utf-8" -> "text/csv".
std::string MediaType(std::string_view content_type) {
  size_t semicolon = content_type.find(';');
  return ToLower(Trim(content_type.substr(0, semicolon)));
}

bool IsCsv(std::string_view content_type) { return MediaType(content_type) == "text/csv"; }
bool IsJsonLines(std::string_view content_type) {
  std::string media = MediaType(content_type);
  return media == "application/jsonlines" || media == "application/x-jsonlines" ||
         media == "application/jsonl";
}
bool IsJson(std::string_view content_type) {
  return MediaType(content_type) == "application/json" || IsJsonLines(content_type);
}

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// The non-empty lines of text, with their offsets.
std::vector<std::pair<size_t, std::string_view>> Lines(std::string_view text) {
  std::vector<std::pair<size_t, std::string_view>> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = StripCr(text.substr(start, end - start));
    if (!line.empty()) lines.emplace_back(start, line);
    start = end + 1;
  }
  return lines;
}

Result<int64_t> ParseIndex(std::string_view text, std::string_view expression) {
  std::optional<int64_t> value = ParseInt(Trim(text));
  if (!value) {
    return Invalid(Quote(expression) + ": " + Quote(Trim(text)) + " is not an array index");
  }
  return *value;
}

// The items of a bracket's text, split at commas outside quotes.
std::vector<std::string_view> BracketItems(std::string_view inside) {
  std::vector<std::string_view> items;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < inside.size(); ++i) {
    char c = inside[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ',') {
      items.push_back(Trim(inside.substr(start, i - start)));
      start = i + 1;
    }
  }
  items.push_back(Trim(inside.substr(start)));
  return items;
}

std::string Describe(const Value& v) {
  if (v.is_map()) return "an object";
  if (v.is_list()) return "an array of " + std::to_string(v.list().size()) + " elements";
  if (v.is_string()) return "a string";
  if (v.is_null()) return "null";
  return "a scalar";
}

Result<const Value*> SelectIndex(const Value& node, int64_t index, std::string_view path) {
  if (!node.is_list()) {
    return Invalid(Quote(path) + ": index " + std::to_string(index) + " applied to " +
                   Describe(node));
  }
  const int64_t size = static_cast<int64_t>(node.list().size());
  const int64_t at = index < 0 ? size + index : index;
  if (at < 0 || at >= size) {
    return Invalid(Quote(path) + ": index " + std::to_string(index) + " is out of range for " +
                   Describe(node));
  }
  return &node.list()[static_cast<size_t>(at)];
}

Result<const Value*> SelectName(const Value& node, const std::string& name, std::string_view path) {
  const Value* member = node.is_map() ? node.Find(name) : nullptr;
  if (member == nullptr) {
    return Invalid(Quote(path) + ": " + Describe(node) + " has no member '" + name + "'");
  }
  return member;
}

std::string CsvField(const Value& field) {
  std::string text;
  if (field.is_string()) {
    text = field.AsString();
  } else if (!field.is_null()) {
    text = ToJson(field);
  }
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

// A response's single output, or an array element, as text to join: strings as they are.
std::string ElementText(const Value& v) { return v.is_string() ? v.AsString() : ToJson(v); }

// A whole RecordIO frame without its trailing zero padding, which SageMaker removes from
// single-record requests; frames of a split record keep it.
size_t UnpaddedLength(std::string_view frame) {
  if (frame.size() < 8) return frame.size();
  const auto* p = reinterpret_cast<const unsigned char*>(frame.data()) + 4;
  const uint32_t lrec = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  if ((lrec >> 29) != 0) return frame.size();
  return std::min<size_t>(frame.size(), 8 + (lrec & ((1u << 29) - 1)));
}

// "1 record", "2 records".
std::string Count(int64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string RecordRange(size_t first, size_t count) {
  return count == 1
             ? "record " + std::to_string(first + 1)
             : "records " + std::to_string(first + 1) + " to " + std::to_string(first + count);
}

}  // namespace

// ---- JsonPath --------------------------------------------------------------------------

Result<JsonPath> JsonPath::Parse(std::string_view expression) {
  auto MakeSelector = [](Selector::Kind kind) {
    Selector selector;
    selector.kind = kind;
    return selector;
  };
  JsonPath path;
  path.text_ = std::string(expression);
  std::string_view s = Trim(expression);
  if (s.empty() || s == "$") return path;
  auto bad = [&](const std::string& why) {
    return Invalid(Quote(expression) +
                   " is not a JSONPath expression Nimbus "
                   "supports: " +
                   why);
  };
  if (s[0] != '$') return bad("it must start with $");
  size_t i = 1;
  while (i < s.size()) {
    char c = s[i];
    if (c == '.') {
      if (i + 1 < s.size() && s[i + 1] == '.')
        return bad("recursive descent (..) is not supported");
      ++i;
      if (i < s.size() && s[i] == '[') continue;
      if (i < s.size() && s[i] == '*') {
        path.steps_.push_back({MakeSelector(Selector::Kind::kWildcard)});
        ++i;
        continue;
      }
      size_t end = s.find_first_of(".[", i);
      if (end == std::string_view::npos) end = s.size();
      std::string_view name = s.substr(i, end - i);
      if (name.empty()) return bad("a member name is missing after '.'");
      Selector selector = MakeSelector(Selector::Kind::kName);
      selector.name = std::string(name);
      path.steps_.push_back({std::move(selector)});
      i = end;
    } else if (c == '[') {
      // The matching ']' outside quotes.
      size_t close = std::string_view::npos;
      char quote = 0;
      for (size_t j = i + 1; j < s.size(); ++j) {
        if (quote != 0) {
          if (s[j] == quote) quote = 0;
        } else if (s[j] == '\'' || s[j] == '"') {
          quote = s[j];
        } else if (s[j] == ']') {
          close = j;
          break;
        }
      }
      if (close == std::string_view::npos) return bad("a '[' is not closed");
      std::string_view inside = s.substr(i + 1, close - i - 1);
      if (!inside.empty() && (inside[0] == '?' || inside[0] == '(')) {
        return bad("filter and script expressions are not supported");
      }
      Step step;
      for (std::string_view item : BracketItems(inside)) {
        if (item.empty()) return bad("an empty selector in [" + std::string(inside) + "]");
        Selector selector;
        if (item == "*") {
          selector.kind = Selector::Kind::kWildcard;
        } else if (item.front() == '\'' || item.front() == '"') {
          if (item.size() < 2 || item.back() != item.front()) return bad("an unclosed quote");
          selector.kind = Selector::Kind::kName;
          selector.name = std::string(item.substr(1, item.size() - 2));
        } else if (item.find(':') != std::string_view::npos) {
          selector.kind = Selector::Kind::kSlice;
          std::vector<std::string> parts = Split(item, ':');
          if (parts.size() != 2) return bad("slices with a step are not supported");
          if (!Trim(parts[0]).empty()) {
            NIMBUS_ASSIGN_OR_RETURN(selector.start, ParseIndex(parts[0], expression));
          }
          if (!Trim(parts[1]).empty()) {
            NIMBUS_ASSIGN_OR_RETURN(selector.end, ParseIndex(parts[1], expression));
          }
        } else {
          selector.kind = Selector::Kind::kIndex;
          NIMBUS_ASSIGN_OR_RETURN(selector.index, ParseIndex(item, expression));
        }
        step.push_back(std::move(selector));
      }
      if (step.size() > 1 && std::any_of(step.begin(), step.end(), [](const Selector& sel) {
            return sel.kind == Selector::Kind::kWildcard;
          })) {
        return bad("'*' cannot be combined with other selectors");
      }
      path.steps_.push_back(std::move(step));
      i = close + 1;
    } else {
      return bad(std::string("unexpected '") + c + "'");
    }
  }
  return path;
}

Result<Value> JsonPath::Apply(const Value& root) const {
  std::vector<Value> nodes = {root};
  bool definite = true;
  for (const Step& step : steps_) {
    const bool single = step.size() == 1 && (step[0].kind == Selector::Kind::kName ||
                                             step[0].kind == Selector::Kind::kIndex);
    const bool names =
        step.size() > 1 && std::all_of(step.begin(), step.end(), [](const Selector& s) {
          return s.kind == Selector::Kind::kName;
        });
    std::vector<Value> next;
    for (const Value& node : nodes) {
      if (names) {
        // $['id','SageMakerOutput']: an object of those members, in SageMaker's examples.
        Value picked = Value::MakeMap();
        for (const Selector& s : step) {
          NIMBUS_ASSIGN_OR_RETURN(const Value* member, SelectName(node, s.name, text_));
          picked[s.name] = *member;
        }
        next.push_back(std::move(picked));
        continue;
      }
      for (const Selector& s : step) {
        switch (s.kind) {
          case Selector::Kind::kName: {
            NIMBUS_ASSIGN_OR_RETURN(const Value* member, SelectName(node, s.name, text_));
            next.push_back(*member);
            break;
          }
          case Selector::Kind::kIndex: {
            NIMBUS_ASSIGN_OR_RETURN(const Value* element, SelectIndex(node, s.index, text_));
            next.push_back(*element);
            break;
          }
          case Selector::Kind::kSlice: {
            if (!node.is_list()) {
              return Invalid(Quote(text_) + ": a slice applied to " + Describe(node));
            }
            const int64_t size = static_cast<int64_t>(node.list().size());
            auto clamp = [size](int64_t v) {
              if (v < 0) v += size;
              return std::clamp<int64_t>(v, 0, size);
            };
            int64_t from = s.start ? clamp(*s.start) : 0;
            int64_t to = s.end ? clamp(*s.end) : size;
            for (int64_t k = from; k < to; ++k) next.push_back(node.list()[static_cast<size_t>(k)]);
            break;
          }
          case Selector::Kind::kWildcard:
            if (node.is_list()) {
              for (const Value& e : node.list()) next.push_back(e);
            } else if (node.is_map()) {
              for (const auto& [name, e] : node.map()) next.push_back(e);
            } else {
              return Invalid(Quote(text_) + ": '*' applied to " + Describe(node));
            }
            break;
        }
      }
    }
    if (!single && !names) definite = false;
    nodes = std::move(next);
  }
  if (definite) return std::move(nodes.front());
  return Value(
      Value::List(std::make_move_iterator(nodes.begin()), std::make_move_iterator(nodes.end())));
}

// ---- CSV -------------------------------------------------------------------------------

Value ParseCsvRow(std::string_view line) {
  line = StripCr(line);
  Value row = Value::MakeList();
  std::string field;
  bool quoted = false;      // inside a quoted part
  bool was_quoted = false;  // the field started with a quote
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == ',') {
      row.Append(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '"' && field.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else {
      field += c;
    }
  }
  row.Append(std::move(field));
  return row;
}

std::string FormatCsvRow(const Value& row) {
  if (!row.is_list()) return CsvField(row);
  std::string out;
  for (size_t i = 0; i < row.list().size(); ++i) {
    if (i > 0) out += ',';
    out += CsvField(row.list()[i]);
  }
  return out;
}

// ---- Settings --------------------------------------------------------------------------

Result<TransformSettings> TransformSettingsFromRequest(const Value& request,
                                                       int default_concurrency) {
  static const Value kNull;
  auto member = [](const Value& v, std::string_view key) -> const Value& {
    const Value* m = v.is_map() ? v.Find(key) : nullptr;
    return m ? *m : kNull;
  };
  TransformSettings settings;
  const Value& input = member(request, "TransformInput");
  settings.content_type = input.GetString("ContentType");
  std::string compression = input.GetString("CompressionType", "None");
  if (compression != "None" && compression != "Gzip") {
    return Invalid("TransformInput.CompressionType " + compression + " is not None or Gzip");
  }
  settings.gzip = compression == "Gzip";
  std::string split = input.GetString("SplitType", "None");
  if (split == "None") {
    settings.split = SplitType::kNone;
  } else if (split == "Line") {
    settings.split = SplitType::kLine;
  } else if (split == "RecordIO") {
    settings.split = SplitType::kRecordIO;
  } else if (split == "TFRecord") {
    return Invalid(
        "TransformInput.SplitType TFRecord is not supported by Nimbus; use None, Line or RecordIO");
  } else {
    return Invalid("TransformInput.SplitType " + split +
                   " is not None, Line, RecordIO or TFRecord");
  }

  const Value& output = member(request, "TransformOutput");
  settings.accept = output.GetString("Accept");
  std::string assemble = output.GetString("AssembleWith", "None");
  if (assemble != "None" && assemble != "Line") {
    return Invalid("TransformOutput.AssembleWith " + assemble + " is not None or Line");
  }
  settings.assemble = assemble == "Line" ? AssembleWith::kLine : AssembleWith::kNone;

  std::string strategy = request.GetString("BatchStrategy", "MultiRecord");
  if (strategy != "MultiRecord" && strategy != "SingleRecord") {
    return Invalid("BatchStrategy " + strategy + " is not MultiRecord or SingleRecord");
  }
  settings.batch =
      strategy == "SingleRecord" ? BatchStrategy::kSingleRecord : BatchStrategy::kMultiRecord;
  const int64_t payload_mb = request.GetInt("MaxPayloadInMB", 6);
  if (payload_mb < 0 || payload_mb > 100) {
    return Invalid("MaxPayloadInMB must be between 0 and 100, not " + std::to_string(payload_mb));
  }
  settings.max_payload_bytes = payload_mb << 20;
  const int64_t concurrent = request.GetInt("MaxConcurrentTransforms", 0);
  settings.max_concurrent =
      static_cast<int>(std::max<int64_t>(1, concurrent > 0 ? concurrent : default_concurrency));
  settings.max_retries = static_cast<int>(std::clamp<int64_t>(
      member(request, "ModelClientConfig").GetInt("InvocationsMaxRetries", 3), 0, 3));

  const Value& processing = member(request, "DataProcessing");
  settings.input_filter = processing.GetString("InputFilter", "$");
  settings.output_filter = processing.GetString("OutputFilter", "$");
  std::string join = processing.GetString("JoinSource", "None");
  if (join != "None" && join != "Input") {
    return Invalid("DataProcessing.JoinSource " + join + " is not None or Input");
  }
  settings.join = join == "Input" ? JoinSource::kInput : JoinSource::kNone;
  for (const auto& [what, expression] :
       {std::pair<const char*, std::string>{"InputFilter", settings.input_filter},
        {"OutputFilter", settings.output_filter}}) {
    auto parsed = JsonPath::Parse(expression);
    if (!parsed.ok()) {
      return Invalid(std::string("DataProcessing.") + what + " " + parsed.status().message());
    }
    if (!parsed->IsRoot() || settings.join == JoinSource::kInput) {
      if (settings.split == SplitType::kRecordIO) {
        return Invalid(
            "DataProcessing applies to CSV and JSON data only, not to SplitType RecordIO");
      }
      if (!IsCsv(settings.content_type) && !IsJson(settings.content_type)) {
        return Invalid(
            "DataProcessing applies to CSV and JSON data only: set TransformInput.ContentType to "
            "text/csv, application/json or application/jsonlines (it is '" +
            settings.content_type + "')");
      }
    }
  }
  return settings;
}

// ---- Records, batches, responses -------------------------------------------------------

Result<std::vector<RecordSpan>> SplitRecords(std::string_view data, SplitType split) {
  std::vector<RecordSpan> records;
  switch (split) {
    case SplitType::kNone:
      if (!data.empty()) records.push_back({0, data.size()});
      break;
    case SplitType::kLine:
      for (const auto& [offset, line] : Lines(data)) records.push_back({offset, line.size()});
      break;
    case SplitType::kRecordIO: {
      ml::recordio::Reader reader(data);
      std::string scratch;
      std::string_view payload;
      size_t start = reader.offset();
      while (true) {
        Result<bool> more = reader.Next(&payload, &scratch);
        if (!more.ok()) return Invalid("not RecordIO data: " + more.status().message());
        if (!*more) break;
        records.push_back({start, reader.offset() - start});
        start = reader.offset();
      }
      break;
    }
  }
  return records;
}

Result<std::vector<BatchSpan>> MakeBatches(const std::vector<size_t>& sizes, BatchStrategy strategy,
                                           int64_t max_payload_bytes, size_t separator) {
  std::vector<BatchSpan> batches;
  const uint64_t limit =
      max_payload_bytes > 0 ? static_cast<uint64_t>(max_payload_bytes) : UINT64_MAX;
  uint64_t used = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const uint64_t cost = sizes[i] + separator;
    if (cost > limit) {
      return Invalid("Too much data for max payload size: record " + std::to_string(i + 1) +
                     " is " + std::to_string(cost) + " bytes, more than MaxPayloadInMB (" +
                     std::to_string(limit) + " bytes)");
    }
    if (batches.empty() || strategy == BatchStrategy::kSingleRecord || used + cost > limit) {
      batches.push_back({i, 0});
      used = 0;
    }
    ++batches.back().count;
    used += cost;
  }
  return batches;
}

Result<std::vector<std::string>> SplitResponse(std::string_view body, std::string_view content_type,
                                               size_t expected) {
  const bool line_based = IsCsv(content_type) || IsJsonLines(content_type);
  std::vector<std::pair<size_t, std::string_view>> lines = Lines(body);
  if (expected == 1 && (!line_based || lines.size() <= 1)) {
    std::string_view whole = body;
    while (!whole.empty() && (whole.back() == '\n' || whole.back() == '\r')) whole.remove_suffix(1);
    return std::vector<std::string>{std::string(whole)};
  }
  if (lines.size() == expected) {
    std::vector<std::string> out;
    for (const auto& [offset, line] : lines) out.emplace_back(line);
    return out;
  }
  // One JSON document for the whole request: an array, or an object whose one array member
  // holds the outputs ({"predictions": [...]} of SageMaker's algorithms).
  if (!line_based) {
    if (auto parsed = ParseJson(body); parsed.ok()) {
      const Value* outputs = nullptr;
      if (parsed->is_list()) {
        outputs = &*parsed;
      } else if (parsed->is_map()) {
        for (const auto& [name, v] : parsed->map()) {
          if (v.is_list() && v.list().size() == expected) {
            if (outputs != nullptr) {
              outputs = nullptr;
              break;
            }
            outputs = &v;
          }
        }
      }
      if (outputs != nullptr && outputs->list().size() == expected) {
        std::vector<std::string> out;
        for (const Value& e : outputs->list()) out.push_back(ElementText(e));
        return out;
      }
    }
  }
  return Invalid("mismatched line count between the input and the output: the request held " +
                 std::to_string(expected) + " records, the response has " +
                 std::to_string(lines.size()) + " lines");
}

// ---- BatchTransformer -----------------------------------------------------------------

BatchTransformer::BatchTransformer(InferenceHandler& handler, TransformSettings settings,
                                   TransformLog log)
    : handler_(handler), settings_(std::move(settings)), log_(std::move(log)) {
  if (auto parsed = JsonPath::Parse(settings_.input_filter); parsed.ok()) input_filter_ = *parsed;
  if (auto parsed = JsonPath::Parse(settings_.output_filter); parsed.ok()) {
    output_filter_ = *parsed;
  }
  csv_ = IsCsv(settings_.content_type);
  per_unit_ = settings_.join == JoinSource::kInput || !output_filter_.IsRoot();
  processing_ = per_unit_ || !input_filter_.IsRoot();
}

void BatchTransformer::Log(const std::string& line) { Log(std::vector<std::string>{line}); }

void BatchTransformer::Log(const std::vector<std::string>& lines) {
  std::lock_guard<std::mutex> lock(log_mu_);
  if (!log_) return;
  for (const std::string& line : lines) log_(line);
}

Result<std::string> BatchTransformer::Filter(std::string_view unit) const {
  if (input_filter_.IsRoot()) return std::string(unit);
  if (csv_) {
    NIMBUS_ASSIGN_OR_RETURN(Value selected, input_filter_.Apply(ParseCsvRow(unit)));
    return FormatCsvRow(selected);
  }
  auto parsed = ParseJson(unit);
  if (!parsed.ok()) return Invalid("the record is not valid JSON");
  NIMBUS_ASSIGN_OR_RETURN(Value selected, input_filter_.Apply(*parsed));
  return ToJson(selected);
}

Result<std::string> BatchTransformer::Process(std::string_view input, std::string_view output,
                                              std::string_view output_type) const {
  Value record;
  bool as_csv = false;
  auto output_value = [&]() -> Value {
    if (auto parsed = ParseJson(output); parsed.ok()) return *parsed;
    return Value(std::string(output));
  };
  if (settings_.join == JoinSource::kInput) {
    if (csv_) {
      record = ParseCsvRow(input);
      if (IsCsv(output_type)) {
        Value fields = ParseCsvRow(output);
        for (Value& field : fields.list()) record.Append(std::move(field));
      } else {
        record.Append(IsJson(output_type) ? output_value() : Value(std::string(output)));
      }
      as_csv = true;
    } else {
      auto parsed = ParseJson(input);
      if (!parsed.ok()) return Invalid("the input record is not valid JSON");
      if (parsed->is_map()) {
        record = std::move(*parsed);
        record["SageMakerOutput"] = output_value();
      } else {
        record = Value::Object(
            {{"SageMakerInput", std::move(*parsed)}, {"SageMakerOutput", output_value()}});
      }
    }
  } else if (IsCsv(output_type)) {
    record = ParseCsvRow(output);
    as_csv = true;
  } else {
    record = output_value();
  }
  if (!output_filter_.IsRoot()) {
    auto selected = output_filter_.Apply(record);
    if (!selected.ok()) return Invalid("OutputFilter " + selected.status().message());
    record = std::move(*selected);
  }
  return as_csv ? FormatCsvRow(record) : ToJson(record);
}

Result<InvocationResult> BatchTransformer::Send(const std::string& name, const Request& request) {
  Invocation invocation;
  invocation.content_type = settings_.content_type;
  invocation.accept = settings_.accept;
  invocation.body = request.body;
  Status last;
  for (int attempt = 0; attempt <= settings_.max_retries; ++attempt) {
    Result<InvocationResult> result = handler_.Invoke(invocation);
    if (result.ok() && (result->status < 500 || attempt == settings_.max_retries)) return result;
    std::string why = result.ok()
                          ? "the model answered " + std::to_string(result->status)
                          : "Unable to get response from algorithm: " + result.status().message();
    if (!result.ok()) last = result.status();
    if (attempt < settings_.max_retries) {
      Log(std::string(kLogPrefix) + name + ": " + why + "; retrying (" +
          std::to_string(attempt + 1) + " of " + std::to_string(settings_.max_retries) + ")");
    }
  }
  Log(std::string(kLogPrefix) + name +
      ": Unable to get response from algorithm: " + last.message());
  return Status::Validation("AlgorithmError: See job logs for more information");
}

Result<std::string> BatchTransformer::Output(const std::string& name, const Request& request,
                                             const std::vector<Unit>& units,
                                             const InvocationResult& response) {
  const std::string& type =
      response.content_type.empty() ? settings_.accept : response.content_type;
  std::string out;
  if (!per_unit_) {
    out = response.body;
    if (settings_.assemble == AssembleWith::kLine && (out.empty() || out.back() != '\n')) {
      out += '\n';
    }
    return out;
  }
  auto outputs = SplitResponse(response.body, type, request.unit_count);
  if (!outputs.ok()) {
    std::string message = name + ": " + outputs.status().message() + " (" +
                          RecordRange(request.first_record, request.record_count) + ")";
    Log(std::string(kLogPrefix) + message);
    return Invalid("ClientError: " + message);
  }
  for (size_t k = 0; k < request.unit_count; ++k) {
    const Unit& unit = units[request.first_unit + k];
    auto processed = Process(unit.input, (*outputs)[k], type);
    if (!processed.ok()) {
      std::string message = name + ": " + processed.status().message() + " (the unit at byte " +
                            std::to_string(unit.offset) + ")";
      Log(std::string(kLogPrefix) + message);
      return Invalid("ClientError: " + message);
    }
    out += *processed;
    if (settings_.assemble == AssembleWith::kLine) out += '\n';
  }
  return out;
}

Result<std::string> BatchTransformer::TransformFile(const std::string& name,
                                                    std::string_view data) {
  std::string inflated;
  if (settings_.gzip) {
    auto got = Gunzip(data, kMaxInflatedBytes);
    if (!got.ok()) {
      Log(std::string(kLogPrefix) + name + ": " + got.status().message());
      return Invalid("ClientError: " + name +
                     " cannot be decompressed (CompressionType Gzip): " + got.status().message());
    }
    inflated = std::move(*got);
    data = inflated;
  }
  auto spans = SplitRecords(data, settings_.split);
  if (!spans.ok()) {
    Log(std::string(kLogPrefix) + name + ": " + spans.status().message());
    return Invalid("ClientError: " + name + " is " + spans.status().message());
  }
  // Units: what filters, joins and response splitting work on.
  const bool expand_lines = processing_ && settings_.split == SplitType::kNone &&
                            (csv_ || IsJsonLines(settings_.content_type));
  std::vector<Unit> units;
  std::vector<std::pair<size_t, size_t>> record_units;  // first unit, count
  for (const RecordSpan& span : *spans) {
    std::string_view record = data.substr(span.offset, span.length);
    size_t first = units.size();
    if (expand_lines) {
      for (const auto& [offset, line] : Lines(record))
        units.push_back({span.offset + offset, line});
    } else {
      units.push_back({span.offset, record});
    }
    record_units.emplace_back(first, units.size() - first);
  }
  std::vector<std::string> filtered(units.size());
  if (processing_) {
    for (size_t u = 0; u < units.size(); ++u) {
      auto f = Filter(units[u].input);
      if (!f.ok()) {
        std::string message = name + ": InputFilter " + f.status().message() +
                              " (the record at byte " + std::to_string(units[u].offset) + ")";
        Log(std::string(kLogPrefix) + message);
        return Invalid("ClientError: " + message);
      }
      filtered[u] = std::move(*f);
    }
  }
  // What each record adds to a request.
  const bool line_separated = settings_.split == SplitType::kLine || expand_lines;
  std::vector<size_t> sizes;
  for (size_t r = 0; r < spans->size(); ++r) {
    size_t size = 0;
    if (processing_) {
      for (size_t k = 0; k < record_units[r].second; ++k) {
        size += filtered[record_units[r].first + k].size() + (line_separated ? 1 : 0);
      }
    } else {
      size = (*spans)[r].length + (line_separated ? 1 : 0);
    }
    sizes.push_back(size);
  }
  auto batches = MakeBatches(sizes, settings_.batch, settings_.max_payload_bytes, 0);
  if (!batches.ok()) {
    size_t r = 0;
    while (r + 1 < sizes.size() && static_cast<int64_t>(sizes[r]) <= settings_.max_payload_bytes) {
      ++r;
    }
    Log(std::string(kLogPrefix) + name + ": Too much data for max payload size");
    return Invalid("ClientError: Too much data for max payload size: " + name + " record " +
                   std::to_string(r + 1) + " (byte offset " + std::to_string((*spans)[r].offset) +
                   ") is " + std::to_string(sizes[r]) + " bytes, more than MaxPayloadInMB=" +
                   std::to_string(settings_.max_payload_bytes >> 20) + " allows");
  }
  std::vector<Request> requests;
  for (const BatchSpan& batch : *batches) {
    Request request;
    request.first_record = batch.first;
    request.record_count = batch.count;
    request.first_unit = record_units[batch.first].first;
    for (size_t r = batch.first; r < batch.first + batch.count; ++r) {
      request.unit_count += record_units[r].second;
      if (!processing_) {
        std::string_view record = data.substr((*spans)[r].offset, (*spans)[r].length);
        if (settings_.split == SplitType::kRecordIO &&
            settings_.batch == BatchStrategy::kSingleRecord) {
          record = record.substr(0, UnpaddedLength(record));
        }
        request.body.append(record);
        if (line_separated) request.body += '\n';
      }
    }
    if (processing_) {
      for (size_t u = request.first_unit; u < request.first_unit + request.unit_count; ++u) {
        request.body += filtered[u];
        if (line_separated) request.body += '\n';
      }
    }
    requests.push_back(std::move(request));
  }

  // Up to MaxConcurrentTransforms requests in flight; outputs kept in request order.
  std::vector<std::string> chunks(requests.size());
  std::vector<Status> errors(requests.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&]() {
    while (!failed.load()) {
      const size_t i = next.fetch_add(1);
      if (i >= requests.size()) return;
      const Request& request = requests[i];
      Result<InvocationResult> response = Send(name, request);
      if (!response.ok()) {
        errors[i] = response.status();
        failed = true;
        return;
      }
      if (response->status >= 400) {
        const std::string kind = response->status < 500 ? "ClientError" : "AlgorithmError";
        // SageMaker's data-log block for a failed request, kept together in the log.
        std::string prefix = std::string(kLogPrefix) + name + ": ";
        std::vector<std::string> block = {prefix + kind + ": " + std::to_string(response->status),
                                          prefix, prefix + "Message:"};
        std::string_view body = response->body;
        if (body.size() > kMaxLoggedBodyBytes) body = body.substr(0, kMaxLoggedBodyBytes);
        for (const std::string& line : Split(body, '\n')) {
          block.push_back(prefix + std::string(StripCr(line)));
        }
        const size_t first_byte = (*spans)[request.first_record].offset;
        const RecordSpan& last = (*spans)[request.first_record + request.record_count - 1];
        block.push_back(prefix + "The failed request held " +
                        RecordRange(request.first_record, request.record_count) + " (bytes " +
                        std::to_string(first_byte) + " to " +
                        std::to_string(last.offset + last.length) + " of the file)");
        Log(block);
        errors[i] = Invalid(kind + ": See job logs for more information");
        failed = true;
        return;
      }
      Result<std::string> output = Output(name, request, units, *response);
      if (!output.ok()) {
        errors[i] = output.status();
        failed = true;
        return;
      }
      chunks[i] = std::move(*output);
    }
  };
  const size_t threads =
      std::min(requests.size(), static_cast<size_t>(std::max(1, settings_.max_concurrent)));
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(work);
    for (std::thread& thread : pool) thread.join();
  }
  for (const Status& error : errors) {
    if (!error.ok()) return error;
  }
  records_ += static_cast<int64_t>(spans->size());
  requests_ += static_cast<int64_t>(requests.size());
  std::string assembled;
  for (const std::string& chunk : chunks) assembled += chunk;
  return assembled;
}

// ---- The whole job --------------------------------------------------------------------

Status RunBatchTransform(InferenceHandler& handler, const TransformSettings& settings,
                         const std::string& input_dir, const std::vector<TransformInputFile>& files,
                         const std::string& output_dir, const TransformLog& log) {
  TransformLog emit = [&](const std::string& line) {
    if (log) log(line);
  };
  emit(std::string(kLogPrefix) +
       "MaxConcurrentTransforms=" + std::to_string(settings.max_concurrent) +
       ", MaxPayloadInMB=" + std::to_string(settings.max_payload_bytes >> 20) + ", BatchStrategy=" +
       (settings.batch == BatchStrategy::kMultiRecord ? "MULTI_RECORD" : "SINGLE_RECORD"));
  BatchTransformer transformer(handler, settings, log);
  for (const TransformInputFile& file : files) {
    std::string path = input_dir + "/" + file.path;
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::Internal("cannot read the input file " + path);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return Status::Internal("cannot read the input file " + path);
    const int64_t records_before = transformer.records();
    const int64_t requests_before = transformer.requests();
    NIMBUS_ASSIGN_OR_RETURN(std::string output, transformer.TransformFile(file.name, data));

    // Written beside the output directory, then renamed into it: whatever the output
    // directory holds is complete, even after a kill (it is uploaded as it is).
    std::string target = output_dir + "/" + file.path + ".out";
    std::string temp = output_dir + ".partial/" + file.path + ".out";
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(target).parent_path(), ec);
    std::filesystem::create_directories(std::filesystem::path(temp).parent_path(), ec);
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      out.write(output.data(), static_cast<std::streamsize>(output.size()));
      out.close();
      if (!out) return Status::Internal("cannot write " + temp + ": " + std::strerror(errno));
    }
    std::filesystem::rename(temp, target, ec);
    if (ec) return Status::Internal("cannot write " + target + ": " + ec.message());
    emit(std::string(kLogPrefix) + file.name + ": " +
         Count(transformer.records() - records_before, "record") + " in " +
         Count(transformer.requests() - requests_before, "request") + ", " +
         Count(static_cast<int64_t>(output.size()), "byte") + " written to " + file.path + ".out");
  }
  emit(std::string(kLogPrefix) + "Transformed " +
       Count(static_cast<int64_t>(files.size()), "file") + ": " +
       Count(transformer.records(), "record") + " in " + Count(transformer.requests(), "request"));
  return Status::Ok();
}

}  // namespace nimbus::serving
