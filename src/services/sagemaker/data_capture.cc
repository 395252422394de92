#include "services/sagemaker/data_capture.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <random>
#include <tuple>
#include <utility>

#include "core/ids.h"
#include "core/json.h"
#include "core/logging.h"
#include "core/strings.h"
#include "http/types.h"
#include "objects/transfer.h"

namespace nimbus::services {

namespace capture_internal {
enum class CaptureEncoding { kCsv, kJson, kBase64 };
}  // namespace capture_internal
using capture_internal::CaptureEncoding;

struct DataCaptureWriter::Pending {
  std::string destination;
  bool input = false;
  bool output = false;
  CaptureEncoding input_encoding = CaptureEncoding::kBase64;
  CaptureEncoding output_encoding = CaptureEncoding::kBase64;
  CaptureRecord record;
  size_t bytes = 0;
};

namespace {

// Warnings about one failing bucket (or about overload) at most this often.
constexpr double kWarnIntervalSeconds = 60;
// Queued bytes beyond which new records are dropped: a multiple of max_buffered_bytes, but
// never so little that a small flush threshold alone would make the writer drop records.
constexpr size_t kOverloadFactor = 4;
constexpr size_t kMinOverloadBytes = 32u << 20;
// Per-record bookkeeping beyond the payloads (ids, times, member names).
constexpr size_t kRecordOverhead = 256;

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One generator per thread: Capture runs on request threads and must not contend on a lock
// for its coin toss.
bool Sampled(double percentage) {
  if (percentage >= 100) return true;
  if (!(percentage > 0)) return false;
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   std::hash<std::thread::id>{}(std::this_thread::get_id())};
  return std::uniform_real_distribution<double>(0, 100)(rng) < percentage;
}

// "Text/CSV; charset=utf-8" -> "text/csv".
std::string MediaType(std::string_view content_type) {
  size_t semi = content_type.find(';');
  return ToLower(Trim(content_type.substr(0, semi)));
}

bool Listed(const std::string& media_type, const std::vector<std::string>& types) {
  for (const std::string& t : types) {
    if (MediaType(t) == media_type) return true;
  }
  return false;
}

CaptureEncoding EncodingFor(std::string_view content_type, const CaptureSettings& settings) {
  std::string media = MediaType(content_type);
  if (media.empty()) return CaptureEncoding::kBase64;
  if (Listed(media, settings.csv_content_types)) return CaptureEncoding::kCsv;
  if (Listed(media, settings.json_content_types)) return CaptureEncoding::kJson;
  return CaptureEncoding::kBase64;
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): only such text
// can go into a JSON string as is.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

const char* EncodingName(CaptureEncoding encoding) {
  switch (encoding) {
    case CaptureEncoding::kCsv:
      return "CSV";
    case CaptureEncoding::kJson:
      return "JSON";
    case CaptureEncoding::kBase64:
      return "BASE64";
  }
  return "BASE64";
}

void AppendSide(std::string& out, const char* mode, const std::string& content_type,
                const std::string& data, CaptureEncoding encoding) {
  if (encoding != CaptureEncoding::kBase64 && !IsValidUtf8(data)) {
    encoding = CaptureEncoding::kBase64;
  }
  out += "{\"observedContentType\":";
  AppendJsonString(out, content_type);
  out += ",\"mode\":\"";
  out += mode;
  out += "\",\"data\":";
  if (encoding == CaptureEncoding::kBase64) {
    AppendJsonString(out, Base64Encode(data));
  } else {
    AppendJsonString(out, data);
  }
  out += ",\"encoding\":\"";
  out += EncodingName(encoding);
  out += "\"}";
}

std::tm UtcTime(double epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(std::floor(epoch_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

// 2026-11-26T05:01:02Z: SageMaker's inferenceTime has whole seconds.
std::string InferenceTime(double epoch_seconds) {
  std::tm tm = UtcTime(epoch_seconds);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// <endpoint>/<variant>/yyyy/mm/dd/hh/mm-ss-mmm-<uuid>.jsonl
std::string ObjectName(const std::string& endpoint, const std::string& variant, double first_time) {
  std::tm tm = UtcTime(first_time);
  int millis = static_cast<int>((first_time - std::floor(first_time)) * 1000);
  millis = std::clamp(millis, 0, 999);
  char buf[96];
  std::snprintf(buf, sizeof buf, "/%04d/%02d/%02d/%02d/%02d-%02d-%03d-", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return endpoint + "/" + variant + buf + NewUuid() + ".jsonl";
}

// One line of the capture file, members in SageMaker's order.
std::string CaptureLine(const CaptureRecord& r, bool input, bool output,
                        CaptureEncoding input_encoding, CaptureEncoding output_encoding,
                        size_t bytes) {
  std::string line;
  line.reserve(bytes + bytes / 3);
  line += "{\"captureData\":{";
  if (input) {
    line += "\"endpointInput\":";
    AppendSide(line, "INPUT", r.input_content_type, r.input, input_encoding);
  }
  if (output) {
    if (input) line.push_back(',');
    line += "\"endpointOutput\":";
    AppendSide(line, "OUTPUT", r.output_content_type, r.output, output_encoding);
  }
  line += "},\"eventMetadata\":{\"eventId\":";
  AppendJsonString(line, NewUuid());
  if (!r.inference_id.empty()) {
    line += ",\"inferenceId\":";
    AppendJsonString(line, r.inference_id);
  }
  line += ",\"inferenceTime\":";
  AppendJsonString(line, InferenceTime(r.time));
  line += "},\"eventVersion\":\"0\"}\n";
  return line;
}

// The pattern of CsvContentType / JsonContentType, ^[a-zA-Z0-9](-*[a-zA-Z0-9])*\/
// [a-zA-Z0-9](-*[a-zA-Z0-9.])* — unanchored at the end, so only a type/subtype prefix is
// required: alphanumeric runs joined by dashes, a '/', then an alphanumeric.
bool ContentTypePatternMatches(std::string_view s) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0;
  if (i >= s.size() || !alnum(s[i])) return false;
  ++i;
  while (i < s.size() && s[i] != '/') {
    while (i < s.size() && s[i] == '-') ++i;
    if (i >= s.size() || !alnum(s[i])) return false;
    ++i;
  }
  if (i >= s.size()) return false;  // no '/'
  ++i;
  return i < s.size() && alnum(s[i]);
}

Result<std::vector<std::string>> ContentTypes(const Value& header, const char* member) {
  std::vector<std::string> types;
  const Value* list = header.Find(member);
  if (list == nullptr || list->is_null()) return types;
  std::string name = std::string("DataCaptureConfig.CaptureContentTypeHeader.") + member;
  if (!list->is_list()) return Status::Validation(name + " must be a list of content types");
  if (list->list().empty() || list->list().size() > 10) {
    return Status::Validation(name + " must have between 1 and 10 members");
  }
  for (const Value& v : list->list()) {
    const std::string& t = v.AsString();
    if (!v.is_string() || t.empty() || t.size() > 256 || !ContentTypePatternMatches(t)) {
      return Status::Validation("Value '" + t + "' at '" + name +
                                "' failed to satisfy constraint: Member must be a content type "
                                "(type/subtype) of 1 to 256 characters");
    }
    types.push_back(t);
  }
  return types;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// CaptureSettings

Result<CaptureSettings> CaptureSettings::FromConfig(const Value& config) {
  CaptureSettings s;
  if (config.is_null() || (config.is_map() && config.map().empty())) return s;
  if (!config.is_map()) return Status::Validation("DataCaptureConfig must be a structure");

  s.enabled = config.GetBool("EnableCapture", true);

  const Value* pct = config.Find("InitialSamplingPercentage");
  if (pct == nullptr || pct->is_null()) {
    return Status::Validation("DataCaptureConfig.InitialSamplingPercentage is required");
  }
  if (!pct->is_number() || pct->AsDouble() < 0 || pct->AsDouble() > 100) {
    return Status::Validation(
        "Value at 'DataCaptureConfig.InitialSamplingPercentage' failed to satisfy constraint: "
        "Member must have value between 0 and 100");
  }
  s.sampling_percentage = pct->AsDouble();

  std::string uri = config.GetString("DestinationS3Uri");
  if (uri.empty()) return Status::Validation("DataCaptureConfig.DestinationS3Uri is required");
  if (uri.size() > 512) {
    return Status::Validation(
        "Value at 'DataCaptureConfig.DestinationS3Uri' failed to satisfy constraint: Member "
        "must have length less than or equal to 512");
  }
  if (StartsWith(uri, "https://")) {
    return Status::Validation("DataCaptureConfig.DestinationS3Uri '" + uri +
                              "': Nimbus supports s3://bucket/prefix destinations only");
  }
  auto location = objects::ParseS3Uri(uri);
  if (!location.ok()) {
    return Status::Validation("Value '" + uri +
                              "' at 'DataCaptureConfig.DestinationS3Uri' failed to satisfy "
                              "constraint: Member must be an S3 URI (s3://bucket/prefix)");
  }
  if (Status bucket = objects::ValidateBucketName(location->bucket); !bucket.ok()) {
    return Status::Validation("DataCaptureConfig.DestinationS3Uri '" + uri +
                              "' names an invalid bucket: " + bucket.message());
  }
  s.destination = uri;

  const Value* options = config.Find("CaptureOptions");
  if (options == nullptr || options->is_null()) {
    return Status::Validation("DataCaptureConfig.CaptureOptions is required");
  }
  if (!options->is_list() || options->list().empty() || options->list().size() > 32) {
    return Status::Validation(
        "Value at 'DataCaptureConfig.CaptureOptions' failed to satisfy constraint: Member must "
        "be a list of 1 to 32 CaptureOption structures");
  }
  s.capture_input = false;
  s.capture_output = false;
  for (const Value& option : options->list()) {
    std::string mode = option.GetString("CaptureMode");
    if (mode == "Input") {
      s.capture_input = true;
    } else if (mode == "Output") {
      s.capture_output = true;
    } else if (mode == "InputAndOutput") {
      s.capture_input = s.capture_output = true;
    } else {
      return Status::Validation("Value '" + mode +
                                "' at 'DataCaptureConfig.CaptureOptions.CaptureMode' failed to "
                                "satisfy constraint: Member must satisfy enum value set: "
                                "[Input, Output, InputAndOutput]");
    }
  }

  // Without the header AWS base64-encodes everything (API reference, DataCaptureConfig).
  s.csv_content_types.clear();
  s.json_content_types.clear();
  if (const Value* header = config.Find("CaptureContentTypeHeader");
      header != nullptr && !header->is_null()) {
    if (!header->is_map()) {
      return Status::Validation("DataCaptureConfig.CaptureContentTypeHeader must be a structure");
    }
    NIMBUS_ASSIGN_OR_RETURN(s.csv_content_types, ContentTypes(*header, "CsvContentTypes"));
    NIMBUS_ASSIGN_OR_RETURN(s.json_content_types, ContentTypes(*header, "JsonContentTypes"));
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// DataCaptureWriter

DataCaptureWriter::DataCaptureWriter(objects::ObjectStore& objects, DataCaptureOptions options)
    : objects_(objects),
      options_(options),
      overload_bytes_(std::max(kOverloadFactor * options.max_buffered_bytes, kMinOverloadBytes)) {
  thread_ = std::thread([this] { Run(); });
}

DataCaptureWriter::~DataCaptureWriter() { Stop(); }

void DataCaptureWriter::Capture(const CaptureSettings& settings, CaptureRecord record) {
  if (!settings.enabled || (!settings.capture_input && !settings.capture_output)) return;
  if (!Sampled(settings.sampling_percentage)) return;

  Pending p;
  p.destination = settings.destination;
  p.input = settings.capture_input;
  p.output = settings.capture_output;
  if (p.input) p.input_encoding = EncodingFor(record.input_content_type, settings);
  if (p.output) p.output_encoding = EncodingFor(record.output_content_type, settings);
  if (!(record.time > 0)) record.time = WallSeconds();
  p.bytes = kRecordOverhead + record.inference_id.size() + record.endpoint.size() +
            record.variant.size() + (p.input ? record.input.size() : 0) +
            (p.output ? record.output.size() : 0);
  // Only what goes into the line is kept in memory.
  if (!p.input) record.input.clear();
  if (!p.output) record.output.clear();
  p.record = std::move(record);

  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      if (!warned_after_stop_) {
        warned_after_stop_ = true;
        Log(LogLevel::kWarn, "data_capture_after_stop",
            {{"endpoint", p.record.endpoint}, {"message", "capture writer stopped; dropped"}});
      }
      return;
    }
    if (queued_bytes_ + p.bytes > overload_bytes_ && !queue_.empty()) {
      ++overload_dropped_;
      double now = SteadySeconds();
      if (now - overload_warned_at_ >= kWarnIntervalSeconds) {
        overload_warned_at_ = now;
        Log(LogLevel::kWarn, "data_capture_overloaded",
            {{"dropped_records", overload_dropped_},
             {"queued_bytes", static_cast<uint64_t>(queued_bytes_)},
             {"message", "the object store is behind; captured records are being dropped"}});
      }
      return;
    }
    queued_bytes_ += p.bytes;
    queue_.push_back(std::move(p));
    ++enqueued_;
    wake = queued_bytes_ >= options_.max_buffered_bytes;
  }
  if (wake) wake_.notify_one();
}

void DataCaptureWriter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = enqueued_;
  if (handled_ >= target || exited_) return;
  flush_requested_ = true;
  wake_.notify_one();
  written_.wait(lock, [&] { return handled_ >= target || exited_; });
}

void DataCaptureWriter::Stop() {
  std::call_once(stop_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  });
}

void DataCaptureWriter::Run() {
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::max(options_.flush_seconds, 0.001)));
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto deadline = std::chrono::steady_clock::now() + interval;
    wake_.wait_until(lock, deadline, [&] {
      return stopping_ || flush_requested_ || queued_bytes_ >= options_.max_buffered_bytes;
    });
    std::vector<Pending> batch;
    batch.swap(queue_);
    uint64_t upto = enqueued_;
    queued_bytes_ = 0;
    flush_requested_ = false;
    bool stop = stopping_;
    lock.unlock();
    if (!batch.empty()) WriteBatch(batch);
    lock.lock();
    handled_ = upto;
    written_.notify_all();
    // Capture refuses records once stopping_ is set, so this batch was the last.
    if (stop) break;
  }
  exited_ = true;
  written_.notify_all();
}

void DataCaptureWriter::WriteBatch(std::vector<Pending>& batch) {
  // One object per destination, endpoint, variant and UTC hour, records in capture order.
  using Group = std::tuple<std::string, std::string, std::string, int64_t>;
  std::map<Group, std::vector<const Pending*>> groups;
  for (const Pending& p : batch) {
    auto hour = static_cast<int64_t>(std::floor(p.record.time / 3600));
    groups[Group{p.destination, p.record.endpoint, p.record.variant, hour}].push_back(&p);
  }
  for (const auto& [group, records] : groups) {
    const std::string& destination = std::get<0>(group);
    auto location = objects::ParseS3Uri(destination);
    if (!location.ok()) {
      ReportFailure(destination, "", records.size(), location.status());
      continue;
    }
    std::string prefix = location->key;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    double first = records.front()->record.time;
    for (const Pending* p : records) first = std::min(first, p->record.time);
    std::string key = ObjectName(std::get<1>(group), std::get<2>(group), first);
    if (!prefix.empty()) key = prefix + "/" + key;

    std::string body;
    for (const Pending* p : records) {
      body += CaptureLine(p->record, p->input, p->output, p->input_encoding, p->output_encoding,
                          p->bytes);
    }
    objects::PutOptions put;
    put.content_length = body.size();
    http::StringBodyReader reader(std::move(body));
    auto written = objects_.PutObject(location->bucket, key, reader, put);
    if (!written.ok()) {
      ReportFailure(location->bucket, key, records.size(), written.status());
      continue;
    }
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "data_capture_written",
          {{"bucket", location->bucket},
           {"key", key},
           {"records", static_cast<uint64_t>(records.size())}});
    }
  }
}

void DataCaptureWriter::ReportFailure(const std::string& bucket, const std::string& key,
                                      size_t records, const Status& status) {
  // A missing bucket fails every flush: one warning a minute per bucket, with the count.
  FailureLog& log = failures_[bucket];
  log.suppressed_records += records;
  double now = SteadySeconds();
  if (now - log.warned_at < kWarnIntervalSeconds) return;
  Log(LogLevel::kWarn, "data_capture_write_failed",
      {{"bucket", bucket},
       {"key", key},
       {"dropped_records", log.suppressed_records},
       {"error", status.ToString()}});
  log.warned_at = now;
  log.suppressed_records = 0;
}

}  // namespace nimbus::services
