// The training/inference data readers: content types, CSV, libsvm, JSON Lines and
// RecordIO-protobuf (decoded from bytes laid out exactly as sagemaker-python-sdk writes them,
// and encoded back to the same bytes), channels of several files, gzip, pipe mode, and the
// ClientErrors that name the file and line or record of bad data.
#include "ml/dataset_readers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "ml/recordio_protobuf.h"

namespace nimbus::ml {
namespace {

using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

ContentTypeSpec Spec(ContentType type, int label_size = 1) {
  ContentTypeSpec spec;
  spec.type = type;
  spec.label_size = label_size;
  return spec;
}

ReadOptions Labeled(bool labeled = true, int64_t feature_dim = 0) {
  ReadOptions options;
  options.labeled = labeled;
  options.feature_dim = feature_dim;
  return options;
}

Result<Dataset> Csv(std::string_view data, ReadOptions options = Labeled()) {
  return ParseRecords(data, Spec(ContentType::kCsv), options);
}
Result<Dataset> LibSvm(std::string_view data, ReadOptions options = Labeled()) {
  return ParseRecords(data, Spec(ContentType::kLibSvm), options);
}
Result<Dataset> Json(std::string_view data, ReadOptions options = Labeled()) {
  return ParseRecords(data, Spec(ContentType::kJsonLines), options);
}
Result<Dataset> RecordIO(std::string_view data, ReadOptions options = Labeled()) {
  return ParseRecords(data, Spec(ContentType::kRecordIOProtobuf), options);
}

// The ClientError message of a failed read ("" when it did not fail, so the test shows it).
template <typename T>
std::string ErrorOf(const Result<T>& r) {
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), "ClientError");
  EXPECT_EQ(r.status().http_status(), 400);
  return r.status().message();
}

std::vector<float> Row(const Dataset& d, int64_t r) {
  std::vector<float> out;
  for (int64_t c = 0; c < d.cols; ++c) out.push_back(d.At(r, c));
  return out;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nimbus-readers-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, std::string_view content) const {
    std::string file = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(file).parent_path());
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

 private:
  std::string path_;
};

