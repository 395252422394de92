#include "serving/builtin_handler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/value.h"
#include "ml/algorithm.h"
#include "ml/blazingtext/blazingtext.h"
#include "ml/builtin/builtin_algorithms.h"
#include "ml/dataset_readers.h"
#include "ml/knn/knn.h"
#include "ml/recordio_protobuf.h"

namespace nimbus::serving {
namespace {

namespace fs = std::filesystem;

class NullMetrics : public ml::MetricsReporter {
 public:
  void Report(const std::string&, double) override {}
};

// Python's repr(float), computed independently of the handler: the fewest %e digits that read
// back to v, laid out as CPython does (fixed while the exponent is in [-4, 16)).
std::string PyRepr(double v, bool json = true) {
  if (std::isnan(v)) return json ? "NaN" : "nan";
  if (std::isinf(v)) return std::string(v < 0 ? "-" : "") + (json ? "Infinity" : "inf");
  char buf[64];
  for (int precision = 0; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*e", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s = s.substr(1);
  }
  size_t e = s.find('e');
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  int exponent = std::atoi(s.c_str() + e + 1);
  int decpt = exponent + 1;
  if (decpt > -4 && decpt <= 16) {
    int nd = static_cast<int>(digits.size());
    if (decpt <= 0) return sign + "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    if (decpt < nd) return sign + digits.substr(0, decpt) + "." + digits.substr(decpt);
    return sign + digits + std::string(static_cast<size_t>(decpt - nd), '0') + ".0";
  }
  std::string mantissa = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
  char exp[16];
  std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + mantissa + exp;
}

// json.dumps of a Value (ASCII keys and strings only), the oracle for the handler's JSON.
std::string PyJson(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return v.AsBool() ? "true" : "false";
    case Value::Type::kInt:
      return std::to_string(v.AsInt());
    case Value::Type::kDouble:
      return PyRepr(v.AsDouble());
    case Value::Type::kString:
      return "\"" + v.AsString() + "\"";
    case Value::Type::kList: {
      std::string out = "[";
      for (size_t i = 0; i < v.list().size(); ++i) {
        out += (i ? ", " : "") + PyJson(v.list()[i]);
      }
      return out + "]";
    }
    case Value::Type::kMap: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, e] : v.map()) {
        out += (first ? "\"" : ", \"") + k + "\": " + PyJson(e);
        first = false;
      }
      return out + "}";
    }
    default:
      return "?";
  }
}

