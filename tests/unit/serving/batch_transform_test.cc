// Batch transform's logic (serving/batch_transform.h) as tables: JSONPath filters, CSV rows,
// record splitting, batching, response splitting, settings; then the transformer and the
// whole-job runner over a scripted InferenceHandler that computes real answers from its
// requests, so every output checked is derived from what the model was actually sent.
#include "serving/batch_transform.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/json.h"
#include "core/strings.h"
#include "ml/recordio_protobuf.h"

namespace nimbus::serving {
namespace {

namespace fs = std::filesystem;

Value Json(std::string_view text) {
  auto parsed = ParseJson(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : Value();
}

// ---- JsonPath ---------------------------------------------------------------------------

struct PathCase {
  const char* path;
  const char* input;
  const char* expected;
};

TEST(JsonPathTest, SelectsWhatSageMakersOperatorsSelect) {
  const PathCase cases[] = {
      {"$", R"([1,2,3])", R"([1,2,3])"},
      {"", R"({"a":1})", R"({"a":1})"},
      {"$[1:]", R"(["id",2,3])", R"([2,3])"},
      {"$[:2]", R"([1,2,3])", R"([1,2])"},
      {"$[1:2]", R"([1,2,3])", R"([2])"},
      {"$[-2:]", R"([1,2,3])", R"([2,3])"},
      {"$[5:]", R"([1,2,3])", R"([])"},
      {"$[0]", R"([1,2,3])", R"(1)"},
      {"$[-1]", R"([1,2,3])", R"(3)"},
      {"$[0,2]", R"([1,2,3])", R"([1,3])"},
      {"$[0,-1]", R"(["id",7,8,0.5])", R"(["id",0.5])"},
      {"$[0,3:]", R"([0,1,2,3,4,5])", R"([0,3,4,5])"},
      {"$[*]", R"([1,2])", R"([1,2])"},
      {"$.features", R"({"id":1,"features":[1,2]})", R"([1,2])"},
      {"$.features[1:]", R"({"features":[1,2,3]})", R"([2,3])"},
      {"$.a.b", R"({"a":{"b":"x"}})", R"("x")"},
      {"$['a']", R"({"a":5,"b":6})", R"(5)"},
      {"$[\"a\"]", R"({"a":5,"b":6})", R"(5)"},
      {"$['id','SageMakerOutput']", R"({"id":1,"x":2,"SageMakerOutput":{"score":0.5}})",
       R"({"SageMakerOutput":{"score":0.5},"id":1})"},
      {"$.a.['b','c']", R"({"a":{"b":1,"c":2,"d":3}})", R"({"b":1,"c":2})"},
      {"$.*", R"({"a":1,"b":2})", R"([1,2])"},
      {"$[*].v", R"([{"v":1},{"v":2}])", R"([1,2])"},
      {" $[ 0 , 2 ] ", R"([1,2,3])", R"([1,3])"},
  };
  for (const PathCase& c : cases) {
    SCOPED_TRACE(c.path);
    auto path = JsonPath::Parse(c.path);
    ASSERT_TRUE(path.ok()) << path.status().message();
    auto selected = path->Apply(Json(c.input));
    ASSERT_TRUE(selected.ok()) << selected.status().message();
    EXPECT_EQ(*selected, Json(c.expected)) << ToJson(*selected);
  }
}

TEST(JsonPathTest, RootIsNothingToApply) {
  EXPECT_TRUE(JsonPath::Parse("$")->IsRoot());
  EXPECT_TRUE(JsonPath::Parse("")->IsRoot());
  EXPECT_FALSE(JsonPath::Parse("$[1:]")->IsRoot());
}

TEST(JsonPathTest, RefusesWhatItDoesNotSupport) {
  for (const char* path : {"features", "$..a", "$[?(@.a > 1)]", "$[1:2:3]", "$[", "$['a", "$.",
                           "$[x]", "$[]", "$[*,1]", "$a"}) {
    SCOPED_TRACE(path);
    auto parsed = JsonPath::Parse(path);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().kind(), ErrorKind::kValidation);
    EXPECT_NE(parsed.status().message().find(path), std::string::npos) << parsed.status().message();
  }
}

TEST(JsonPathTest, FailsOnIndexesAndMembersThatAreNotThere) {
  const PathCase cases[] = {
      {"$[3]", R"([1,2,3])", "out of range for an array of 3 elements"},
      {"$[-4]", R"([1,2,3])", "out of range"},
      {"$[0,7]", R"([1,2,3])", "index 7"},
      {"$.missing", R"({"a":1})", "no member 'missing'"},
      {"$['a','zz']", R"({"a":1})", "no member 'zz'"},
      {"$.a", R"([1])", "no member 'a'"},
      {"$[0]", R"({"a":1})", "applied to an object"},
      {"$[1:]", R"("text")", "slice applied to a string"},
  };
  for (const PathCase& c : cases) {
    SCOPED_TRACE(c.path);
    auto selected = JsonPath::Parse(c.path)->Apply(Json(c.input));
    ASSERT_FALSE(selected.ok());
    EXPECT_NE(selected.status().message().find(c.expected), std::string::npos)
        << selected.status().message();
  }
}

// ---- CSV --------------------------------------------------------------------------------

TEST(CsvRowTest, ParsesAndFormatsFieldsAsTheyAre) {
  struct Case {
    const char* line;
    std::vector<std::string> fields;
    const char* formatted;
  };
  const Case cases[] = {
      {"1,2.50,abc", {"1", "2.50", "abc"}, "1,2.50,abc"},
      {"1,2\r", {"1", "2"}, "1,2"},
      {"\"a,b\",c", {"a,b", "c"}, "\"a,b\",c"},
      {"\"say \"\"hi\"\"\",x", {"say \"hi\"", "x"}, "\"say \"\"hi\"\"\",x"},
      {",,", {"", "", ""}, ",,"},
      {"", {""}, ""},
      {"1e-3,-0", {"1e-3", "-0"}, "1e-3,-0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    Value row = ParseCsvRow(c.line);
    ASSERT_TRUE(row.is_list());
    std::vector<std::string> fields;
    for (const Value& f : row.list()) fields.push_back(f.AsString());
    EXPECT_EQ(fields, c.fields);
    EXPECT_EQ(FormatCsvRow(row), c.formatted);
  }
}

TEST(CsvRowTest, FormatsNonStringFieldsAsJson) {
  EXPECT_EQ(FormatCsvRow(Json(R"(["a",1,0.5,null,true])")), "a,1,0.5,,true");
  EXPECT_EQ(FormatCsvRow(Json(R"(["id",{"score":1}])")), "id,\"{\"\"score\"\":1}\"");
  EXPECT_EQ(FormatCsvRow(Value("x,y")), "\"x,y\"");
  EXPECT_EQ(FormatCsvRow(Value(int64_t{7})), "7");
}

// ---- Records and batches ----------------------------------------------------------------

std::vector<std::string> Texts(std::string_view data, const std::vector<RecordSpan>& spans) {
  std::vector<std::string> out;
  for (const RecordSpan& s : spans) out.emplace_back(data.substr(s.offset, s.length));
  return out;
}

TEST(SplitRecordsTest, SplitsLinesAndWholeFiles) {
  struct Case {
    SplitType split;
    const char* data;
    std::vector<std::string> records;
  };
  const Case cases[] = {
      {SplitType::kLine, "a,1\nb,2\n", {"a,1", "b,2"}},
      {SplitType::kLine, "a,1\r\nb,2", {"a,1", "b,2"}},
      {SplitType::kLine, "\n\na\n\r\n\nb\n\n", {"a", "b"}},
      {SplitType::kLine, "", {}},
      {SplitType::kNone, "a\nb\n", {"a\nb\n"}},
      {SplitType::kNone, "", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.data);
    auto spans = SplitRecords(c.data, c.split);
    ASSERT_TRUE(spans.ok());
    EXPECT_EQ(Texts(c.data, *spans), c.records);
  }
  auto spans = SplitRecords("x\ny\n", SplitType::kLine);
  EXPECT_EQ((*spans)[1].offset, 2u);
}

TEST(SplitRecordsTest, SplitsRecordIoFramesWithTheirPadding) {
  std::string data;
  ml::recordio::AppendRecord("abcde", &data);  // 8 + 5 + 3 padding
  ml::recordio::AppendRecord("wxyz", &data);   // 8 + 4
  auto spans = SplitRecords(data, SplitType::kRecordIO);
  ASSERT_TRUE(spans.ok()) << spans.status().message();
  ASSERT_EQ(spans->size(), 2u);
  EXPECT_EQ((*spans)[0].offset, 0u);
  EXPECT_EQ((*spans)[0].length, 16u);
  EXPECT_EQ((*spans)[1].offset, 16u);
  EXPECT_EQ((*spans)[1].length, 12u);

  auto bad = SplitRecords("not recordio at all", SplitType::kRecordIO);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("magic"), std::string::npos) << bad.status().message();
}

TEST(MakeBatchesTest, PacksRecordsUpToThePayloadLimit) {
  struct Case {
    std::vector<size_t> sizes;
    BatchStrategy strategy;
    int64_t limit;
    size_t separator;
    std::vector<std::pair<size_t, size_t>> batches;
  };
  const Case cases[] = {
      {{3, 3, 3, 3}, BatchStrategy::kMultiRecord, 8, 1, {{0, 2}, {2, 2}}},
      {{3, 3, 3, 3}, BatchStrategy::kMultiRecord, 7, 1, {{0, 1}, {1, 1}, {2, 1}, {3, 1}}},
      {{3, 3, 3}, BatchStrategy::kMultiRecord, 0, 1, {{0, 3}}},
      {{3, 3, 3}, BatchStrategy::kSingleRecord, 0, 1, {{0, 1}, {1, 1}, {2, 1}}},
      {{5, 1, 1, 5}, BatchStrategy::kMultiRecord, 6, 0, {{0, 2}, {2, 2}}},
      {{5, 2, 5}, BatchStrategy::kMultiRecord, 6, 0, {{0, 1}, {1, 1}, {2, 1}}},
      {{}, BatchStrategy::kMultiRecord, 6, 0, {}},
  };
  for (const Case& c : cases) {
    auto batches = MakeBatches(c.sizes, c.strategy, c.limit, c.separator);
    ASSERT_TRUE(batches.ok());
    std::vector<std::pair<size_t, size_t>> got;
    for (const BatchSpan& b : *batches) got.emplace_back(b.first, b.count);
    EXPECT_EQ(got, c.batches);
  }
  auto too_big = MakeBatches({2, 10, 2}, BatchStrategy::kMultiRecord, 8, 0);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("Too much data for max payload size: record 2"),
            std::string::npos)
      << too_big.status().message();
}

TEST(SplitResponseTest, FindsOneOutputPerRecord) {
  struct Case {
    const char* body;
    const char* type;
    size_t expected;
    std::vector<std::string> outputs;
  };
  const Case cases[] = {
      {"0.1\n0.2\n0.3\n", "text/csv", 3, {"0.1", "0.2", "0.3"}},
      {"0.1\r\n0.2", "text/csv; charset=utf-8", 2, {"0.1", "0.2"}},
      {"0.7\n", "text/csv", 1, {"0.7"}},
      {"{\"a\": 1,\n \"b\": 2}\n", "application/json", 1, {"{\"a\": 1,\n \"b\": 2}"}},
      {R"([0.1, "x", {"s": 1}])", "application/json", 3, {"0.1", "x", R"({"s":1})"}},
      {R"({"predictions": [{"score": 0.5}, {"score": 0.25}]})",
       "application/json",
       2,
       {R"({"score":0.5})", R"({"score":0.25})"}},
      {"{\"a\":1}\n{\"a\":2}\n", "application/jsonlines", 2, {"{\"a\":1}", "{\"a\":2}"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    auto outputs = SplitResponse(c.body, c.type, c.expected);
    ASSERT_TRUE(outputs.ok()) << outputs.status().message();
    EXPECT_EQ(*outputs, c.outputs);
  }
  for (const auto& [body, type, expected] :
       std::vector<std::tuple<const char*, const char*, size_t>>{
           {"0.1\n0.2\n", "text/csv", 3},
           {"0.1,0.2,0.3", "text/csv", 3},
           {"0.1\n0.2\n", "text/csv", 1},
           {R"({"predictions": [1, 2]})", "application/json", 3}}) {
    SCOPED_TRACE(body);
    auto outputs = SplitResponse(body, type, expected);
    ASSERT_FALSE(outputs.ok());
    EXPECT_NE(outputs.status().message().find("mismatched line count"), std::string::npos);
  }
}

// ---- Settings ---------------------------------------------------------------------------

TEST(TransformSettingsTest, ReadsTheRequestWithSageMakersDefaults) {
  auto defaults = TransformSettingsFromRequest(
      Json(R"({"TransformInput": {"DataSource": {}}, "TransformOutput": {}})"), 4);
  ASSERT_TRUE(defaults.ok()) << defaults.status().message();
  EXPECT_EQ(defaults->split, SplitType::kNone);
  EXPECT_EQ(defaults->batch, BatchStrategy::kMultiRecord);
  EXPECT_EQ(defaults->max_payload_bytes, 6 << 20);
  EXPECT_EQ(defaults->max_concurrent, 4);
  EXPECT_EQ(defaults->max_retries, 3);
  EXPECT_EQ(defaults->assemble, AssembleWith::kNone);
  EXPECT_EQ(defaults->join, JoinSource::kNone);
  EXPECT_FALSE(defaults->gzip);

  auto full = TransformSettingsFromRequest(Json(R"({
      "TransformInput": {"ContentType": "text/csv", "SplitType": "Line", "CompressionType": "Gzip"},
      "TransformOutput": {"Accept": "text/csv", "AssembleWith": "Line"},
      "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 0, "MaxConcurrentTransforms": 2,
      "ModelClientConfig": {"InvocationsMaxRetries": 0},
      "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
  })"),
                                           4);
  ASSERT_TRUE(full.ok()) << full.status().message();
  EXPECT_EQ(full->split, SplitType::kLine);
  EXPECT_TRUE(full->gzip);
  EXPECT_EQ(full->batch, BatchStrategy::kSingleRecord);
  EXPECT_EQ(full->max_payload_bytes, 0);
  EXPECT_EQ(full->max_concurrent, 2);
  EXPECT_EQ(full->max_retries, 0);
  EXPECT_EQ(full->assemble, AssembleWith::kLine);
  EXPECT_EQ(full->join, JoinSource::kInput);
  EXPECT_EQ(full->input_filter, "$[1:]");
  EXPECT_EQ(full->output_filter, "$[0,-1]");
}

TEST(TransformSettingsTest, RefusesWhatCannotBeServed) {
  struct Case {
    const char* request;
    const char* message;
  };
  const Case cases[] = {
      {R"({"TransformInput": {"SplitType": "TFRecord"}})", "TFRecord is not supported"},
      {R"({"MaxPayloadInMB": 101})", "between 0 and 100"},
      {R"({"TransformInput": {"ContentType": "text/csv"}, "DataProcessing": {"InputFilter": "$..x"}})",
       "DataProcessing.InputFilter '$..x' is not a JSONPath"},
      {R"({"TransformInput": {"ContentType": "image/jpeg"}, "DataProcessing": {"JoinSource": "Input"}})",
       "CSV and JSON data only"},
      {R"({"TransformInput": {"ContentType": "text/csv", "SplitType": "RecordIO"},
           "DataProcessing": {"OutputFilter": "$[0]"}})",
       "not to SplitType RecordIO"},
      {R"({"TransformInput": {"CompressionType": "Zip"}})", "CompressionType Zip"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request);
    auto settings = TransformSettingsFromRequest(Json(c.request), 1);
    ASSERT_FALSE(settings.ok());
    EXPECT_NE(settings.status().message().find(c.message), std::string::npos)
        << settings.status().message();
  }
}

