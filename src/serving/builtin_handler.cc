// The model server of the built-in algorithms (builtin_handler.h). What each container answers
// comes from its documentation ("Common data formats for inference" and the algorithms' response
// format pages) and, for XGBoost, from the open-source container (aws/sagemaker-xgboost-container,
// algorithm_mode/serve.py and serve_utils.py):
//   XGBoost     takes text/csv (the default), text/libsvm, text/x-libsvm and recordio-protobuf;
//               answers text/csv by default: the booster's predictions one per line, as numpy's
//               savetxt writes them (multi:softprob: one line of class probabilities per record;
//               with SAGEMAKER_BATCH, Python's str() of that list), application/json as
//               {"predictions": [{"score": p}, ...]}, JSON Lines as one {"score": p} per line,
//               recordio-protobuf with the score under label["score"]. multi:softmax predictions
//               are the class index as a float (2.0), as the booster returns it.
//   linear-learner, factorization-machines, kmeans, pca, randomcutforest, knn
//               take text/csv (no label column unless label_size=1), application/json,
//               application/jsonlines and recordio-protobuf; answer application/json by default
//               ({"predictions"|"projections"|"scores": [...]}), JSON Lines (one record per line)
//               and recordio-protobuf (one Record per prediction, each field a Float32Tensor in
//               the label map); k-means also text/csv (closest_cluster,distance_to_cluster); kNN
//               adds the neighbours with "; verbose=true".
//   blazingtext takes application/json ({"instances": [...], "configuration": {"k": N}}),
//               application/jsonlines ({"source": "...", "k": N} per line) and text/plain (one
//               sentence per line); answers a JSON array or JSON Lines.
// JSON is written as Python's json.dumps writes it (", " and ": " separators, ASCII only,
// floats in repr's shortest round-trip form: 1.0, 0.0001, 1e-05), since every container is
// Python. SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT replaces the default Accept.
//
// The hot path (parse, lease a model, predict, format) allocates only the Dataset, the model's
// predictions and the response: media types are compared in place, numbers are written with
// std::to_chars.
#include "serving/builtin_handler.h"

#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/strings.h"
#include "core/value.h"
#include "ml/algorithm.h"
#include "ml/blazingtext/blazingtext.h"
#include "ml/builtin/builtin_algorithms.h"
#include "ml/dataset_readers.h"
#include "ml/knn/knn.h"
#include "ml/recordio_protobuf.h"