std::string Gzip(std::string_view data) {
  z_stream z{};
  EXPECT_EQ(
      deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
      Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Content types

TEST(ContentTypeTest, ParsesTheFourFormatsAndLabelSize) {
  auto csv = ParseContentType("text/csv");
  ASSERT_TRUE(csv.ok());
  EXPECT_EQ(csv->type, ContentType::kCsv);
  EXPECT_EQ(csv->label_size, 1);

  auto no_label = ParseContentType("Text/CSV; label_size=0 ; charset=utf-8");
  ASSERT_TRUE(no_label.ok());
  EXPECT_EQ(no_label->type, ContentType::kCsv);
  EXPECT_EQ(no_label->label_size, 0);

  for (const char* mime : {"text/libsvm", "text/x-libsvm", "application/x-libsvm"}) {
    auto spec = ParseContentType(mime);
    ASSERT_TRUE(spec.ok()) << mime;
    EXPECT_EQ(spec->type, ContentType::kLibSvm) << mime;
  }
  auto rec = ParseContentType("application/x-recordio-protobuf");
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->type, ContentType::kRecordIOProtobuf);
  for (const char* mime : {"application/jsonlines", "application/json"}) {
    auto spec = ParseContentType(mime);
    ASSERT_TRUE(spec.ok()) << mime;
    EXPECT_EQ(spec->type, ContentType::kJsonLines) << mime;
  }
}

TEST(ContentTypeTest, RejectsUnknownTypesAndLabelSizes) {
  EXPECT_THAT(ErrorOf(ParseContentType("image/png")), HasSubstr("'image/png' is not supported"));
  EXPECT_THAT(ErrorOf(ParseContentType("")), HasSubstr("is not supported"));
  EXPECT_THAT(ErrorOf(ParseContentType("text/csv;label_size=2")),
              HasSubstr("label_size '2' is not supported"));
  EXPECT_THAT(ErrorOf(ParseContentType("text/csv;label_size=x")), HasSubstr("label_size 'x'"));
}

// ---------------------------------------------------------------------------------------------
// CSV

TEST(CsvReaderTest, LabelIsTheFirstColumn) {
  auto d = Csv("1,2.5,3\n0,-4,5e-1\n");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_FALSE(d->sparse);
  EXPECT_EQ(d->rows, 2);
  EXPECT_EQ(d->cols, 2);
  EXPECT_EQ(d->labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(d->values, (std::vector<float>{2.5f, 3, -4, 0.5f}));
}

TEST(CsvReaderTest, UnlabeledOrLabelSizeZeroKeepsEveryColumn) {
  auto inference = Csv("1,2,3\n4,5,6", Labeled(false));
  ASSERT_TRUE(inference.ok());
  EXPECT_EQ(inference->cols, 3);
  EXPECT_FALSE(inference->has_labels());
  EXPECT_EQ(inference->values, (std::vector<float>{1, 2, 3, 4, 5, 6}));

  auto no_label = ParseRecords("1,2,3\n", Spec(ContentType::kCsv, 0), Labeled(true));
  ASSERT_TRUE(no_label.ok());
  EXPECT_EQ(no_label->cols, 3);
  EXPECT_FALSE(no_label->has_labels());
}

TEST(CsvReaderTest, ToleratesBlankLinesCrlfSpacesQuotesAndBom) {
  auto d = Csv("\xEF\xBB\xBF 1 , 2\r\n\r\n   \n\"0\",\"+3.5\"\n\n2,\"4\"  ");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->rows, 3);
  EXPECT_EQ(d->cols, 1);
  EXPECT_EQ(d->labels, (std::vector<float>{1, 0, 2}));
  EXPECT_EQ(d->values, (std::vector<float>{2, 3.5f, 4}));
}

TEST(CsvReaderTest, EmptyCellIsAMissingValue) {
  auto d = Csv("1,,2\n0,3,\n");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(std::isnan(d->At(0, 0)));
  EXPECT_EQ(d->At(0, 1), 2);
  EXPECT_EQ(d->At(1, 0), 3);
  EXPECT_TRUE(std::isnan(d->At(1, 1)));
}

TEST(CsvReaderTest, ColumnCountMismatchNamesFileAndLine) {
  TempDir dir;
  std::string path = dir.Write("train.csv", "1,2,3\n0,4,5\n\n1,6\n");
  auto d = ReadFile(path, Spec(ContentType::kCsv), Labeled());
  EXPECT_EQ(ErrorOf(d), "CSV line 4 of train.csv has 2 columns, expected 3");

  auto wide = Csv("1,2,3\n", Labeled(true, 3));
  EXPECT_EQ(ErrorOf(wide), "CSV line 1 has 3 columns, expected 4 (the label and 3 features)");
}

TEST(CsvReaderTest, NonNumericCellNamesLineAndColumn) {
  EXPECT_EQ(ErrorOf(Csv("1,2,3\n0,abc,5\n")), "CSV line 2, column 2: 'abc' is not a number");
  EXPECT_EQ(ErrorOf(Csv("1,2,3\n0,4,5x\n")), "CSV line 2, column 3: '5x' is not a number");
  EXPECT_EQ(ErrorOf(Csv("yes,2\n")), "CSV line 1, column 1: 'yes' is not a number");
  EXPECT_THAT(ErrorOf(Csv("1,\"2\n")), HasSubstr("CSV line 1, column 2: unterminated quoted"));
  EXPECT_THAT(ErrorOf(Csv("1,\"2\"x\n")), HasSubstr("unexpected text after a quoted cell"));
  EXPECT_EQ(ErrorOf(Csv(",2\n")), "CSV line 1: the label (column 1) is empty");
  EXPECT_EQ(ErrorOf(Csv("nan,2\n")), "CSV line 1: the label is not a finite number");
  EXPECT_THAT(ErrorOf(Csv("1,1e999\n")), HasSubstr("'1e999' is out of range"));
}

TEST(CsvReaderTest, ParsesTensOfMegabytesPerSecond) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-100, 100);
  std::string csv;
  char cell[32];
  while (csv.size() < 8 * 1000 * 1000) {
    csv += std::to_string(rng() % 2);
    for (int c = 0; c < 20; ++c) {
      std::snprintf(cell, sizeof(cell), ",%.6g", u(rng));
      csv += cell;
    }
    csv += '\n';
  }
  auto start = std::chrono::steady_clock::now();
  auto d = Csv(csv);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cols, 20);
  double mb_per_s = static_cast<double>(csv.size()) / 1e6 / seconds;
  RecordProperty("csv_mb_per_s", std::to_string(mb_per_s));
  // Measured around 100 MB/s on one core; the margin absorbs a busy machine.
  EXPECT_GT(mb_per_s, 10) << "CSV parsing is slow: " << mb_per_s << " MB/s";
}