// ---- The transformer over a scripted model ----------------------------------------------

// A model that answers like a CSV regressor: for every line of a text/csv request, the sum
// of its fields (or, for JSON requests, the sum of the array or "features"); a field "bad"
// is a 400 naming the line, "crash" a 500. It records every request, and can fail its first
// calls outright.
class ScriptedModel : public InferenceHandler {
 public:
  Result<InvocationResult> Invoke(const Invocation& request) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests.push_back(request);
      if (unreachable_calls > 0) {
        --unreachable_calls;
        return Status::Internal("connection reset by peer");
      }
    }
    int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    --in_flight;
    InvocationResult result;
    result.content_type = json_out ? "application/json" : "text/csv";
    const bool json_in = StartsWith(request.content_type, "application/json");
    std::string out;
    int line_number = 0;
    for (const std::string& raw : Split(request.body, '\n')) {
      if (raw.empty()) continue;
      ++line_number;
      double sum = 0;
      if (json_in) {
        auto v = ParseJson(raw);
        if (!v.ok()) return Answer(400, "line " + std::to_string(line_number) + ": not JSON");
        const Value& features = v->is_map() ? *v->Find("features") : *v;
        for (const Value& f : features.list()) sum += f.AsDouble();
      } else {
        for (const std::string& field : Split(raw, ',')) {
          if (field == "bad") {
            return Answer(400, "Unable to parse line " + std::to_string(line_number) +
                                   "\ncolumn value 'bad' is not a number");
          }
          if (field == "crash") return Answer(500, "worker died");
          sum += std::strtod(field.c_str(), nullptr);
        }
      }
      char text[64];
      std::snprintf(text, sizeof(text), "%g", sum);
      out += json_out ? std::string("{\"sum\":") + text + "}" : text;
      out += '\n';
    }
    if (drop_last_line && !out.empty()) {
      out.pop_back();
      out = out.substr(0, out.rfind('\n') + 1);
    }
    result.body = out;
    return result;
  }
  bool Ping() override { return true; }

  static InvocationResult Answer(int status, std::string body) {
    InvocationResult r;
    r.status = status;
    r.content_type = "text/plain";
    r.body = std::move(body);
    return r;
  }

  std::mutex mu_;
  std::vector<Invocation> requests;
  int unreachable_calls = 0;
  int delay_ms = 0;
  bool json_out = false;
  bool drop_last_line = false;
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
};