namespace nimbus::serving {
namespace {

// ---------------------------------------------------------------------------------------------
// Media types

enum class Wire { kCsv, kLibSvm, kJson, kJsonLines, kRecordIO, kText };

struct MediaName {
  std::string_view name;
  Wire wire;
};

constexpr std::string_view kCsvType = "text/csv";
constexpr std::string_view kJsonType = "application/json";
constexpr std::string_view kJsonLinesType = "application/jsonlines";
constexpr std::string_view kRecordIOType = "application/x-recordio-protobuf";
constexpr std::string_view kTextType = "text/plain";

// "text/csv; charset=utf-8" → type "text/csv", params "charset=utf-8".
struct MediaType {
  std::string_view type;
  std::string_view params;
};

MediaType SplitMediaType(std::string_view s) {
  size_t semi = s.find(';');
  MediaType m;
  m.type = Trim(s.substr(0, semi));
  m.params = semi == std::string_view::npos ? std::string_view() : s.substr(semi + 1);
  return m;
}

// The value of parameter `name` (case-insensitive, quotes stripped) in "a=1; b=2".
std::optional<std::string_view> Param(std::string_view params, std::string_view name) {
  while (!params.empty()) {
    size_t semi = params.find(';');
    std::string_view p = Trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    size_t eq = p.find('=');
    if (!EqualsIgnoreCase(Trim(p.substr(0, eq)), name)) continue;
    std::string_view v = eq == std::string_view::npos ? std::string_view() : Trim(p.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
  }
  return std::nullopt;
}

const MediaName* FindMedia(const std::vector<MediaName>& names, std::string_view type) {
  for (const MediaName& m : names) {
    if (EqualsIgnoreCase(m.name, type)) return &m;
  }
  return nullptr;
}

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 100;
  std::string out = "'";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

// ---------------------------------------------------------------------------------------------
// What each algorithm's container takes and answers

enum class Family { kXgboost, kTabular, kBlazingText };

struct Profile {
  Family family = Family::kTabular;
  std::string algorithm;
  std::vector<MediaName> requests;  // accepted Content-Types (aliases included)
  std::string request_list;         // the canonical ones, for the 415 message
  std::string_view default_request;
  std::vector<MediaName> accepts;  // in the order the 406 message lists them
  std::string_view default_accept;
  std::string_view json_root;                // "predictions" | "projections" | "scores"
  std::vector<std::string_view> csv_fields;  // text/csv columns (tabular algorithms)
  bool verbose = false;                      // kNN's "; verbose=true"
};

std::string ListOf(const std::vector<MediaName>& names) {
  std::string out;
  for (const MediaName& m : names) {
    if (!out.empty()) out += ", ";
    out += m.name;
  }
  return out;
}

std::optional<Profile> ProfileOf(const std::string& algorithm) {
  Profile p;
  p.algorithm = algorithm;
  if (algorithm == "xgboost") {
    p.family = Family::kXgboost;
    p.requests = {{kCsvType, Wire::kCsv},
                  {"text/libsvm", Wire::kLibSvm},
                  {"text/x-libsvm", Wire::kLibSvm},
                  {kRecordIOType, Wire::kRecordIO}};
    p.request_list = ListOf(p.requests);
    // The container's own shorthands (data_utils.get_content_type).
    p.requests.push_back({"csv", Wire::kCsv});
    p.requests.push_back({"libsvm", Wire::kLibSvm});
    p.default_request = kCsvType;
    p.accepts = {{kCsvType, Wire::kCsv},
                 {kJsonType, Wire::kJson},
                 {kJsonLinesType, Wire::kJsonLines},
                 {kRecordIOType, Wire::kRecordIO}};
    p.default_accept = kCsvType;
    p.json_root = "predictions";
    return p;
  }
  if (algorithm == "blazingtext") {
    p.family = Family::kBlazingText;
    p.requests = {
        {kJsonType, Wire::kJson}, {kJsonLinesType, Wire::kJsonLines}, {kTextType, Wire::kText}};
    p.request_list = ListOf(p.requests);
    p.default_request = kJsonType;
    p.accepts = {{kJsonType, Wire::kJson}, {kJsonLinesType, Wire::kJsonLines}};
    p.default_accept = kJsonType;
    return p;
  }
  if (algorithm == "linear-learner" || algorithm == "factorization-machines" ||
      algorithm == "knn" || algorithm == "kmeans") {
    p.json_root = "predictions";
  } else if (algorithm == "pca") {
    p.json_root = "projections";
  } else if (algorithm == "randomcutforest") {
    p.json_root = "scores";
  } else {
    return std::nullopt;
  }
  p.family = Family::kTabular;
  p.requests = {{kCsvType, Wire::kCsv},
                {kJsonType, Wire::kJson},
                {kJsonLinesType, Wire::kJsonLines},
                {kRecordIOType, Wire::kRecordIO}};
  p.request_list = ListOf(p.requests);
  p.requests.push_back({"application/x-jsonlines", Wire::kJsonLines});
  p.default_request = kCsvType;
  p.accepts = {{kJsonType, Wire::kJson},
               {kJsonLinesType, Wire::kJsonLines},
               {kRecordIOType, Wire::kRecordIO}};
  if (algorithm == "kmeans") {
    p.accepts.push_back({kCsvType, Wire::kCsv});
    p.csv_fields = {"closest_cluster", "distance_to_cluster"};
  }
  p.default_accept = kJsonType;
  p.verbose = algorithm == "knn";
  return p;
}

// ---------------------------------------------------------------------------------------------
// Writers: Python's repr of floats and json.dumps, numpy's savetxt, RecordIO-protobuf

// repr(float): the shortest digits that round-trip, in fixed notation while the decimal
// exponent is in [-4, 16), else d.ddde±XX; integral values end in ".0". json.dumps writes the
// non-finite ones NaN/Infinity, str() nan/inf.
void AppendFloat(std::string& out, double v, bool json) {
  if (std::isnan(v)) {
    out += json ? "NaN" : "nan";
    return;
  }
  if (std::isinf(v)) {
    if (v < 0) out += '-';
    out += json ? "Infinity" : "inf";
    return;
  }
  char buf[40];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const char* p = buf;
  const char* end = res.ptr;
  if (*p == '-') {
    out += '-';
    ++p;
  }
  char digits[24];
  int nd = 0;
  for (; p < end && *p != 'e'; ++p) {
    if (*p != '.') digits[nd++] = *p;
  }
  int exponent = 0;
  bool negative_exponent = false;
  if (p < end) ++p;  // 'e'
  if (p < end && (*p == '+' || *p == '-')) negative_exponent = *p++ == '-';
  std::from_chars(p, end, exponent);
  if (negative_exponent) exponent = -exponent;
  const int decpt = exponent + 1;  // digits[0..decpt) are the integer part
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out.append(digits, static_cast<size_t>(nd));
    } else if (decpt < nd) {
      out.append(digits, static_cast<size_t>(decpt));
      out += '.';
      out.append(digits + decpt, static_cast<size_t>(nd - decpt));
    } else {
      out.append(digits, static_cast<size_t>(nd));
      out.append(static_cast<size_t>(decpt - nd), '0');
      out += ".0";
    }
    return;
  }
  out += digits[0];
  if (nd > 1) {
    out += '.';
    out.append(digits + 1, static_cast<size_t>(nd - 1));
  }
  out += 'e';
  out += exponent < 0 ? '-' : '+';
  const int magnitude = exponent < 0 ? -exponent : exponent;
  if (magnitude < 10) out += '0';
  char ebuf[8];
  auto e = std::to_chars(ebuf, ebuf + sizeof(ebuf), magnitude);
  out.append(ebuf, e.ptr);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

void AppendJson(std::string& out, const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      out += "null";
      return;
    case Value::Type::kBool:
      out += v.AsBool() ? "true" : "false";
      return;
    case Value::Type::kInt:
      AppendInt(out, v.AsInt());
      return;
    case Value::Type::kDouble:
    case Value::Type::kTimestamp:
      AppendFloat(out, v.AsDouble(), /*json=*/true);
      return;
    case Value::Type::kString:
    case Value::Type::kBlob:
      AppendJsonString(out, v.AsString(), /*ascii_only=*/true);
      return;
    case Value::Type::kList: {
      out += '[';
      bool first = true;
      for (const Value& e : v.list()) {
        if (!first) out += ", ";
        first = false;
        AppendJson(out, e);
      }
      out += ']';
      return;
    }
    case Value::Type::kMap: {
      out += '{';
      bool first = true;
      for (const auto& [key, e] : v.map()) {
        if (!first) out += ", ";
        first = false;
        AppendJsonString(out, key, /*ascii_only=*/true);
        out += ": ";
        AppendJson(out, e);
      }
      out += '}';
      return;
    }
  }
}

// A CSV cell as str() writes a number (numpy's savetxt with fmt="%s").
void AppendCsvNumber(std::string& out, const Value& v) {
  if (v.is_int()) {
    AppendInt(out, v.AsInt());
  } else if (v.is_number()) {
    AppendFloat(out, v.AsDouble(), /*json=*/false);
  } else if (v.is_bool()) {
    out += v.AsBool() ? "True" : "False";
  } else if (v.is_null()) {
    out += "nan";
  }
}

// Protobuf wire helpers for the response Records.
void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void AppendFloatLE(std::string& out, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  for (int k = 0; k < 4; ++k) out += static_cast<char>((bits >> (8 * k)) & 0xFF);
}

void FloatsOf(const Value& v, std::vector<float>& out) {
  if (v.is_list()) {
    for (const Value& e : v.list()) FloatsOf(e, out);
  } else if (v.is_number() || v.is_bool()) {
    out.push_back(static_cast<float>(v.is_bool() ? (v.AsBool() ? 1.0 : 0.0) : v.AsDouble()));
  } else if (v.is_null()) {
    out.push_back(std::nanf(""));
  }
}

// Appends one label map entry {key: Value{float32_tensor: {values}}} to a Record payload, as the
// containers' protobuf serializer writes it (record.proto: label = 2, map entry key = 1 and
// value = 2, Value.float32_tensor = 2, Float32Tensor.values = 1 packed).
void AppendLabelEntry(std::string& payload, std::string_view key, const std::vector<float>& values,
                      std::string& tensor, std::string& entry) {
  tensor.clear();
  if (!values.empty()) {
    tensor += '\x0A';
    AppendVarint(tensor, values.size() * 4);
    for (float f : values) AppendFloatLE(tensor, f);
  }
  entry.clear();
  entry += '\x0A';
  AppendVarint(entry, key.size());
  entry.append(key);
  entry += '\x12';
  // Value { float32_tensor = 2 }: its tag, the tensor's length, the tensor.
  size_t value_size = 1 + 1 + tensor.size();
  for (size_t n = tensor.size(); n >= 0x80; n >>= 7) ++value_size;
  AppendVarint(entry, value_size);
  entry += '\x12';
  AppendVarint(entry, tensor.size());
  entry.append(tensor);
  payload += '\x12';
  AppendVarint(payload, entry.size());
  payload.append(entry);
}

// ---------------------------------------------------------------------------------------------
// The pool of loaded copies of the model

class ModelPool {
 public:
  explicit ModelPool(std::vector<std::unique_ptr<ml::Model>> models) : models_(std::move(models)) {
    free_.reserve(models_.size());
    for (auto& m : models_) free_.push_back(m.get());
  }