// ---------------------------------------------------------------------------------------------
// libsvm

TEST(LibSvmReaderTest, ReadsSparseRowsWithIndicesAsGiven) {
  auto d = LibSvm("1 1:0.5 3:2\n0 qid:7 2:-1  # a comment\n\n1 0:4\n");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->sparse);
  EXPECT_EQ(d->rows, 3);
  EXPECT_EQ(d->cols, 4);  // max index 3 + 1: index 0 is a feature too
  EXPECT_EQ(d->labels, (std::vector<float>{1, 0, 1}));
  EXPECT_EQ(d->indptr, (std::vector<int64_t>{0, 2, 3, 4}));
  EXPECT_EQ(Row(*d, 0), (std::vector<float>{0, 0.5f, 0, 2}));
  EXPECT_EQ(Row(*d, 1), (std::vector<float>{0, 0, -1, 0}));
  EXPECT_EQ(Row(*d, 2), (std::vector<float>{4, 0, 0, 0}));
  EXPECT_TRUE(d->weights.empty());
}

TEST(LibSvmReaderTest, SortsUnorderedRowsAndReadsWeights) {
  auto d = LibSvm("1 5:1 2:2\n0:0.25 1:3\r\n");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->indices, (std::vector<int64_t>{2, 5, 1}));
  EXPECT_EQ(d->values, (std::vector<float>{2, 1, 3}));
  EXPECT_EQ(d->labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(d->weights, (std::vector<float>{1, 0.25f}));  // unweighted rows weigh 1
}

TEST(LibSvmReaderTest, UnlabeledDataMayOmitOrCarryALabel) {
  auto d = LibSvm("3:1 4:2\n0 1:5\n", Labeled(false));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_FALSE(d->has_labels());
  EXPECT_EQ(Row(*d, 0), (std::vector<float>{0, 0, 0, 1, 2}));
  EXPECT_EQ(Row(*d, 1), (std::vector<float>{0, 5, 0, 0, 0}));
}

TEST(LibSvmReaderTest, FeatureDimFixesTheWidth) {
  auto d = LibSvm("1 1:1\n", Labeled(true, 10));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cols, 10);
  EXPECT_EQ(ErrorOf(LibSvm("1 1:1\n0 10:1\n", Labeled(true, 10))),
            "libsvm line 2: feature index 10 is out of range: expected 10 features (indices 0 "
            "to 9)");
}

TEST(LibSvmReaderTest, MalformedLinesNameTheLine) {
  TempDir dir;
  std::string path = dir.Write("data.libsvm", "1 1:1\n0 x:2\n");
  EXPECT_EQ(ErrorOf(ReadFile(path, Spec(ContentType::kLibSvm), Labeled())),
            "libsvm line 2 of data.libsvm: the feature index 'x' is not a non-negative integer");
  EXPECT_EQ(ErrorOf(LibSvm("1 -1:2\n")),
            "libsvm line 1: the feature index '-1' is not a non-negative integer");
  EXPECT_EQ(ErrorOf(LibSvm("1 2:z\n")),
            "libsvm line 1: the value 'z' of feature 2 is not a number");
  EXPECT_EQ(ErrorOf(LibSvm("1 7\n")), "libsvm line 1: '7' is not an index:value pair");
  EXPECT_EQ(ErrorOf(LibSvm("\nspam 1:2\n")), "libsvm line 2: the label 'spam' is not a number");
  EXPECT_EQ(ErrorOf(LibSvm("1 3:1 3:2\n")), "libsvm line 1: feature index 3 appears twice");
  EXPECT_THAT(ErrorOf(LibSvm("1:-2 3:1\n")), HasSubstr("the weight '-2' is not a non-negative"));
}