TransformSettings CsvLines() {
  TransformSettings s;
  s.content_type = "text/csv";
  s.accept = "text/csv";
  s.split = SplitType::kLine;
  s.assemble = AssembleWith::kLine;
  return s;
}

struct Outcome {
  Result<std::string> output = std::string();
  std::vector<std::string> log;
};

Outcome Transform(ScriptedModel& model, const TransformSettings& settings, std::string_view data) {
  Outcome run;
  BatchTransformer transformer(model, settings,
                               [&](const std::string& line) { run.log.push_back(line); });
  run.output = transformer.TransformFile("bucket/in/data.csv", data);
  return run;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return all;
}

TEST(BatchTransformerTest, BatchesLinesUpToMaxPayloadAndKeepsTheirOrder) {
  ScriptedModel model;
  model.delay_ms = 5;
  TransformSettings settings = CsvLines();
  settings.max_payload_bytes = 12;  // "1,2\n" is 4 bytes: three records per request
  settings.max_concurrent = 4;
  std::string data;
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    data += std::to_string(i) + "," + std::to_string(i) + "\r\n";
    expected += std::to_string(2 * i) + "\n";
  }
  Outcome run = Transform(model, settings, data);
  ASSERT_TRUE(run.output.ok()) << run.output.status().message();
  EXPECT_EQ(*run.output, expected);
  for (const Invocation& request : model.requests) {
    EXPECT_LE(request.body.size(), 12u);
    EXPECT_EQ(request.content_type, "text/csv");
    EXPECT_EQ(request.accept, "text/csv");
    EXPECT_EQ(request.body.find('\r'), std::string::npos);
  }
  EXPECT_GE(model.requests.size(), 7u);  // 20 records, at most 3 of them per request
  EXPECT_GT(model.max_in_flight.load(), 1);
  EXPECT_LE(model.max_in_flight.load(), 4);
}