  // A copy held by one request; back to the pool when the lease ends.
  class Lease {
   public:
    Lease(ModelPool* pool, ml::Model* model) : pool_(pool), model_(model) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_->Release(model_); }
    ml::Model* get() const { return model_; }

   private:
    ModelPool* pool_;
    ml::Model* model_;
  };

  // Blocks until a copy is free. Waiting requests are served first come, first served
  // (a released copy is handed straight to the oldest waiter), so that no request starves
  // behind newer ones and the tail latency stays close to the mean.
  Lease Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!free_.empty() && waiters_.empty()) {
      ml::Model* model = free_.back();
      free_.pop_back();
      return Lease(this, model);
    }
    Waiter waiter;
    waiters_.push_back(&waiter);
    waiter.ready.wait(lock, [&waiter] { return waiter.model != nullptr; });
    return Lease(this, waiter.model);
  }

  const ml::Model& any() const { return *models_.front(); }

 private:
  struct Waiter {
    std::condition_variable ready;
    ml::Model* model = nullptr;
  };

  void Release(ml::Model* model) {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiters_.empty()) {
      free_.push_back(model);
      return;
    }
    Waiter* next = waiters_.front();
    waiters_.pop_front();
    next->model = model;
    next->ready.notify_one();
  }

  std::vector<std::unique_ptr<ml::Model>> models_;
  std::mutex mu_;
  std::deque<Waiter*> waiters_;   // GUARDED_BY(mu_), oldest first
  std::vector<ml::Model*> free_;  // GUARDED_BY(mu_)
};