// ---------------------------------------------------------------------------------------------
// JSON Lines and application/json

TEST(JsonReaderTest, ReadsJsonLinesWithLabels) {
  auto d =
      Json("{\"features\": [1, 2.5], \"label\": 1}\n\n{\"features\": [3, 4], \"label\": [0]}\n");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_FALSE(d->sparse);
  EXPECT_EQ(d->cols, 2);
  EXPECT_EQ(d->values, (std::vector<float>{1, 2.5f, 3, 4}));
  EXPECT_EQ(d->labels, (std::vector<float>{1, 0}));
}

TEST(JsonReaderTest, ReadsTheRequestShapes) {
  // application/json as SageMaker's algorithms accept it, pretty-printed over several lines.
  auto instances = Json(R"({
    "instances": [
      {"features": [1.5, 16.0]},
      {"data": {"features": {"values": [2, 3]}}}
    ]
  })",
                        Labeled(false));
  ASSERT_TRUE(instances.ok()) << instances.status().message();
  EXPECT_EQ(instances->rows, 2);
  EXPECT_EQ(instances->values, (std::vector<float>{1.5f, 16, 2, 3}));
  EXPECT_FALSE(instances->has_labels());

  auto lines =
      Json("{\"data\": {\"features\": {\"values\": [1, 2, 3]}}}\n[4, 5, 6]\n", Labeled(false));
  ASSERT_TRUE(lines.ok()) << lines.status().message();
  EXPECT_EQ(lines->rows, 2);
  EXPECT_EQ(Row(*lines, 1), (std::vector<float>{4, 5, 6}));
}

TEST(JsonReaderTest, SparseFeaturesWithKeysAndShape) {
  auto d = Json(
      R"({"data": {"features": {"keys": [4, 1], "shape": [6], "values": [2, 1]}}, "label": 1}
{"data": {"features": {"keys": [], "shape": [6], "values": []}, "label": {"values": [0]}}}
)");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->sparse);
  EXPECT_EQ(d->cols, 6);
  EXPECT_EQ(Row(*d, 0), (std::vector<float>{0, 1, 0, 0, 2, 0}));
  EXPECT_EQ(Row(*d, 1), (std::vector<float>(6, 0)));
  EXPECT_EQ(d->labels, (std::vector<float>{1, 0}));
}

TEST(JsonReaderTest, ErrorsNameTheLine) {
  EXPECT_THAT(ErrorOf(Json("{\"features\": [1], \"label\": 1}\n{\"features\": [1,\n")),
              HasSubstr("JSON line 2 is not valid JSON"));
  EXPECT_EQ(ErrorOf(Json("{\"features\": [1]}\n")), "JSON line 1 has no label");
  EXPECT_EQ(ErrorOf(Json("{\"label\": 1}\n")),
            "JSON line 1 has no 'features' (expected {\"features\": [...]})");
  EXPECT_EQ(ErrorOf(Json("{\"features\": [1, \"a\"], \"label\": 1}")),
            "JSON line 1: 'features' must hold only numbers, found '\"a\"'");
  EXPECT_EQ(ErrorOf(Json("{\"features\": [1, 2]}\n{\"features\": [1]}\n", Labeled(false))),
            "JSON line 2 has 1 features, expected 2 as in the first dense record");
  EXPECT_EQ(ErrorOf(Json("{\"instances\": [{\"features\": [1]}, {\"x\": 1}]}", Labeled(false))),
            "JSON instance 2 has no 'features' (expected {\"features\": [...]})");
}

// ---------------------------------------------------------------------------------------------
// RecordIO-protobuf