TEST(BatchTransformerTest, SingleRecordSendsOneRequestPerRecord) {
  ScriptedModel model;
  TransformSettings settings = CsvLines();
  settings.batch = BatchStrategy::kSingleRecord;
  Outcome run = Transform(model, settings, "1,1\n2,2\n3,3\n");
  ASSERT_TRUE(run.output.ok());
  EXPECT_EQ(*run.output, "2\n4\n6\n");
  ASSERT_EQ(model.requests.size(), 3u);
  EXPECT_EQ(model.requests[1].body, "2,2\n");
}

TEST(BatchTransformerTest, AssembleNoneConcatenatesResponsesAsTheyAre) {
  ScriptedModel model;
  TransformSettings settings = CsvLines();
  settings.assemble = AssembleWith::kNone;
  settings.batch = BatchStrategy::kSingleRecord;
  Outcome run = Transform(model, settings, "1\n2\n");
  ASSERT_TRUE(run.output.ok());
  EXPECT_EQ(*run.output, "1\n2\n");

  // SplitType None: the file as it is in one request, the response as it is in the output.
  ScriptedModel whole;
  TransformSettings none;
  none.content_type = "text/csv";
  whole.json_out = true;
  Outcome concatenated = Transform(whole, none, "1,2\n3,4\n");
  ASSERT_TRUE(concatenated.output.ok());
  EXPECT_EQ(*concatenated.output, "{\"sum\":3}\n{\"sum\":7}\n");
  ASSERT_EQ(whole.requests.size(), 1u);
  EXPECT_EQ(whole.requests[0].body, "1,2\n3,4\n");
}