// ---------------------------------------------------------------------------------------------
// The handler

InvocationResult Answer(int status, std::string message) {
  InvocationResult r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(message);
  return r;
}

// A model or reader error as the answer: the caller's fault (ClientError) is a 400, anything
// else the model's (500).
InvocationResult ErrorAnswer(const Status& s) {
  return Answer(s.code() == "ClientError" || s.kind() == ErrorKind::kSerialization ? 400 : 500,
                s.message());
}

struct AcceptChoice {
  const MediaName* media = nullptr;
  bool verbose = false;
};

class BuiltinHandler final : public InferenceHandler {
 public:
  // REQUIRES: default_accept names one of profile.accepts; models is not empty.
  BuiltinHandler(Profile profile, std::vector<std::unique_ptr<ml::Model>> models,
                 std::string_view default_accept, bool batch)
      : profile_(std::move(profile)),
        pool_(std::move(models)),
        feature_dim_(pool_.any().feature_dim()),
        default_accept_(FindMedia(profile_.accepts, default_accept)),
        batch_(batch) {}

  Result<InvocationResult> Invoke(const Invocation& request) override {
    const MediaType content =
        SplitMediaType(request.content_type.empty() ? profile_.default_request
                                                    : std::string_view(request.content_type));
    const MediaName* in = FindMedia(profile_.requests, content.type);
    if (in == nullptr) {
      return Answer(415, "Content type " + Quote(request.content_type) + " is not supported by " +
                             profile_.algorithm + "; expected one of: " + profile_.request_list);
    }
    int label_size = 0;
    if (auto value = Param(content.params, "label_size"); value && in->wire == Wire::kCsv) {
      if (*value == "0" || *value == "1") {
        label_size = *value == "1" ? 1 : 0;
      } else {
        return Answer(415, "Content type " + Quote(request.content_type) + ": label_size " +
                               Quote(*value) + " is not supported; it must be 0 or 1");
      }
    }
    AcceptChoice accept;
    if (!ChooseAccept(request.accept, &accept)) {
      return Answer(406, "Accept type " + Quote(request.accept) + " is not supported by " +
                             profile_.algorithm + "; expected one of: " + ListOf(profile_.accepts));
    }
    if (request.body.empty()) {
      return Answer(400, "The request body is empty: send at least one record");
    }
    if (profile_.family == Family::kBlazingText) return InvokeText(request, *in, accept);
    return InvokeTabular(request, *in, label_size, accept);
  }