// sagemaker-python-sdk's write_numpy_to_dense_tensor(f, np.array([[1.5, 2.0]], "float32"),
// np.array([1.0], "float32")): one Record, serialized field by field (tag = field << 3 | wire
// type 2 for every message here), framed by _write_recordio.
const std::string kDenseGolden = Bytes({
    0x0a, 0x23, 0xd7, 0xce,                        // magic 0xced7230a, little-endian
    0x2c, 0x00, 0x00, 0x00,                        // length 44, continuation flag 0
    0x0a, 0x16,                                    // Record.features (1): a map entry of 22 bytes
    0x0a, 0x06, 'v',  'a',  'l',  'u',  'e', 's',  // entry key (1) "values"
    0x12, 0x0c,                                    // entry value (2): a Value of 12 bytes
    0x12, 0x0a,                                    // Value.float32_tensor (2): 10 bytes
    0x0a, 0x08,                                    // Float32Tensor.values (1), packed: 8 bytes
    0x00, 0x00, 0xc0, 0x3f,                        // 1.5f
    0x00, 0x00, 0x00, 0x40,                        // 2.0f
    0x12, 0x12,                                    // Record.label (2): a map entry of 18 bytes
    0x0a, 0x06, 'v',  'a',  'l',  'u',  'e', 's',  // key "values"
    0x12, 0x08, 0x12, 0x06,                        // Value { float32_tensor { ... } }
    0x0a, 0x04, 0x00, 0x00, 0x80, 0x3f,            // values: [1.0f]
                                                   // 44 is a multiple of 4: no padding
});

// write_spmatrix_to_sparse_tensor(f, scipy.sparse.csr_matrix(x)) for the float32 1 x 10 row
// with x[0, 3] = 5 and no labels: values, keys and shape [n_cols] of the row.
const std::string kSparseGolden = Bytes({
    0x0a, 0x23, 0xd7, 0xce,                        // magic
    0x1a, 0x00, 0x00, 0x00,                        // length 26
    0x0a, 0x18,                                    // features: an entry of 24 bytes
    0x0a, 0x06, 'v',  'a',  'l',  'u',  'e', 's',  // key "values"
    0x12, 0x0e, 0x12, 0x0c,                        // Value { float32_tensor (12 bytes) {
    0x0a, 0x04, 0x00, 0x00, 0xa0, 0x40,            //   values: [5.0f]
    0x12, 0x01, 0x03,                              //   keys (2): [3], packed varints
    0x1a, 0x01, 0x0a,                              //   shape (3): [10] } }
    0x00, 0x00,                                    // padding to a multiple of 4
});

// write_numpy_to_dense_tensor(f, np.array([[1, -1]]), np.array([1.0])): numpy's default int and
// float dtypes become an Int32Tensor (Value field 7; -1 is a 10-byte sign-extended varint) and
// a Float64Tensor label (Value field 3).
const std::string kInt32FeaturesFloat64LabelGolden = Bytes({
    0x0a, 0x23, 0xd7, 0xce,                         // magic
    0x33, 0x00, 0x00, 0x00,                         // length 51
    0x0a, 0x19,                                     // features: an entry of 25 bytes
    0x0a, 0x06, 'v',  'a',  'l',  'u',  'e',  's',  // key
    0x12, 0x0f, 0x3a, 0x0d,                         // Value { int32_tensor (7), 13 bytes {
    0x0a, 0x0b, 0x01,                               //   values: [1,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,  // -1] } }
    0x12, 0x16,                                                  // label: an entry of 22 bytes
    0x0a, 0x06, 'v',  'a',  'l',  'u',  'e',  's',               // key
    0x12, 0x0c, 0x1a, 0x0a,  // Value { float64_tensor (3), 10 bytes {
    0x0a, 0x08, 0,    0,    0,    0,    0,    0,    0xf0, 0x3f,  //   values: [1.0] } }
    0x00,                                                        // padding
});

TEST(RecordIOReaderTest, DecodesTheSdksDenseRecord) {
  auto d = RecordIO(kDenseGolden);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_FALSE(d->sparse);
  EXPECT_EQ(d->rows, 1);
  EXPECT_EQ(d->cols, 2);
  EXPECT_EQ(d->values, (std::vector<float>{1.5f, 2.0f}));
  EXPECT_EQ(d->labels, (std::vector<float>{1.0f}));
}

TEST(RecordIOReaderTest, DecodesTheSdksSparseRecord) {
  auto d = RecordIO(kSparseGolden, Labeled(false));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->sparse);
  EXPECT_EQ(d->cols, 10);
  EXPECT_EQ(d->indices, (std::vector<int64_t>{3}));
  EXPECT_EQ(d->values, (std::vector<float>{5}));
  EXPECT_FALSE(d->has_labels());
}