// The label maps of a RecordIO-protobuf response, one per record: {key: float32 values}.
std::vector<std::map<std::string, std::vector<float>>> DecodeLabels(const std::string& body) {
  std::vector<std::map<std::string, std::vector<float>>> out;
  ml::recordio::Reader reader(body);
  std::string scratch;
  std::string_view payload;
  auto varint = [](std::string_view& s) {
    uint64_t v = 0;
    for (int shift = 0; !s.empty(); shift += 7) {
      auto b = static_cast<uint8_t>(s[0]);
      s.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  };
  auto delimited = [&](std::string_view& s) {
    uint64_t n = varint(s);
    std::string_view field = s.substr(0, n);
    s.remove_prefix(field.size());
    return field;
  };
  while (true) {
    auto more = reader.Next(&payload, &scratch);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    std::map<std::string, std::vector<float>> record;
    std::string_view p = payload;
    while (!p.empty()) {
      uint64_t tag = varint(p);
      EXPECT_EQ(tag & 7, 2u);
      std::string_view entry = delimited(p);
      if ((tag >> 3) != 2) continue;  // only the label map is written
      std::string key;
      std::vector<float> values;
      while (!entry.empty()) {
        uint64_t etag = varint(entry);
        std::string_view field = delimited(entry);
        if ((etag >> 3) == 1) key = std::string(field);
        if ((etag >> 3) != 2) continue;
        // Value { float32_tensor = 2 { values = 1 packed } }
        EXPECT_EQ(varint(field), (2u << 3) | 2u);
        std::string_view tensor = delimited(field);
        while (!tensor.empty()) {
          uint64_t ttag = varint(tensor);
          std::string_view packed = delimited(tensor);
          if ((ttag >> 3) != 1) continue;
          for (size_t i = 0; i + 4 <= packed.size(); i += 4) {
            float f;
            std::memcpy(&f, packed.data() + i, 4);
            values.push_back(f);
          }
        }
      }
      record[key] = values;
    }
    out.push_back(std::move(record));
  }
  return out;
}

std::vector<float> FloatsOf(const Value& v) {
  std::vector<float> out;
  if (v.is_list()) {
    for (const Value& e : v.list()) out.push_back(static_cast<float>(e.AsDouble()));
  } else {
    out.push_back(static_cast<float>(v.AsDouble()));
  }
  return out;
}

// Rows of `dim` features with two decimals (so CSV text and floats agree exactly); the label
// is 1 when the first two features sum above 0 (for kNN: that class, as 0/1).
struct Table {
  std::vector<std::vector<float>> rows;
  std::vector<int> labels;
};

Table MakeTable(int n, int dim, uint32_t seed, int classes = 2) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-3, 3);
  Table t;
  for (int i = 0; i < n; ++i) {
    std::vector<float> row;
    for (int j = 0; j < dim; ++j) row.push_back(std::round(u(rng) * 100) / 100);
    float s = row[0] + row[1];
    t.labels.push_back(classes == 2 ? (s > 0 ? 1 : 0) : (s < -1 ? 0 : s < 1 ? 1 : 2));
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string Csv(const Table& t, bool with_label) {
  std::string out;
  char buf[32];
  for (size_t i = 0; i < t.rows.size(); ++i) {
    std::string line = with_label ? std::to_string(t.labels[i]) : "";
    for (float v : t.rows[i]) {
      std::snprintf(buf, sizeof(buf), "%.2f", v);
      if (!line.empty()) line += ",";
      line += buf;
    }
    out += line + "\n";
  }
  return out;
}

InvocationResult InvokeOn(InferenceHandler& handler, const std::string& content_type,
                          const std::string& accept, const std::string& body) {
  Invocation request;
  request.content_type = content_type;
  request.accept = accept;
  request.body = body;
  auto result = handler.Invoke(request);
  EXPECT_TRUE(result.ok()) << result.status().message();
  return result.ok() ? *result : InvocationResult{};
}

class BuiltinHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::path(::testing::TempDir()) /
        ("builtin_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    ml::RegisterBuiltinAlgorithms();
  }
  void TearDown() override { fs::remove_all(root_); }

  // Trains `algorithm` on one file of the train channel; returns the model directory.
  std::string Train(const std::string& algorithm, ml::Hyperparameters hp, const std::string& data,
                    const std::string& content_type, const std::string& name = "job") {
    const fs::path job = root_ / name;
    fs::create_directories(job / "train");
    std::ofstream(job / "train" / "data") << data;
    ml::TrainingInput input;
    input.hyperparameters = std::move(hp);
    input.channels["train"] = ml::Channel{"train", (job / "train").string(), content_type, false};
    input.model_dir = (job / "model").string();
    input.output_data_dir = (job / "output").string();
    input.num_threads = 1;
    input.metrics = &metrics_;
    input.log = [](const std::string&) {};
    const ml::AlgorithmInfo* info = ml::FindAlgorithm(algorithm);
    EXPECT_NE(info, nullptr) << algorithm;
    if (info == nullptr) return "";
    Status trained = info->make()->Train(input);
    EXPECT_TRUE(trained.ok()) << algorithm << ": " << trained.message();
    return input.model_dir;
  }

  std::unique_ptr<InferenceHandler> Handler(const std::string& algorithm,
                                            const std::string& model_dir, int threads = 1,
                                            std::map<std::string, std::string> env = {}) {
    ContainerSpec spec;
    spec.algorithm = algorithm;
    spec.model_dir = model_dir;
    spec.threads = threads;
    spec.environment = std::move(env);
    auto handler = MakeBuiltinHandler(spec);
    EXPECT_TRUE(handler.ok()) << handler.status().message();
    if (!handler.ok()) return nullptr;
    EXPECT_TRUE((*handler)->Ping());
    return std::move(handler).value();
  }

  // What the model itself predicts for these records (parsed as the handler must parse them).
  std::vector<Value> Expected(const std::string& algorithm, const std::string& model_dir,
                              const std::string& body, ml::ContentType type, bool verbose = false) {
    auto model = ml::FindAlgorithm(algorithm)->load(model_dir);
    EXPECT_TRUE(model.ok());
    ml::ContentTypeSpec spec;
    spec.type = type;
    spec.label_size = 0;
    ml::ReadOptions options;
    options.labeled = false;
    options.feature_dim = (*model)->feature_dim();
    auto data = ml::ParseRecords(body, spec, options);
    EXPECT_TRUE(data.ok()) << data.status().message();
    auto predictions = verbose ? dynamic_cast<ml::KnnModel*>(model->get())->PredictVerbose(*data)
                               : (*model)->Predict(*data);
    EXPECT_TRUE(predictions.ok()) << predictions.status().message();
    return predictions.ok() ? *predictions : std::vector<Value>();
  }

  static InvocationResult Invoke(InferenceHandler& handler, const std::string& content_type,
                                 const std::string& accept, const std::string& body) {
    return InvokeOn(handler, content_type, accept, body);
  }

  std::string TrainXgboost(ml::Hyperparameters extra = {}, int classes = 2) {
    ml::Hyperparameters hp = {
        {"num_round", "6"}, {"max_depth", "3"}, {"objective", "binary:logistic"}};
    for (auto& [k, v] : extra) hp[k] = v;
    return Train("xgboost", hp, Csv(MakeTable(120, 4, 1, classes), true), "text/csv");
  }

  fs::path root_;
  NullMetrics metrics_;
};