  bool Ping() override { return true; }  // the handler exists only once every copy is loaded

 private:
  // The first acceptable entry of an Accept list ("*/*" and "type/*" pick the default).
  bool ChooseAccept(std::string_view header, AcceptChoice* out) const {
    if (Trim(header).empty()) {
      out->media = default_accept_;
      return true;
    }
    while (!header.empty()) {
      size_t comma = header.find(',');
      const MediaType entry = SplitMediaType(header.substr(0, comma));
      header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
      if (entry.type.empty()) continue;
      if (auto q = Param(entry.params, "q"); q && !q->empty()) {
        double weight = 1;
        std::from_chars(q->data(), q->data() + q->size(), weight);
        if (weight <= 0) continue;
      }
      const MediaName* media = nullptr;
      if (entry.type == "*/*" || entry.type == "*") {
        media = default_accept_;
      } else if (entry.type.size() > 2 && entry.type.ends_with("/*")) {
        const std::string_view major = entry.type.substr(0, entry.type.size() - 1);  // "text/"
        if (EqualsIgnoreCase(default_accept_->name.substr(0, major.size()), major)) {
          media = default_accept_;
        } else {
          for (const MediaName& m : profile_.accepts) {
            if (EqualsIgnoreCase(m.name.substr(0, major.size()), major)) {
              media = &m;
              break;
            }
          }
        }
      } else {
        media = FindMedia(profile_.accepts, entry.type);
      }
      if (media == nullptr) continue;
      out->media = media;
      if (profile_.verbose) {
        auto verbose = Param(entry.params, "verbose");
        out->verbose = verbose && (EqualsIgnoreCase(*verbose, "true") || *verbose == "1");
      }
      return true;
    }
    return false;
  }