TEST(RecordIOReaderTest, DecodesInt32FeaturesAndFloat64Labels) {
  auto d = RecordIO(kInt32FeaturesFloat64LabelGolden);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->values, (std::vector<float>{1, -1}));
  EXPECT_EQ(d->labels, (std::vector<float>{1}));
}

TEST(RecordIOWriterTest, WritesTheSdksBytes) {
  Dataset dense;
  dense.rows = 1;
  dense.cols = 2;
  dense.values = {1.5f, 2.0f};
  dense.labels = {1.0f};
  EXPECT_EQ(WriteRecordIOProtobuf(dense), kDenseGolden);

  Dataset sparse;
  sparse.rows = 1;
  sparse.cols = 10;
  sparse.sparse = true;
  sparse.indptr = {0, 1};
  sparse.indices = {3};
  sparse.values = {5};
  EXPECT_EQ(WriteRecordIOProtobuf(sparse), kSparseGolden);
}

TEST(RecordIOWriterTest, DenseRoundTrip) {
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0, 3);
  Dataset d;
  d.rows = 50;
  d.cols = 7;
  for (int i = 0; i < 50 * 7; ++i) d.values.push_back(i % 5 == 0 ? 0.0f : n(rng));
  for (int i = 0; i < 50; ++i) d.labels.push_back(static_cast<float>(i % 3));
  auto back = RecordIO(WriteRecordIOProtobuf(d));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_FALSE(back->sparse);
  EXPECT_EQ(back->rows, 50);
  EXPECT_EQ(back->cols, 7);
  EXPECT_EQ(back->values, d.values);
  EXPECT_EQ(back->labels, d.labels);

  d.labels.clear();
  auto unlabeled = RecordIO(WriteRecordIOProtobuf(d), Labeled(false));
  ASSERT_TRUE(unlabeled.ok());
  EXPECT_EQ(unlabeled->values, d.values);
  EXPECT_FALSE(unlabeled->has_labels());
}

TEST(RecordIOWriterTest, SparseRoundTripKeepsEmptyRowsAndWidth) {
  Dataset d;
  d.sparse = true;
  d.rows = 3;
  d.cols = 100000;  // multi-byte varints in keys and shape
  d.indptr = {0, 2, 2, 5};
  d.indices = {0, 99999, 5, 200, 70000};
  d.values = {1, 2, 3, 4, 5};
  auto back = RecordIO(WriteRecordIOProtobuf(d), Labeled(false));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->sparse);
  EXPECT_EQ(back->rows, 3);
  EXPECT_EQ(back->cols, 100000);
  EXPECT_EQ(back->indptr, d.indptr);
  EXPECT_EQ(back->indices, d.indices);
  EXPECT_EQ(back->values, d.values);
}

TEST(RecordIOWriterTest, SplitsAroundAnEmbeddedMagicNumberAsDmlcDoes) {
  // A float whose bits are the magic number lands at payload offset 16, 4-aligned: the writer
  // must split the record there (dmlc's chunked readers resynchronise on the magic).
  float magic_float;
  std::memcpy(&magic_float, &recordio::kMagic, 4);
  Dataset d;
  d.rows = 1;
  d.cols = 2;
  d.values = {magic_float, 1.0f};
  std::string bytes = WriteRecordIOProtobuf(d);
  // [magic][flag 1, 16 bytes][16 bytes][magic][flag 3, 4 bytes][1.0f]
  ASSERT_EQ(bytes.size(), 8u + 16 + 8 + 4);
  uint32_t first, second;
  std::memcpy(&first, bytes.data() + 4, 4);
  std::memcpy(&second, bytes.data() + 28, 4);
  EXPECT_EQ(first, (1u << 29) | 16);
  EXPECT_EQ(second, (3u << 29) | 4);
  auto back = RecordIO(bytes, Labeled(false));
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->values.size(), 2u);
  EXPECT_EQ(std::memcmp(&back->values[0], &recordio::kMagic, 4), 0);
  EXPECT_EQ(back->values[1], 1.0f);
}