std::string Lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// ---------------------------------------------------------------------------------------------
// XGBoost

TEST_F(BuiltinHandlerTest, XgboostAnswersCsvOneScorePerLineByDefault) {
  const std::string model = TrainXgboost();
  auto handler = Handler("xgboost", model);
  const std::string body = Csv(MakeTable(3, 4, 7), false);
  const auto expected = Expected("xgboost", model, body, ml::ContentType::kCsv);
  ASSERT_EQ(expected.size(), 3u);
  std::vector<std::string> lines;
  for (const Value& p : expected) lines.push_back(PyRepr(p.Find("score")->AsDouble(), false));

  for (const char* accept : {"", "*/*", "text/csv", "text/csv; charset=utf-8"}) {
    InvocationResult r = Invoke(*handler, "text/csv", accept, body);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.content_type, "text/csv");
    EXPECT_EQ(r.body, Lines(lines)) << accept;
  }
  // No Content-Type is CSV for XGBoost; parameters are accepted.
  EXPECT_EQ(Invoke(*handler, "", "", body).body, Lines(lines));
  EXPECT_EQ(Invoke(*handler, "text/csv; charset=utf-8", "", body).body, Lines(lines));
  // One row without a final newline, the benchmark's request.
  std::string one = body.substr(0, body.find('\n'));
  EXPECT_EQ(Invoke(*handler, "text/csv", "", one).body, lines[0] + "\n");
}

TEST_F(BuiltinHandlerTest, XgboostAnswersJsonJsonLinesAndRecordIO) {
  const std::string model = TrainXgboost();
  auto handler = Handler("xgboost", model);
  const std::string body = Csv(MakeTable(4, 4, 9), false);
  const auto expected = Expected("xgboost", model, body, ml::ContentType::kCsv);
  ASSERT_EQ(expected.size(), 4u);

  std::string json = "{\"predictions\": [";
  std::string jsonl;
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string score = PyRepr(expected[i].Find("score")->AsDouble());
    json += (i ? ", " : "") + std::string("{\"score\": ") + score + "}";
    jsonl += "{\"score\": " + score + "}\n";
  }
  json += "]}";
  InvocationResult r = Invoke(*handler, "text/csv", "application/json", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, json);
  r = Invoke(*handler, "text/csv", "application/jsonlines", body);
  EXPECT_EQ(r.content_type, "application/jsonlines");
  EXPECT_EQ(r.body, jsonl);
  // The first acceptable entry of a list wins.
  r = Invoke(*handler, "text/csv", "text/html, application/json;q=0.9", body);
  EXPECT_EQ(r.body, json);

  r = Invoke(*handler, "text/csv", "application/x-recordio-protobuf", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/x-recordio-protobuf");
  auto records = DecodeLabels(r.body);
  ASSERT_EQ(records.size(), expected.size());
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_EQ(records[i].size(), 1u);
    EXPECT_EQ(records[i]["score"], FloatsOf(*expected[i].Find("score")));
  }

  // The environment's default Accept replaces text/csv.
  auto json_default =
      Handler("xgboost", model, 1, {{"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json"}});
  EXPECT_EQ(Invoke(*json_default, "text/csv", "", body).body, json);
}

TEST_F(BuiltinHandlerTest, XgboostReadsLibSvmAndRecordIORequests) {
  const std::string model = TrainXgboost();
  auto handler = Handler("xgboost", model);
  const std::string libsvm = "0:1.5 1:-2 3:0.25\n1 0:-1 2:2.5\n";
  const auto expected = Expected("xgboost", model, libsvm, ml::ContentType::kLibSvm);
  ASSERT_EQ(expected.size(), 2u);
  const std::string lines = Lines({PyRepr(expected[0].Find("score")->AsDouble(), false),
                                   PyRepr(expected[1].Find("score")->AsDouble(), false)});
  for (const char* type : {"text/libsvm", "text/x-libsvm", "libsvm"}) {
    InvocationResult r = Invoke(*handler, type, "", libsvm);
    EXPECT_EQ(r.status, 200) << type << ": " << r.body;
    EXPECT_EQ(r.body, lines) << type;
  }

  const std::string csv = Csv(MakeTable(3, 4, 11), false);
  ml::ContentTypeSpec spec;
  spec.type = ml::ContentType::kCsv;
  spec.label_size = 0;
  auto dataset = ml::ParseRecords(csv, spec, ml::ReadOptions{false, 4});
  ASSERT_TRUE(dataset.ok());
  InvocationResult from_csv = Invoke(*handler, "text/csv", "", csv);
  InvocationResult from_recordio =
      Invoke(*handler, "application/x-recordio-protobuf", "", ml::WriteRecordIOProtobuf(*dataset));
  EXPECT_EQ(from_recordio.status, 200) << from_recordio.body;
  EXPECT_EQ(from_recordio.body, from_csv.body);
}