  InvocationResult InvokeTabular(const Invocation& request, const MediaName& in, int label_size,
                                 const AcceptChoice& accept) {
    ml::ContentTypeSpec type;
    switch (in.wire) {
      case Wire::kCsv:
        type.type = ml::ContentType::kCsv;
        break;
      case Wire::kLibSvm:
        type.type = ml::ContentType::kLibSvm;
        break;
      case Wire::kRecordIO:
        type.type = ml::ContentType::kRecordIOProtobuf;
        break;
      default:
        type.type = ml::ContentType::kJsonLines;  // one JSON document or JSON Lines
        break;
    }
    // Inference CSV has no label column; the algorithms' containers honour an explicit
    // label_size=1, XGBoost's reads every column as a feature.
    type.label_size = profile_.family == Family::kTabular ? label_size : 0;
    ml::ReadOptions options;
    options.labeled = type.label_size > 0;
    options.feature_dim = feature_dim_;
    Result<ml::Dataset> batch = ml::ParseRecords(request.body, type, options);
    if (!batch.ok()) return ErrorAnswer(batch.status());
    if (batch->rows == 0) return Answer(400, "The request holds no records");
    batch->labels.clear();

    Result<std::vector<Value>> predictions = std::vector<Value>();
    {
      ModelPool::Lease model = pool_.Acquire();
      if (accept.verbose) {
        auto* knn = dynamic_cast<ml::KnnModel*>(model.get());
        predictions = knn != nullptr ? knn->PredictVerbose(*batch) : model.get()->Predict(*batch);
      } else {
        predictions = model.get()->Predict(*batch);
      }
    }
    if (!predictions.ok()) return ErrorAnswer(predictions.status());
    if (predictions->size() != static_cast<size_t>(batch->rows)) {
      return Answer(500, profile_.algorithm + " returned " + std::to_string(predictions->size()) +
                             " predictions for " + std::to_string(batch->rows) + " records");
    }
    InvocationResult result;
    result.content_type = std::string(accept.media->name);
    if (profile_.family == Family::kXgboost) {
      WriteXgboost(*predictions, accept.media->wire, result.body);
    } else {
      WriteRecords(*predictions, accept.media->wire, result.body);
    }
    return result;
  }