TEST(RecordIOReaderTest, SkipsUidMetadataAndOtherFeatures) {
  // The dense golden payload plus uid (3) "abc" and a features entry keyed "other".
  std::string payload =
      kDenseGolden.substr(8) + Bytes({0x1a, 0x03, 'a', 'b', 'c'}) +
      Bytes({0x0a, 0x0b, 0x0a, 0x05, 'o', 't', 'h', 'e', 'r', 0x12, 0x02, 0x12, 0x00});
  std::string framed;
  recordio::AppendRecord(payload, &framed);
  auto d = RecordIO(framed);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->values, (std::vector<float>{1.5f, 2.0f}));
}

TEST(RecordIOReaderTest, BadFramingNamesTheRecord) {
  TempDir dir;
  std::string bad_magic = kDenseGolden + kDenseGolden;
  bad_magic[44 + 8] = 0x0b;
  std::string path = dir.Write("train.rec", bad_magic);
  EXPECT_EQ(ErrorOf(ReadFile(path, Spec(ContentType::kRecordIOProtobuf), Labeled())),
            "RecordIO record 2 of train.rec: bad magic number 0xced7230b at byte offset 52, "
            "expected 0xced7230a");

  std::string truncated = kDenseGolden + kDenseGolden.substr(0, 30);
  EXPECT_EQ(ErrorOf(RecordIO(truncated)),
            "RecordIO record 2: truncated: the header at byte offset 52 announces 44 bytes, 22 "
            "remain");
  EXPECT_THAT(ErrorOf(RecordIO(kDenseGolden + "\x0a\x23")),
              HasSubstr("RecordIO record 2: truncated: 2 bytes at byte offset 52"));
}

TEST(RecordIOReaderTest, BadPayloadsNameTheRecord) {
  std::string framed;
  recordio::AppendRecord(Bytes({0x0a, 0x30, 0x0a}), &framed);  // an entry longer than the record
  EXPECT_EQ(ErrorOf(RecordIO(kDenseGolden + framed)),
            "RecordIO record 2: malformed protobuf Record: truncated features");

  // features {"values": Value { bytes (9) {} }}
  std::string bytes_value;
  recordio::AppendRecord(
      Bytes({0x0a, 0x0c, 0x0a, 0x06, 'v', 'a', 'l', 'u', 'e', 's', 0x12, 0x02, 0x4a, 0x00}),
      &bytes_value);
  EXPECT_THAT(ErrorOf(RecordIO(bytes_value)), HasSubstr("Bytes values are not supported"));

  std::string no_features;
  recordio::AppendRecord(Bytes({0x1a, 0x01, 'x'}), &no_features);
  EXPECT_EQ(ErrorOf(RecordIO(no_features)), "RecordIO record 1 has no 'values' feature");

  // The sparse golden record has no label: a supervised read refuses it.
  EXPECT_EQ(ErrorOf(RecordIO(kSparseGolden)), "RecordIO record 1 has no label");

  Dataset wide;
  wide.rows = 1;
  wide.cols = 3;
  wide.values = {1, 2, 3};
  EXPECT_EQ(ErrorOf(RecordIO(kDenseGolden + WriteRecordIOProtobuf(wide), Labeled(false))),
            "RecordIO record 2 has 3 features, expected 2 as in the first dense record");
  EXPECT_EQ(ErrorOf(RecordIO(kSparseGolden, Labeled(false, 5))),
            "RecordIO record 1 has shape 10, expected 5 features");
  EXPECT_EQ(ErrorOf(RecordIO(kSparseGolden, Labeled(false, 3))),
            "RecordIO record 1: feature index 3 is out of range: expected 3 features (indices 0 "
            "to 2)");
}

TEST(RecordIOReaderTest, MixedDenseAndSparseRecordsBecomeSparse) {
  auto d = RecordIO(WriteRecordIOProtobuf([] {
                      Dataset dense;
                      dense.rows = 1;
                      dense.cols = 10;
                      dense.values = {1, 0, 0, 0, 0, 0, 0, 0, 0, 2};
                      return dense;
                    }()) +
                        kSparseGolden,
                    Labeled(false));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->sparse);
  EXPECT_EQ(d->cols, 10);
  EXPECT_EQ(Row(*d, 0), (std::vector<float>{1, 0, 0, 0, 0, 0, 0, 0, 0, 2}));
  EXPECT_EQ(Row(*d, 1), (std::vector<float>{0, 0, 0, 5, 0, 0, 0, 0, 0, 0}));
}