TEST_F(BuiltinHandlerTest, XgboostMulticlassAnswersProbabilityRowsOrClassIndex) {
  const std::string softprob =
      TrainXgboost({{"objective", "multi:softprob"}, {"num_class", "3"}}, 3);
  const std::string body = Csv(MakeTable(3, 4, 13, 3), false);
  const auto expected = Expected("xgboost", softprob, body, ml::ContentType::kCsv);
  ASSERT_EQ(expected.size(), 3u);
  std::string csv, batch_csv, json = "{\"predictions\": [";
  for (size_t i = 0; i < expected.size(); ++i) {
    const Value& scores = *expected[i].Find("score");
    ASSERT_EQ(scores.list().size(), 3u);
    std::string row, list = "[";
    for (size_t k = 0; k < 3; ++k) {
      row += (k ? "," : "") + PyRepr(scores.list()[k].AsDouble(), false);
      list += (k ? ", " : "") + PyRepr(scores.list()[k].AsDouble());
    }
    csv += row + "\n";
    batch_csv += list + "]\n";
    json += (i ? ", " : "") + std::string("{\"score\": ") + list + "]}";
  }
  json += "]}";
  auto handler = Handler("xgboost", softprob);
  EXPECT_EQ(Invoke(*handler, "text/csv", "text/csv", body).body, csv);
  EXPECT_EQ(Invoke(*handler, "text/csv", "application/json", body).body, json);
  // Batch transform writes Python's str() of each probability list.
  auto batch = Handler("xgboost", softprob, 1, {{"SAGEMAKER_BATCH", "true"}});
  EXPECT_EQ(Invoke(*batch, "text/csv", "text/csv", body).body, batch_csv);

  const std::string softmax = TrainXgboost({{"objective", "multi:softmax"}, {"num_class", "3"}}, 3);
  const auto labels = Expected("xgboost", softmax, body, ml::ContentType::kCsv);
  std::string class_lines;
  for (const Value& p : labels) {
    class_lines += PyRepr(static_cast<double>(p.Find("predicted_label")->AsInt()), false) + "\n";
  }
  auto softmax_handler = Handler("xgboost", softmax);
  InvocationResult r = Invoke(*softmax_handler, "text/csv", "", body);
  EXPECT_EQ(r.body, class_lines);  // "2.0": the booster's float, not an integer
  EXPECT_NE(r.body.find(".0\n"), std::string::npos);
}