  InvocationResult InvokeText(const Invocation& request, const MediaName& in,
                              const AcceptChoice& accept) {
    std::string_view body = request.body;
    Value parsed;
    std::vector<std::string> sentences;
    switch (in.wire) {
      case Wire::kJson: {
        Result<Value> doc = ParseJson(body);
        if (!doc.ok()) return Answer(400, "The request body is not valid JSON");
        parsed = std::move(doc).value();
        break;
      }
      case Wire::kJsonLines: {
        parsed = Value::MakeList();
        int64_t line = 0;
        for (size_t pos = 0; pos < body.size();) {
          ++line;
          size_t nl = body.find('\n', pos);
          if (nl == std::string_view::npos) nl = body.size();
          std::string_view text = Trim(body.substr(pos, nl - pos));
          pos = nl + 1;
          if (text.empty()) continue;
          Result<Value> doc = ParseJson(text);
          if (!doc.ok()) {
            return Answer(400, "JSON line " + std::to_string(line) + " is not valid JSON");
          }
          parsed.Append(std::move(doc).value());
        }
        if (parsed.size() == 0) return Answer(400, "The request holds no records");
        break;
      }
      default:  // text/plain: one sentence per line
        for (size_t pos = 0; pos < body.size();) {
          size_t nl = body.find('\n', pos);
          if (nl == std::string_view::npos) nl = body.size();
          std::string_view text = Trim(body.substr(pos, nl - pos));
          pos = nl + 1;
          if (!text.empty()) sentences.emplace_back(text);
        }
        if (sentences.empty()) return Answer(400, "The request holds no records");
        break;
    }
    Result<std::vector<Value>> predictions = std::vector<Value>();
    {
      ModelPool::Lease model = pool_.Acquire();
      auto* bt = dynamic_cast<ml::BlazingTextModel*>(model.get());
      if (bt == nullptr) return Answer(500, "the loaded model is not a BlazingText model");
      predictions =
          in.wire == Wire::kText ? bt->PredictText(sentences, 1) : bt->PredictRequest(parsed);
    }
    if (!predictions.ok()) return ErrorAnswer(predictions.status());
    InvocationResult result;
    result.content_type = std::string(accept.media->name);
    std::string& out = result.body;
    if (accept.media->wire == Wire::kJsonLines) {
      for (const Value& p : *predictions) {
        AppendJson(out, p);
        out += '\n';
      }
    } else {
      out += '[';
      for (size_t i = 0; i < predictions->size(); ++i) {
        if (i > 0) out += ", ";
        AppendJson(out, (*predictions)[i]);
      }
      out += ']';
    }
    return result;
  }

  // XGBoost answers the booster's raw predictions: a number per record, or a list of class
  // probabilities (multi:softprob); multi:softmax's class index is a float there.
  static Value XgboostScore(const Value& prediction) {
    if (const Value* score = prediction.Find("score")) return *score;
    if (const Value* label = prediction.Find("predicted_label")) return Value(label->AsDouble());
    return Value();
  }

  void WriteXgboost(const std::vector<Value>& predictions, Wire wire, std::string& out) const {
    out.reserve(predictions.size() * 24 + 32);
    switch (wire) {
      case Wire::kCsv:
        for (const Value& p : predictions) {
          const Value score = XgboostScore(p);
          if (score.is_list()) {
            // savetxt writes a 2-D array row by row; batch transform writes str(list).
            out += batch_ ? "[" : "";
            bool first = true;
            for (const Value& v : score.list()) {
              if (!first) out += batch_ ? ", " : ",";
              first = false;
              AppendCsvNumber(out, v);
            }
            out += batch_ ? "]" : "";
          } else {
            AppendCsvNumber(out, score);
          }
          out += '\n';
        }
        return;
      case Wire::kJson:
        out += "{\"predictions\": [";
        for (size_t i = 0; i < predictions.size(); ++i) {
          if (i > 0) out += ", ";
          out += "{\"score\": ";
          AppendJson(out, XgboostScore(predictions[i]));
          out += '}';
        }
        out += "]}";
        return;
      case Wire::kJsonLines:
        for (const Value& p : predictions) {
          out += "{\"score\": ";
          AppendJson(out, XgboostScore(p));
          out += "}\n";
        }
        return;
      default: {
        std::vector<Value> scores;
        scores.reserve(predictions.size());
        for (const Value& p : predictions)
          scores.push_back(Value::Object({{"score", XgboostScore(p)}}));
        WriteRecordIO(scores, out);
        return;
      }
    }
  }

  void WriteRecords(const std::vector<Value>& predictions, Wire wire, std::string& out) const {
    out.reserve(predictions.size() * 48 + 32);
    switch (wire) {
      case Wire::kJson:
        out += "{\"";
        out += profile_.json_root;
        out += "\": [";
        for (size_t i = 0; i < predictions.size(); ++i) {
          if (i > 0) out += ", ";
          AppendJson(out, predictions[i]);
        }
        out += "]}";
        return;
      case Wire::kJsonLines:
        for (const Value& p : predictions) {
          AppendJson(out, p);
          out += '\n';
        }
        return;
      case Wire::kCsv:
        for (const Value& p : predictions) {
          bool first = true;
          for (std::string_view field : profile_.csv_fields) {
            if (!first) out += ',';
            first = false;
            if (const Value* v = p.Find(field)) AppendCsvNumber(out, *v);
          }
          out += '\n';
        }
        return;
      default:
        WriteRecordIO(predictions, out);
        return;
    }
  }