TEST(BatchTransformerTest, FiltersJoinsAndSelectsCsvColumns) {
  ScriptedModel model;
  TransformSettings settings = CsvLines();
  settings.input_filter = "$[1:]";
  settings.join = JoinSource::kInput;
  settings.output_filter = "$[0,-1]";
  Outcome run = Transform(model, settings, "id-1,1,2\n\"id,2\",3,4\n");
  ASSERT_TRUE(run.output.ok()) << run.output.status().message();
  EXPECT_EQ(*run.output, "id-1,3\n\"id,2\",7\n");
  ASSERT_EQ(model.requests.size(), 1u);
  EXPECT_EQ(model.requests[0].body, "1,2\n3,4\n");  // the id column never reaches the model

  // Join without an output filter: the input row, then the output's columns.
  ScriptedModel plain;
  TransformSettings join = CsvLines();
  join.join = JoinSource::kInput;
  Outcome joined = Transform(plain, join, "1,2\n");
  ASSERT_TRUE(joined.output.ok());
  EXPECT_EQ(*joined.output, "1,2,3\n");
}

TEST(BatchTransformerTest, JoinsJsonLinesUnderSageMakerOutput) {
  ScriptedModel model;
  model.json_out = true;
  TransformSettings settings;
  settings.content_type = "application/jsonlines";
  settings.accept = "application/json";
  settings.split = SplitType::kLine;
  settings.assemble = AssembleWith::kLine;
  settings.input_filter = "$.features";
  settings.join = JoinSource::kInput;
  settings.output_filter = "$['id','SageMakerOutput']";
  Outcome run =
      Transform(model, settings,
                "{\"id\": \"a\", \"features\": [1, 2]}\n{\"id\": \"b\", \"features\": [3, 4]}\n");
  ASSERT_TRUE(run.output.ok()) << run.output.status().message();
  EXPECT_EQ(*run.output,
            "{\"SageMakerOutput\":{\"sum\":3},\"id\":\"a\"}\n"
            "{\"SageMakerOutput\":{\"sum\":7},\"id\":\"b\"}\n");
  ASSERT_EQ(model.requests.size(), 1u);
  EXPECT_EQ(model.requests[0].body, "[1,2]\n[3,4]\n");

  // An input that is not an object is kept under SageMakerInput.
  ScriptedModel arrays;
  TransformSettings plain = settings;
  plain.input_filter = "$";
  plain.output_filter = "$";
  Outcome wrapped = Transform(arrays, plain, "[1,2]\n");
  ASSERT_TRUE(wrapped.output.ok()) << wrapped.output.status().message();
  EXPECT_EQ(*wrapped.output, "{\"SageMakerInput\":[1,2],\"SageMakerOutput\":3}\n");
}