// ---------------------------------------------------------------------------------------------
// Channels and files

TEST(ReadChannelTest, ConcatenatesFilesInPathOrder) {
  TempDir dir;
  dir.Write("b/part-2.csv", "0,5,6\n");
  dir.Write("a.csv", "1,1,2\n0,3,4\n");
  dir.Write(".hidden.csv", "garbage\n");
  Channel channel{"train", dir.path(), "", false};
  auto d = ReadChannel(channel, "text/csv", Labeled());
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->rows, 3);
  EXPECT_EQ(d->values, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(d->labels, (std::vector<float>{1, 0, 0}));
}

TEST(ReadChannelTest, ChannelContentTypeOverridesTheDefault) {
  TempDir dir;
  dir.Write("x.libsvm", "1 2:1\n");
  dir.Write("y.libsvm", "0 7:1\n");
  Channel channel{"train", dir.path(), "text/libsvm", false};
  auto d = ReadChannel(channel, "text/csv", Labeled());
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->sparse);
  EXPECT_EQ(d->cols, 8);  // the widest file
  EXPECT_EQ(d->indptr, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(d->At(1, 7), 1.0f);
}

TEST(ReadChannelTest, ErrorsNameTheFileInTheChannel) {
  TempDir dir;
  dir.Write("a.csv", "1,1,2\n");
  dir.Write("sub/b.csv", "1,1\n");
  Channel channel{"train", dir.path(), "", false};
  EXPECT_EQ(ErrorOf(ReadChannel(channel, "text/csv", Labeled())),
            "sub/b.csv has 1 features, but a.csv has 2");

  dir.Write("sub/b.csv", "1,x,2\n");
  EXPECT_EQ(ErrorOf(ReadChannel(channel, "text/csv", Labeled())),
            "CSV line 1 of sub/b.csv, column 2: 'x' is not a number");

  Channel empty{"validation", dir.path() + "/nothing", "", false};
  EXPECT_EQ(ErrorOf(ReadChannel(empty, "text/csv", Labeled())),
            "No data files found in channel 'validation'");
  Channel bad_type{"train", dir.path(), "image/jpeg", false};
  EXPECT_THAT(ErrorOf(ReadChannel(bad_type, "text/csv", Labeled())),
              HasSubstr("'image/jpeg' is not supported"));
}

TEST(ReadChannelTest, ReadsGzippedFiles) {
  TempDir dir;
  dir.Write("a.csv.gz", Gzip("1,1,2\n0,3,4\n"));
  Channel csv{"train", dir.path(), "text/csv", false};
  auto d = ReadChannel(csv, "", Labeled());
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->values, (std::vector<float>{1, 2, 3, 4}));

  dir.Write("a.csv.gz", std::string("\x1f\x8b not gzip at all"));
  EXPECT_THAT(ErrorOf(ReadChannel(csv, "", Labeled())),
              HasSubstr("a.csv.gz looks gzip-compressed but"));
}

TEST(ReadChannelTest, PipeModeReadsTheFirstEpochsFifo) {
  TempDir dir;
  const std::string channel_dir = dir.path() + "/train";
  const std::string fifo = channel_dir + "_0";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Dataset d;
  d.rows = 2;
  d.cols = 2;
  d.values = {1, 2, 3, 4};
  d.labels = {0, 1};
  const std::string bytes = WriteRecordIOProtobuf(d);
  std::thread writer([&] { std::ofstream(fifo, std::ios::binary) << bytes; });
  Channel channel{"train", channel_dir, "application/x-recordio-protobuf", true};
  auto back = ReadChannel(channel, "text/csv", Labeled());
  writer.join();
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->values, d.values);
  EXPECT_EQ(back->labels, d.labels);
}

}  // namespace
}  // namespace nimbus::ml