  // One Record per prediction, every field a Float32Tensor in the label map.
  static void WriteRecordIO(const std::vector<Value>& predictions, std::string& out) {
    std::string payload, tensor, entry;
    std::vector<float> values;
    for (const Value& p : predictions) {
      payload.clear();
      if (p.is_map()) {
        for (const auto& [key, v] : p.map()) {
          values.clear();
          FloatsOf(v, values);
          AppendLabelEntry(payload, key, values, tensor, entry);
        }
      }
      ml::recordio::AppendRecord(payload, &out);
    }
  }

  const Profile profile_;
  ModelPool pool_;
  const int64_t feature_dim_;
  const MediaName* default_accept_;  // points into profile_.accepts
  const bool batch_;                 // SAGEMAKER_BATCH: batch transform's output conventions
};

}  // namespace

Result<std::unique_ptr<InferenceHandler>> MakeBuiltinHandler(const ContainerSpec& spec) {
  ml::RegisterBuiltinAlgorithms();
  const ml::AlgorithmInfo* info = ml::FindAlgorithm(spec.algorithm);
  if (info == nullptr) {
    return Status::Aws("ValidationException", 400,
                       "No built-in algorithm is named '" + spec.algorithm + "'");
  }
  std::optional<Profile> profile = ProfileOf(info->name);
  if (!profile) {
    return Status::Aws("ValidationException", 400,
                       "The built-in algorithm '" + info->name + "' has no model server");
  }
  const auto env = [&spec](const char* name) -> std::string_view {
    auto it = spec.environment.find(name);
    return it == spec.environment.end() ? std::string_view() : std::string_view(it->second);
  };
  if (profile->family == Family::kXgboost && !env("SAGEMAKER_INFERENCE_OUTPUT").empty()) {
    return Status::Aws("ValidationException", 400,
                       "SAGEMAKER_INFERENCE_OUTPUT (XGBoost selectable inference content) is not "
                       "supported; remove it from the container's Environment");
  }
  std::string default_accept(profile->default_accept);
  if (std::string_view configured = Trim(env("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"));
      !configured.empty()) {
    if (FindMedia(profile->accepts, SplitMediaType(configured).type) == nullptr) {
      return Status::Aws("ValidationException", 400,
                         "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT " + Quote(configured) +
                             " is not a type " + info->name +
                             " answers; expected one of: " + ListOf(profile->accepts));
    }
    default_accept = std::string(SplitMediaType(configured).type);
  }
  const bool batch =
      !env("SAGEMAKER_BATCH").empty() && !EqualsIgnoreCase(env("SAGEMAKER_BATCH"), "false");

  const int copies = spec.threads < 1 ? 1 : spec.threads;
  std::vector<std::unique_ptr<ml::Model>> models;
  models.reserve(static_cast<size_t>(copies));
  for (int i = 0; i < copies; ++i) {
    Result<std::unique_ptr<ml::Model>> model = info->load(spec.model_dir);
    if (!model.ok()) {
      const Status& s = model.status();
      return Status::Aws(s.code().empty() ? "ClientError" : s.code(), 400,
                         "Cannot load the " + info->name + " model from " + Quote(spec.model_dir) +
                             ": " + s.message());
    }
    if (*model == nullptr) return Status::Internal(info->name + " loaded no model");
    models.push_back(std::move(model).value());
  }
  return std::unique_ptr<InferenceHandler>(std::make_unique<BuiltinHandler>(
      std::move(*profile), std::move(models), default_accept, batch));
}

}  // namespace nimbus::serving