TEST(BatchTransformerTest, FiltersAWholeCsvFileRowByRowWhenNotSplit) {
  ScriptedModel model;
  TransformSettings settings;
  settings.content_type = "text/csv";
  settings.input_filter = "$[1:]";
  settings.join = JoinSource::kInput;
  settings.assemble = AssembleWith::kLine;
  Outcome run = Transform(model, settings, "a,1,1\nb,2,2\n");
  ASSERT_TRUE(run.output.ok()) << run.output.status().message();
  EXPECT_EQ(*run.output, "a,1,1,2\nb,2,2,4\n");
  ASSERT_EQ(model.requests.size(), 1u);
  EXPECT_EQ(model.requests[0].body, "1,1\n2,2\n");
}

TEST(BatchTransformerTest, AModelErrorFailsTheJobAndTheLogNamesTheRecords) {
  ScriptedModel model;
  TransformSettings settings = CsvLines();
  settings.max_payload_bytes = 8;  // two 4-byte records per request
  Outcome run = Transform(model, settings, "1,1\n2,2\n3,3\nbad\n");
  ASSERT_FALSE(run.output.ok());
  EXPECT_EQ(run.output.status().message(), "ClientError: See job logs for more information");
  std::string log = Joined(run.log);
  EXPECT_NE(log.find("[sagemaker logs]: bucket/in/data.csv: ClientError: 400"), std::string::npos)
      << log;
  EXPECT_NE(log.find("bucket/in/data.csv: Message:"), std::string::npos) << log;
  EXPECT_NE(log.find("bucket/in/data.csv: column value 'bad' is not a number"), std::string::npos)
      << log;
  EXPECT_NE(log.find("records 3 to 4 (bytes 8 to 15 of the file)"), std::string::npos) << log;
}