TEST_F(BuiltinHandlerTest, XgboostRefusesWhatItCannotReadOrWrite) {
  auto handler = Handler("xgboost", TrainXgboost());
  InvocationResult r = Invoke(*handler, "application/json", "", "{\"instances\": [[1,2,3,4]]}");
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(r.body.find("'application/json'"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("text/csv, text/libsvm, text/x-libsvm, application/x-recordio-protobuf"),
            std::string::npos)
      << r.body;
  r = Invoke(*handler, "text/csv; label_size=5", "", "1,2,3,4");
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(r.body.find("label_size"), std::string::npos) << r.body;

  r = Invoke(*handler, "text/csv", "text/html", "1,2,3,4");
  EXPECT_EQ(r.status, 406);
  EXPECT_NE(r.body.find("'text/html'"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("application/jsonlines"), std::string::npos) << r.body;
  EXPECT_EQ(Invoke(*handler, "text/csv", "application/json;q=0", "1,2,3,4").status, 406);

  r = Invoke(*handler, "text/csv", "", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("empty"), std::string::npos) << r.body;
  r = Invoke(*handler, "text/csv", "", "\n\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("no records"), std::string::npos) << r.body;

  r = Invoke(*handler, "text/csv", "", "1,2,3,4\n1,2,x,4\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("CSV line 2, column 3: 'x' is not a number"), std::string::npos) << r.body;
  r = Invoke(*handler, "text/csv", "", "1,2,3\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("CSV line 1 has 3 columns, expected 4"), std::string::npos) << r.body;
  r = Invoke(*handler, "text/csv", "", "1,2,3,4,5\n");
  EXPECT_EQ(r.status, 400);
  r = Invoke(*handler, "text/libsvm", "", "0:1 9:2\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("feature index 9 is out of range"), std::string::npos) << r.body;
  r = Invoke(*handler, "application/x-recordio-protobuf", "", "not recordio at all");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("RecordIO record 1"), std::string::npos) << r.body;
}

TEST_F(BuiltinHandlerTest, SurvivesArbitraryBytesOfEveryContentType) {
  auto xgboost = Handler("xgboost", TrainXgboost());
  auto linear =
      Handler("linear-learner",
              Train("linear-learner",
                    {{"predictor_type", "binary_classifier"}, {"epochs", "2"}, {"num_models", "1"}},
                    Csv(MakeTable(100, 4, 2), true), "text/csv"));
  std::mt19937 rng(5);
  const std::string alphabet = "0123456789.,:-+e \n\r\t\"{}[]abc";
  for (int i = 0; i < 300; ++i) {
    std::string body(static_cast<size_t>(rng() % 64), '\0');
    for (char& c : body) {
      c = i % 2 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    for (auto [handler, types] :
         {std::pair{xgboost.get(), std::vector<std::string>{"text/csv", "text/libsvm",
                                                            "application/x-recordio-protobuf"}},
          std::pair{linear.get(), std::vector<std::string>{"text/csv", "application/json",
                                                           "application/jsonlines",
                                                           "application/x-recordio-protobuf"}}}) {
      for (const std::string& type : types) {
        InvocationResult r = Invoke(*handler, type, "", body);
        EXPECT_TRUE(r.status == 200 || (r.status >= 400 && r.status < 500))
            << type << " " << r.status << ": " << r.body;
      }
    }
  }
}

TEST_F(BuiltinHandlerTest, EightThreadsShareTwoCopiesAndGetTheirOwnAnswers) {
  const std::string model = TrainXgboost();
  auto handler = Handler("xgboost", model, /*threads=*/2);
  std::vector<std::string> bodies, answers;
  for (int i = 0; i < 8; ++i) {
    bodies.push_back(Csv(MakeTable(1 + i % 3, 4, 100 + static_cast<uint32_t>(i)), false));
    std::string lines;
    for (const Value& p : Expected("xgboost", model, bodies.back(), ml::ContentType::kCsv)) {
      lines += PyRepr(p.Find("score")->AsDouble(), false) + "\n";
    }
    answers.push_back(lines);
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 40; ++n) {
        const int i = (t + n) % 8;
        Invocation request;
        request.content_type = "text/csv";
        request.body = bodies[static_cast<size_t>(i)];
        auto r = handler->Invoke(request);
        if (!r.ok() || r->status != 200 || r->body != answers[static_cast<size_t>(i)]) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// ---------------------------------------------------------------------------------------------
// The algorithms' containers

// The JSON, JSON Lines and RecordIO answers of a tabular algorithm to one CSV request.
void ExpectTabularAnswers(InferenceHandler& handler, const std::vector<Value>& expected,
                          const std::string& root, const std::string& body) {
  std::string json = "{\"" + root + "\": [", jsonl;
  for (size_t i = 0; i < expected.size(); ++i) {
    json += (i ? ", " : "") + PyJson(expected[i]);
    jsonl += PyJson(expected[i]) + "\n";
  }
  json += "]}";
  for (const char* accept : {"", "*/*", "application/json"}) {
    InvocationResult r = InvokeOn(handler, "text/csv", accept, body);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, json);
  }
  InvocationResult r = InvokeOn(handler, "text/csv", "application/jsonlines", body);
  EXPECT_EQ(r.content_type, "application/jsonlines");
  EXPECT_EQ(r.body, jsonl);
  r = InvokeOn(handler, "text/csv", "application/x-recordio-protobuf", body);
  auto records = DecodeLabels(r.body);
  ASSERT_EQ(records.size(), expected.size());
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_EQ(records[i].size(), expected[i].map().size());
    for (const auto& [key, v] : expected[i].map()) EXPECT_EQ(records[i][key], FloatsOf(v)) << key;
  }
}

TEST_F(BuiltinHandlerTest, LinearLearnerReadsEveryRequestFormatAndAnswersPredictions) {
  const std::string model =
      Train("linear-learner",
            {{"predictor_type", "binary_classifier"}, {"epochs", "3"}, {"num_models", "1"}},
            Csv(MakeTable(200, 4, 3), true), "text/csv");
  auto handler = Handler("linear-learner", model);
  const Table table = MakeTable(3, 4, 17);
  const std::string body = Csv(table, false);
  const auto expected = Expected("linear-learner", model, body, ml::ContentType::kCsv);
  ASSERT_EQ(expected.size(), 3u);
  ASSERT_TRUE(expected[0].Find("predicted_label")->is_int());
  ExpectTabularAnswers(*handler, expected, "predictions", body);
  const std::string json = Invoke(*handler, "text/csv", "", body).body;
  EXPECT_NE(json.find("{\"predicted_label\": "), std::string::npos) << json;

  // The same records as JSON (both documented instance forms), JSON Lines and RecordIO.
  auto features = [&](size_t i) {
    std::string out = "[";
    char buf[32];
    for (size_t j = 0; j < table.rows[i].size(); ++j) {
      std::snprintf(buf, sizeof(buf), "%.2f", table.rows[i][j]);
      out += (j ? ", " : "") + std::string(buf);
    }
    return out + "]";
  };
  const std::string instances = "{\"instances\": [{\"features\": " + features(0) +
                                "}, {\"data\": {\"features\": {\"values\": " + features(1) +
                                "}}}, {\"features\": " + features(2) + "}]}";
  InvocationResult r = Invoke(*handler, "application/json", "application/json", instances);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, json);
  const std::string lines = "{\"features\": " + features(0) +
                            "}\n{\"data\": {\"features\": " + "{\"values\": " + features(1) +
                            "}}}\n{\"features\": " + features(2) + "}\n";
  EXPECT_EQ(Invoke(*handler, "application/jsonlines", "", lines).body, json);
  ml::ContentTypeSpec spec;
  spec.type = ml::ContentType::kCsv;
  spec.label_size = 0;
  auto dataset = ml::ParseRecords(body, spec, ml::ReadOptions{false, 4});
  ASSERT_TRUE(dataset.ok());
  EXPECT_EQ(
      Invoke(*handler, "application/x-recordio-protobuf", "", ml::WriteRecordIOProtobuf(*dataset))
          .body,
      json);
  // An explicit label_size=1 drops the first column.
  EXPECT_EQ(Invoke(*handler, "text/csv; label_size=1", "", Csv(table, true)).body, json);

  // Linear learner answers no CSV; wrong shapes are 400s naming the record.
  r = Invoke(*handler, "text/csv", "text/csv", body);
  EXPECT_EQ(r.status, 406);
  EXPECT_NE(r.body.find("application/json, application/jsonlines, application/x-recordio-protobuf"),
            std::string::npos)
      << r.body;
  r = Invoke(*handler, "application/json", "", "{\"instances\": [{\"features\": [1, 2]}]}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("JSON instance 1 has 2 features, expected 4"), std::string::npos) << r.body;
  r = Invoke(*handler, "application/json", "", "{\"instances\": [");
  EXPECT_EQ(r.status, 400);
  r = Invoke(*handler, "text/libsvm", "", "0:1");
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(r.body.find("text/csv, application/json, application/jsonlines, "
                        "application/x-recordio-protobuf"),
            std::string::npos)
      << r.body;
}

TEST_F(BuiltinHandlerTest, KmeansPcaRcfAndFmAnswerTheirDocumentedShapes) {
  const std::string unlabeled = Csv(MakeTable(150, 4, 21), false);
  const std::string labeled = Csv(MakeTable(150, 4, 21), true);
  const std::string body = Csv(MakeTable(3, 4, 23), false);

  const std::string kmeans =
      Train("kmeans", {{"k", "2"}, {"feature_dim", "4"}}, unlabeled, "text/csv", "kmeans");
  auto kmeans_handler = Handler("kmeans", kmeans);
  const auto clusters = Expected("kmeans", kmeans, body, ml::ContentType::kCsv);
  ExpectTabularAnswers(*kmeans_handler, clusters, "predictions", body);
  std::string csv;
  for (const Value& p : clusters) {
    csv += PyRepr(p.Find("closest_cluster")->AsDouble(), false) + "," +
           PyRepr(p.Find("distance_to_cluster")->AsDouble(), false) + "\n";
  }
  InvocationResult r = Invoke(*kmeans_handler, "text/csv", "text/csv", body);
  EXPECT_EQ(r.content_type, "text/csv");
  EXPECT_EQ(r.body, csv);
  EXPECT_NE(Invoke(*kmeans_handler, "text/csv", "", body).body.find("\"closest_cluster\": "),
            std::string::npos);

  const std::string pca =
      Train("pca", {{"feature_dim", "4"}, {"num_components", "2"}, {"mini_batch_size", "50"}},
            unlabeled, "text/csv", "pca");
  const auto projections = Expected("pca", pca, body, ml::ContentType::kCsv);
  ASSERT_EQ(projections[0].Find("projection")->list().size(), 2u);
  ExpectTabularAnswers(*Handler("pca", pca), projections, "projections", body);

  const std::string rcf =
      Train("randomcutforest",
            {{"feature_dim", "4"}, {"num_trees", "50"}, {"num_samples_per_tree", "32"}}, unlabeled,
            "text/csv", "rcf");
  ExpectTabularAnswers(*Handler("randomcutforest", rcf),
                       Expected("randomcutforest", rcf, body, ml::ContentType::kCsv), "scores",
                       body);

  const std::string fm = Train("factorization-machines",
                               {{"feature_dim", "4"},
                                {"num_factors", "2"},
                                {"predictor_type", "binary_classifier"},
                                {"epochs", "2"},
                                {"mini_batch_size", "50"}},
                               labeled, "text/csv", "fm");
  ExpectTabularAnswers(*Handler("factorization-machines", fm),
                       Expected("factorization-machines", fm, body, ml::ContentType::kCsv),
                       "predictions", body);
}

TEST_F(BuiltinHandlerTest, KnnAnswersNeighboursWhenVerbose) {
  const std::string model = Train(
      "knn",
      {{"feature_dim", "4"}, {"k", "3"}, {"predictor_type", "classifier"}, {"sample_size", "200"}},
      Csv(MakeTable(120, 4, 31), true), "text/csv");
  auto handler = Handler("knn", model);
  const std::string body = Csv(MakeTable(2, 4, 33), false);
  const auto plain = Expected("knn", model, body, ml::ContentType::kCsv);
  ExpectTabularAnswers(*handler, plain, "predictions", body);
  EXPECT_EQ(plain[0].size(), 1u);
  const auto verbose = Expected("knn", model, body, ml::ContentType::kCsv, /*verbose=*/true);
  ASSERT_EQ(verbose[0].Find("distances")->list().size(), 3u);
  std::string json = "{\"predictions\": [";
  for (size_t i = 0; i < verbose.size(); ++i) json += (i ? ", " : "") + PyJson(verbose[i]);
  json += "]}";
  InvocationResult r = Invoke(*handler, "text/csv", "application/json; verbose=true", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, json);
  auto records = DecodeLabels(
      Invoke(*handler, "text/csv", "application/x-recordio-protobuf;verbose=true", body).body);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1]["distances"], FloatsOf(*verbose[1].Find("distances")));
  EXPECT_EQ(records[1]["labels"], FloatsOf(*verbose[1].Find("labels")));
}

TEST_F(BuiltinHandlerTest, BlazingTextAnswersTextRequests) {
  std::string corpus;
  const char* topics[2][3] = {{"goal", "match", "team"}, {"stock", "market", "price"}};
  for (int i = 0; i < 200; ++i) {
    const int t = i % 2;
    // A non-ASCII label shows json.dumps' ASCII escaping.
    corpus += std::string(t ? "__label__financ\xC3\xA9 " : "__label__sport ") + topics[t][i % 3] +
              " " + topics[t][(i + 1) % 3] + " " + topics[t][(i + 2) % 3] + "\n";
  }
  const std::string model = Train("blazingtext",
                                  {{"mode", "supervised"},
                                   {"epochs", "5"},
                                   {"vector_dim", "8"},
                                   {"min_count", "1"},
                                   {"buckets", "1000"}},
                                  corpus, "text/plain");
  auto handler = Handler("blazingtext", model);
  auto loaded = ml::FindAlgorithm("blazingtext")->load(model);
  ASSERT_TRUE(loaded.ok());
  auto* bt = dynamic_cast<ml::BlazingTextModel*>(loaded->get());
  ASSERT_NE(bt, nullptr);

  auto top2 = bt->PredictText({"goal match", "stock price"}, 2);
  ASSERT_TRUE(top2.ok());
  auto ascii = [](std::string json) {
    for (size_t at; (at = json.find("\xC3\xA9")) != std::string::npos;) {
      json.replace(at, 2, "\\u00e9");
    }
    return json;
  };
  const std::string expected = ascii("[" + PyJson((*top2)[0]) + ", " + PyJson((*top2)[1]) + "]");
  InvocationResult r = Invoke(*handler, "application/json", "",
                              "{\"instances\": [\"goal match\", \"stock price\"], "
                              "\"configuration\": {\"k\": 2}}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, expected);
  EXPECT_NE(r.body.find("\"label\": [\"__label__"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("__label__financ\\u00e9"), std::string::npos) << r.body;

  auto top1 = bt->PredictText({"goal match", "stock price"}, 1);
  ASSERT_TRUE(top1.ok());
  const std::string lines = ascii(PyJson((*top1)[0]) + "\n" + PyJson((*top1)[1]) + "\n");
  r = Invoke(*handler, "application/jsonlines", "application/jsonlines",
             "{\"source\": \"goal match\"}\n{\"source\": \"stock price\"}\n");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, lines);
  r = Invoke(*handler, "text/plain", "application/jsonlines", "goal match\nstock price\n");
  EXPECT_EQ(r.body, lines);

  EXPECT_EQ(Invoke(*handler, "text/csv", "", "1,2").status, 415);
  EXPECT_EQ(Invoke(*handler, "application/json", "text/csv", "{}").status, 406);
  r = Invoke(*handler, "application/json", "", "{\"instances\": [");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not valid JSON"), std::string::npos) << r.body;
  r = Invoke(*handler, "application/jsonlines", "", "{\"source\": \"a\"}\n{oops\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("JSON line 2"), std::string::npos) << r.body;
  r = Invoke(*handler, "application/json", "", "{\"instances\": [1, 2]}");
  EXPECT_EQ(r.status, 400);
  r = Invoke(*handler, "application/json", "",
             "{\"instances\": [\"a\"], \"configuration\": {\"k\": 0}}");
  EXPECT_EQ(r.status, 400);
}

TEST_F(BuiltinHandlerTest, FactoryRefusesWhatItCannotServe) {
  ContainerSpec spec;
  spec.algorithm = "no-such-algorithm";
  EXPECT_FALSE(MakeBuiltinHandler(spec).ok());
  spec.algorithm = "xgboost";
  spec.model_dir = (root_ / "missing").string();
  auto missing = MakeBuiltinHandler(spec);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("xgboost-model"), std::string::npos)
      << missing.status().message();

  spec.model_dir = TrainXgboost();
  spec.environment = {{"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/html"}};
  auto bad_default = MakeBuiltinHandler(spec);
  ASSERT_FALSE(bad_default.ok());
  EXPECT_NE(bad_default.status().message().find("'text/html'"), std::string::npos);
  spec.environment = {{"SAGEMAKER_INFERENCE_OUTPUT", "predicted_label"}};
  EXPECT_FALSE(MakeBuiltinHandler(spec).ok());
  spec.environment.clear();
  EXPECT_TRUE(MakeBuiltinHandler(spec).ok());
}

TEST_F(BuiltinHandlerTest, NumbersAreWrittenAsPythonWritesThem) {
  // A one-feature PCA whose projection is the feature itself (float32), so the answer shows
  // how each value is written.
  const fs::path model = root_ / "identity";
  fs::create_directories(model);
  std::ofstream(model / "pca-model.json")
      << "{\"format\": \"nimbus-pca\", \"version\": 1, \"feature_dim\": 1, "
         "\"num_components\": 1, \"subtract_mean\": false, \"mean\": [0], \"s\": [1], "
         "\"v\": [[1]]}";
  auto handler = Handler("pca", model.string());
  const std::vector<double> inputs = {1,    0.5,  -2,   0,       0.0001, 0.00001,
                                      1e15, 2e15, 1e16, -2.5e-7, 0.1,    123.456};
  std::string body, expected = "{\"projections\": [";
  for (size_t i = 0; i < inputs.size(); ++i) {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.17g\n", inputs[i]);
    body += buf;
    expected += (i ? ", " : "") + std::string("{\"projection\": [") +
                PyRepr(static_cast<double>(static_cast<float>(inputs[i]))) + "]}";
  }
  expected += "]}";
  InvocationResult r = Invoke(*handler, "text/csv", "", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, expected);
  for (const char* literal :
       {"[1.0]", "[0.5]", "[-2.0]", "[0.0]", "[1.0000000272564224e+16]", "[999999986991104.0]",
        "[1999999973982208.0]", "[9.999999747378752e-06]"}) {
    EXPECT_NE(r.body.find(literal), std::string::npos) << literal << " in " << r.body;
  }
}

TEST(PythonNumberFormatTest, OracleMatchesCpythonRepr) {
  // The oracle itself: CPython's repr for the boundary cases.
  EXPECT_EQ(PyRepr(1.0), "1.0");
  EXPECT_EQ(PyRepr(0.0001), "0.0001");
  EXPECT_EQ(PyRepr(0.00001), "1e-05");
  EXPECT_EQ(PyRepr(1e16), "1e+16");
  EXPECT_EQ(PyRepr(1e15), "1000000000000000.0");
  EXPECT_EQ(PyRepr(static_cast<double>(0.1f)), "0.10000000149011612");
  EXPECT_EQ(PyRepr(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(PyRepr(123.456), "123.456");
}

}  // namespace
}  // namespace nimbus::serving