TEST(BatchTransformerTest, RetriesUnansweredAndServerErrorRequests) {
  ScriptedModel flaky;
  flaky.unreachable_calls = 2;
  Outcome recovered = Transform(flaky, CsvLines(), "1,2\n");
  ASSERT_TRUE(recovered.output.ok()) << recovered.output.status().message();
  EXPECT_EQ(*recovered.output, "3\n");
  EXPECT_EQ(flaky.requests.size(), 3u);

  ScriptedModel dead;
  dead.unreachable_calls = 10;
  TransformSettings settings = CsvLines();
  settings.max_retries = 1;
  Outcome failed = Transform(dead, settings, "1,2\n");
  ASSERT_FALSE(failed.output.ok());
  EXPECT_EQ(failed.output.status().message(), "AlgorithmError: See job logs for more information");
  EXPECT_EQ(dead.requests.size(), 2u);
  EXPECT_NE(Joined(failed.log).find("Unable to get response from algorithm"), std::string::npos);

  ScriptedModel crashing;
  Outcome crashed = Transform(crashing, CsvLines(), "crash\n");
  ASSERT_FALSE(crashed.output.ok());
  EXPECT_EQ(crashed.output.status().message(), "AlgorithmError: See job logs for more information");
  EXPECT_EQ(crashing.requests.size(), 4u);  // the first try and three retries
}

TEST(BatchTransformerTest, AResponseWithTooFewLinesCannotBeJoined) {
  ScriptedModel model;
  model.drop_last_line = true;
  TransformSettings settings = CsvLines();
  settings.join = JoinSource::kInput;
  Outcome run = Transform(model, settings, "1\n2\n3\n");
  ASSERT_FALSE(run.output.ok());
  EXPECT_NE(run.output.status().message().find("ClientError: bucket/in/data.csv: mismatched line "
                                               "count between the input and the output"),
            std::string::npos)
      << run.output.status().message();
}

TEST(BatchTransformerTest, ARecordLargerThanMaxPayloadFailsTheJob) {
  ScriptedModel model;
  TransformSettings settings = CsvLines();
  settings.max_payload_bytes = 1 << 20;
  std::string data = "1,2\n" + std::string(2 << 20, '7') + "\n";
  Outcome run = Transform(model, settings, data);
  ASSERT_FALSE(run.output.ok());
  EXPECT_NE(run.output.status().message().find(
                "ClientError: Too much data for max payload size: bucket/in/data.csv record 2 "
                "(byte offset 4)"),
            std::string::npos)
      << run.output.status().message();
  EXPECT_TRUE(model.requests.empty());
}

TEST(BatchTransformerTest, AnInputFilterThatDoesNotFitFailsTheJob) {
  ScriptedModel model;
  TransformSettings settings = CsvLines();
  settings.input_filter = "$[5]";
  Outcome run = Transform(model, settings, "1,2\n");
  ASSERT_FALSE(run.output.ok());
  EXPECT_NE(run.output.status().message().find("InputFilter '$[5]': index 5 is out of range"),
            std::string::npos)
      << run.output.status().message();
}

TEST(BatchTransformerTest, SendsRecordIoFramesWithoutPaddingOneByOne) {
  std::string data;
  ml::recordio::AppendRecord("abcde", &data);
  ml::recordio::AppendRecord("fgh", &data);
  class Echo : public InferenceHandler {
   public:
    Result<InvocationResult> Invoke(const Invocation& request) override {
      std::lock_guard<std::mutex> lock(mu);
      bodies.push_back(request.body);
      InvocationResult r;
      r.body = std::to_string(request.body.size());
      return r;
    }
    bool Ping() override { return true; }
    std::mutex mu;
    std::vector<std::string> bodies;
  };
  Echo single;
  TransformSettings settings;
  settings.content_type = "application/x-recordio-protobuf";
  settings.split = SplitType::kRecordIO;
  settings.batch = BatchStrategy::kSingleRecord;
  settings.assemble = AssembleWith::kLine;
  BatchTransformer transformer(single, settings, nullptr);
  auto out = transformer.TransformFile("b/k", data);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, "13\n11\n");  // 8-byte header + payload, padding removed

  Echo multi;
  settings.batch = BatchStrategy::kMultiRecord;
  BatchTransformer batched(multi, settings, nullptr);
  out = batched.TransformFile("b/k", data);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(multi.bodies.size(), 1u);
  EXPECT_EQ(multi.bodies[0], data);  // frames as they are, padding kept
}

std::string Gzip(std::string_view data) {
  z_stream stream{};
  EXPECT_EQ(
      deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
      Z_OK);
  std::string out(deflateBound(&stream, data.size()) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

TEST(BatchTransformerTest, InflatesGzipInput) {
  ScriptedModel model;
  TransformSettings settings = CsvLines();
  settings.gzip = true;
  Outcome run = Transform(model, settings, Gzip("1,2\n3,4\n"));
  ASSERT_TRUE(run.output.ok()) << run.output.status().message();
  EXPECT_EQ(*run.output, "3\n7\n");

  Outcome broken = Transform(model, settings, "plain text");
  ASSERT_FALSE(broken.output.ok());
  EXPECT_NE(broken.output.status().message().find("CompressionType Gzip"), std::string::npos);
}

// ---- The whole job --------------------------------------------------------------------

class RunBatchTransformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-transform-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/in/sub");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ + "/in/" + rel, std::ios::binary) << text;
  }
  std::string Read(const std::string& rel) {
    std::ifstream in(root_ + "/" + rel, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  std::string root_;
};

TEST_F(RunBatchTransformTest, WritesOneOutPerInputFileUnderItsRelativePath) {
  Write("a.csv", "1,1\n2,2\n");
  Write("sub/b.csv", "5,5\n");
  Write("empty.csv", "");
  ScriptedModel model;
  std::vector<std::string> log;
  Status s =
      RunBatchTransform(model, CsvLines(), root_ + "/in",
                        {{"a.csv", "bkt/p/a.csv"},
                         {"empty.csv", "bkt/p/empty.csv"},
                         {"sub/b.csv", "bkt/p/sub/b.csv"}},
                        root_ + "/out", [&](const std::string& line) { log.push_back(line); });
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Read("out/a.csv.out"), "2\n4\n");
  EXPECT_EQ(Read("out/sub/b.csv.out"), "10\n");
  EXPECT_TRUE(fs::exists(root_ + "/out/empty.csv.out"));
  EXPECT_EQ(Read("out/empty.csv.out"), "");
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front(),
            "[sagemaker logs]: MaxConcurrentTransforms=1, MaxPayloadInMB=6, "
            "BatchStrategy=MULTI_RECORD");
  std::string all = Joined(log);
  EXPECT_NE(all.find("bkt/p/a.csv: 2 records in 1 request, 4 bytes written to a.csv.out"),
            std::string::npos)
      << all;
  // Nothing but whole outputs in the output directory.
  for (const auto& entry : fs::recursive_directory_iterator(root_ + "/out")) {
    if (entry.is_regular_file()) {
      EXPECT_TRUE(EndsWith(entry.path().string(), ".csv.out")) << entry.path();
    }
  }
}

TEST_F(RunBatchTransformTest, AFailedFileLeavesTheOutputsBeforeIt) {
  Write("a.csv", "1,1\n");
  Write("b.csv", "bad\n");
  Write("c.csv", "3,3\n");
  ScriptedModel model;
  Status s =
      RunBatchTransform(model, CsvLines(), root_ + "/in",
                        {{"a.csv", "a"}, {"b.csv", "b"}, {"c.csv", "c"}}, root_ + "/out", nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "ClientError: See job logs for more information");
  EXPECT_EQ(Read("out/a.csv.out"), "2\n");
  EXPECT_FALSE(fs::exists(root_ + "/out/b.csv.out"));
  EXPECT_FALSE(fs::exists(root_ + "/out/c.csv.out"));
}

}  // namespace
}  // namespace nimbus::serving
