#include "objects/local_object_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "core/crypto.h"
#include "core/strings.h"
#include "objects/checksum.h"
#include "store/wal_buffer_vfs.h"

namespace nimbus::objects {
namespace {

namespace fs = std::filesystem;

// A body produced in pseudo-random chunk sizes, never held whole by the reader.
class PatternReader : public http::BodyReader {
 public:
  explicit PatternReader(uint64_t size) : size_(size) {}
  Result<size_t> Read(char* buf, size_t n) override {
    n = static_cast<size_t>(std::min<uint64_t>({n, size_ - pos_, 1 + (pos_ * 7919) % 70000}));
    for (size_t i = 0; i < n; ++i) buf[i] = Byte(pos_ + i);
    pos_ += n;
    return n;
  }
  static char Byte(uint64_t i) { return static_cast<char>((i * 131 + (i >> 9)) & 0xff); }

 private:
  uint64_t size_;
  uint64_t pos_ = 0;
};

class FailingReader : public http::BodyReader {
 public:
  Result<size_t> Read(char* buf, size_t n) override {
    if (calls_++ == 0) {
      buf[0] = 'x';
      return size_t{1};
    }
    return Status::Validation("client went away");
  }

 private:
  int calls_ = 0;
};

std::string QuotedMd5(std::string_view data) {
  std::string quoted = "\"";
  quoted.append(HexEncode(Md5(data))).push_back('"');
  return quoted;
}

class LocalObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-objects-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    Reopen();
    ASSERT_TRUE(store_->CreateBucket("bkt", "us-east-1", "111122223333").ok());
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }

  void Reopen(std::function<bool(CrashPoint)> hook = nullptr, bool sync_writes = true) {
    store_.reset();
    LocalObjectStoreOptions options;
    options.data_dir = dir_;
    options.db = db_.get();
    options.min_part_size = 16;
    options.buffer_size = 4096;
    options.crash_hook = std::move(hook);
    options.sync_writes = sync_writes;
    options.inline_max_bytes = inline_max_bytes_;
    auto opened = LocalObjectStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  Result<ObjectInfo> Put(const std::string& key, const std::string& body,
                         const PutOptions& options = {}, const std::string& bucket = "bkt") {
    http::StringBodyReader reader(body);
    return store_->PutObject(bucket, key, reader, options);
  }

  std::string Read(const std::string& key, const GetOptions& options = {},
                   const std::string& bucket = "bkt") {
    auto got = store_->GetObject(bucket, key, options);
    if (!got.ok()) return "<" + got.status().code() + ">";
    auto body = got->body->ReadAll(1 << 30);
    return body.ok() ? *body : "<read error>";
  }

  size_t CountFiles(const std::string& sub) {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_ + "/objects/" + sub)) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  }

  // Runs `threads` writers that each write `writes` bodies of their own letter (size
  // base_size + 10 * t + i) both to the shared key "contended" and to own_key(t, i), reading
  // "contended" back after each; with a missing-bucket writer beside them, whose PUTs must
  // fail alone. Returns the failures: failed writes and reads whose bytes do not match the
  // ETag read with them (a torn body).
  int ContendedWrites(int threads, int writes, size_t base_size,
                      const std::function<std::string(int, int)>& own_key,
                      bool missing_bucket_writer) {
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < writes; ++i) {
          std::string body(base_size + t * 10 + i, static_cast<char>('a' + t));
          if (!Put("contended", body).ok()) ++failures;
          if (!Put(own_key(t, i), body).ok()) ++failures;
          auto got = store_->GetObject("bkt", "contended", {});
          if (!got.ok()) {
            ++failures;
            continue;
          }
          auto data = got->body->ReadAll(1 << 20);
          if (!data.ok() || QuotedMd5(*data) != got->info.etag) ++failures;
        }
      });
    }
    if (missing_bucket_writer) {
      writers.emplace_back([&] {
        for (int i = 0; i < writes; ++i) {
          Status s = Put("lost-" + std::to_string(i), "x", {}, "missing").status();
          if (s.code() != "NoSuchBucket") ++failures;
        }
      });
    }
    for (auto& w : writers) w.join();
    return failures.load();
  }

  int64_t InlineBodies() {
    auto rows = db_->Query("SELECT COUNT(*) AS n FROM objects_inline");
    return rows.ok() ? (*rows)[0]["n"].AsInt() : -1;
  }

  std::string dir_;
  // Bodies go to blob files here, as the file-level checks of most tests expect;
  // InlineBodyTest keeps small ones in the database, as a server does by default.
  uint64_t inline_max_bytes_ = 0;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<LocalObjectStore> store_;
};

// ---- Buckets ----------------------------------------------------------------------------

TEST_F(LocalObjectStoreTest, CreateBucketDistinguishesOwnerOnConflict) {
  EXPECT_EQ(store_->CreateBucket("bkt", "us-east-1", "111122223333").code(),
            "BucketAlreadyOwnedByYou");
  Status other = store_->CreateBucket("bkt", "us-east-1", "999999999999");
  EXPECT_EQ(other.code(), "BucketAlreadyExists");
  EXPECT_EQ(other.http_status(), 409);
  EXPECT_EQ(store_->CreateBucket("Bad_Name", "us-east-1", "1").code(), "InvalidBucketName");
}

TEST_F(LocalObjectStoreTest, HeadAndListBucketsReportRegionAndOwner) {
  ASSERT_TRUE(store_->CreateBucket("another", "eu-west-1", "999999999999").ok());
  auto head = store_->HeadBucket("another");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->region, "eu-west-1");
  EXPECT_EQ(store_->HeadBucket("missing").status().code(), "NoSuchBucket");
  auto mine = store_->ListBuckets("111122223333");
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].name, "bkt");
  EXPECT_EQ(store_->ListBuckets("")->size(), 2u);
}

TEST_F(LocalObjectStoreTest, DeleteBucketRefusedWhileObjectsOrUploadsRemain) {
  ASSERT_TRUE(Put("k", "v").ok());
  EXPECT_EQ(store_->DeleteBucket("bkt").code(), "BucketNotEmpty");
  ASSERT_TRUE(store_->DeleteObject("bkt", "k", "").ok());
  auto upload = store_->CreateMultipartUpload("bkt", "m", {});
  ASSERT_TRUE(upload.ok());
  EXPECT_EQ(store_->DeleteBucket("bkt").code(), "BucketNotEmpty");
  ASSERT_TRUE(store_->AbortMultipartUpload("bkt", "m", upload->upload_id).ok());
  EXPECT_TRUE(store_->DeleteBucket("bkt").ok());
  EXPECT_EQ(store_->HeadBucket("bkt").status().code(), "NoSuchBucket");
  EXPECT_EQ(store_->DeleteBucket("bkt").code(), "NoSuchBucket");
}

TEST_F(LocalObjectStoreTest, DeleteBucketRefusedWhileOnlyDeleteMarkersRemain) {
  ASSERT_TRUE(store_->PutBucketVersioning("bkt", VersioningStatus::kEnabled).ok());
  ASSERT_TRUE(store_->DeleteObject("bkt", "ghost", "").ok());
  EXPECT_EQ(store_->DeleteBucket("bkt").code(), "BucketNotEmpty");
}

TEST_F(LocalObjectStoreTest, BucketTagsNotificationAndVersioningAreStored) {
  EXPECT_EQ(store_->GetBucketTags("bkt").status().code(), "NoSuchTagSet");
  ASSERT_TRUE(store_->PutBucketTags("bkt", {{"team", "ml"}}).ok());
  EXPECT_EQ(store_->GetBucketTags("bkt")->at("team"), "ml");
  ASSERT_TRUE(store_->DeleteBucketTags("bkt").ok());
  EXPECT_EQ(store_->GetBucketTags("bkt").status().code(), "NoSuchTagSet");
  ASSERT_TRUE(store_->PutBucketNotification("bkt", "<NotificationConfiguration/>").ok());
  EXPECT_EQ(*store_->GetBucketNotification("bkt"), "<NotificationConfiguration/>");
  EXPECT_EQ(*store_->GetBucketVersioning("bkt"), VersioningStatus::kUnversioned);
  ASSERT_TRUE(store_->PutBucketVersioning("bkt", VersioningStatus::kSuspended).ok());
  EXPECT_EQ(*store_->GetBucketVersioning("bkt"), VersioningStatus::kSuspended);
  EXPECT_EQ(store_->PutBucketTags("nope", {}).code(), "NoSuchBucket");
}

// ---- Put / Get / Head / Delete ------------------------------------------------------------

TEST_F(LocalObjectStoreTest, PutThenGetRoundTripsBodyAndMetadata) {
  PutOptions options;
  options.metadata.content_type = "text/plain";
  options.metadata.cache_control = "no-cache";
  options.metadata.user["color"] = "blue";
  options.metadata.storage_class = "STANDARD_IA";
  options.tags = {{"a", "1"}, {"b", "2"}};
  auto put = Put("dir/file.txt", "hello world", options);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, QuotedMd5("hello world"));
  EXPECT_EQ(put->version_id, "null");

  auto got = store_->GetObject("bkt", "dir/file.txt", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->info.size, 11u);
  EXPECT_EQ(got->info.metadata, options.metadata);
  EXPECT_EQ(got->info.tag_count, 2u);
  EXPECT_FALSE(got->partial);
  EXPECT_EQ(*got->body->ReadAll(100), "hello world");
  auto head = store_->HeadObject("bkt", "dir/file.txt", {});
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_EQ(CountFiles("tmp"), 0u);
}

TEST_F(LocalObjectStoreTest, MetadataDocumentsHoldOnlyWhatIsSetAndOlderOnesStillRead) {
  PutOptions options;
  options.metadata.content_type = "text/plain";
  ASSERT_TRUE(Put("sparse", "x", options).ok());
  ASSERT_TRUE(Put("bare", "y").ok());
  auto meta = [&](const std::string& key) {
    auto rows = db_->Query("SELECT meta FROM objects_versions WHERE key = ?", {Value::Blob(key)});
    return rows.ok() && rows->size() == 1 ? (*rows)[0]["meta"].AsString() : "<none>";
  };
  EXPECT_EQ(meta("sparse"), R"({"ContentType":"text/plain"})");
  EXPECT_EQ(meta("bare"), "{}");
  EXPECT_EQ(store_->HeadObject("bkt", "bare", {})->metadata, ObjectMetadata{});

  // Versions written before empty fields were left out carry every field.
  ASSERT_TRUE(db_->Exec("UPDATE objects_versions SET meta = ? WHERE key = ?",
                        {R"({"CacheControl":"","Checksums":{"CRC32C":"4waSgw=="},)"
                         R"("ContentDisposition":"","ContentEncoding":"gzip","ContentLanguage":"",)"
                         R"("ContentType":"text/csv","Expires":"","StorageClass":"",)"
                         R"("User":{"color":"blue"}})",
                         Value::Blob(std::string("bare"))})
                  .ok());
  auto old = store_->HeadObject("bkt", "bare", {});
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ObjectMetadata expected;
  expected.content_type = "text/csv";
  expected.content_encoding = "gzip";
  expected.user["color"] = "blue";
  EXPECT_EQ(old->metadata, expected);
  EXPECT_EQ(old->checksums.crc32c, "4waSgw==");
  EXPECT_EQ(old->checksums.crc32, "");
}

TEST_F(LocalObjectStoreTest, MissingObjectAndBucketGiveS3Errors) {
  EXPECT_EQ(Read("nope"), "<NoSuchKey>");
  EXPECT_EQ(Read("k", {}, "missing"), "<NoSuchBucket>");
  EXPECT_EQ(Put("k", "v", {}, "missing").status().code(), "NoSuchBucket");
  EXPECT_EQ(Put(std::string(1025, 'k'), "v").status().code(), "KeyTooLongError");
}

TEST_F(LocalObjectStoreTest, SmallBodyForAMissingBucketLeavesNoBlob) {
  // A small body of known length is staged before the bucket is looked up, in the commit.
  PutOptions options;
  options.content_length = 5;
  EXPECT_EQ(Put("k", "small", options, "missing").status().code(), "NoSuchBucket");
  EXPECT_EQ(CountFiles("blobs"), 0u);
  EXPECT_EQ(CountFiles("tmp"), 0u);
}

TEST_F(LocalObjectStoreTest, ConcurrentPutsLoseAndLeakNothing) {
  constexpr int kThreads = 8;
  constexpr int kPuts = 40;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        const std::string body = "body " + std::to_string(t) + "/" + std::to_string(i);
        // Thread 0 writes to a missing bucket: its failures must not undo the others.
        const std::string bucket = t == 0 ? "missing" : "bkt";
        Result<ObjectInfo> own =
            Put("k" + std::to_string(t) + "/" + std::to_string(i), body, {}, bucket);
        Result<ObjectInfo> shared = Put("shared", body, {}, bucket);
        const bool want_ok = t != 0;
        if (own.ok() != want_ok || shared.ok() != want_ok) ++wrong;
        if (!want_ok && own.status().code() != "NoSuchBucket") ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  for (int t = 1; t < kThreads; ++t) {
    for (int i = 0; i < kPuts; ++i) {
      EXPECT_EQ(Read("k" + std::to_string(t) + "/" + std::to_string(i)),
                "body " + std::to_string(t) + "/" + std::to_string(i));
    }
  }
  EXPECT_EQ(Read("shared").substr(0, 5), "body ");
  // One blob per live object: every replaced "shared" blob and every failed one is gone.
  EXPECT_EQ(CountFiles("blobs"), static_cast<size_t>((kThreads - 1) * kPuts + 1));
  EXPECT_EQ(CountFiles("tmp"), 0u);
}

TEST_F(LocalObjectStoreTest, OverwriteReplacesContentAndUnlinksOldBlob) {
  ASSERT_TRUE(Put("k", "first").ok());
  ASSERT_TRUE(Put("k", "second version").ok());
  EXPECT_EQ(Read("k"), "second version");
  EXPECT_EQ(CountFiles("blobs"), 1u);
  ASSERT_TRUE(store_->DeleteObject("bkt", "k", "").ok());
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  EXPECT_EQ(CountFiles("blobs"), 0u);
  EXPECT_TRUE(store_->DeleteObject("bkt", "k", "").ok());  // deleting nothing succeeds
}

// Large enough to be hashed on a helper thread (ChecksumPipeline), whose digests are
// checked all the same.
TEST_F(LocalObjectStoreTest, LargeBodyStreamsThroughBoundedBuffers) {
  const uint64_t size = 6 * 1024 * 1024 + 17;
  StreamingDigest md5(StreamingDigest::Algorithm::kMd5);
  uint32_t crc32c = 0;
  PatternReader again(size);
  char buf[65536];
  while (true) {
    size_t n = *again.Read(buf, sizeof(buf));
    if (n == 0) break;
    md5.Update(std::string_view(buf, n));
    crc32c = Crc32c(crc32c, std::string_view(buf, n));
  }
  const std::string digest = md5.Finish();
  const std::string crc{static_cast<char>(crc32c >> 24), static_cast<char>(crc32c >> 16),
                        static_cast<char>(crc32c >> 8), static_cast<char>(crc32c)};
  PutOptions options;
  options.content_length = size;
  options.content_md5 = Base64Encode(Md5("something else"));
  PatternReader wrong(size);
  EXPECT_EQ(store_->PutObject("bkt", "big", wrong, options).status().code(), "BadDigest");
  EXPECT_EQ(Read("big"), "<NoSuchKey>");
  EXPECT_EQ(CountFiles("tmp") + CountFiles("blobs"), 0u);
  options.content_md5 = Base64Encode(digest);
  options.expected.crc32c = Base64Encode(crc);
  PatternReader reader(size);
  auto put = store_->PutObject("bkt", "big", reader, options);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, "\"" + HexEncode(digest) + "\"");
  EXPECT_EQ(put->checksums.crc32c, Base64Encode(crc));
  auto got = store_->GetObject("bkt", "big", {});
  ASSERT_TRUE(got.ok());
  uint64_t pos = 0;
  bool same = true;
  while (true) {
    size_t n = *got->body->Read(buf, sizeof(buf));
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) same &= buf[i] == PatternReader::Byte(pos + i);
    pos += n;
  }
  EXPECT_EQ(pos, size);
  EXPECT_TRUE(same);
}

// The pages of path the page cache holds.
size_t CachedPages(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SIZE_MAX;
  struct stat st {};
  ::fstat(fd, &st);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t pages = (static_cast<size_t>(st.st_size) + page - 1) / page;
  void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  std::vector<unsigned char> resident(pages);
  const int rc = ::mincore(map, static_cast<size_t>(st.st_size), resident.data());
  ::munmap(map, static_cast<size_t>(st.st_size));
  if (rc != 0) return SIZE_MAX;
  size_t n = 0;
  for (unsigned char r : resident) n += r & 1;
  return n;
}

// A large body of known length goes to disk with O_DIRECT, all but a last partial block,
// where the file system takes O_DIRECT at all; whatever its length, it reads back whole.
TEST_F(LocalObjectStoreTest, LargeBodiesBypassThePageCache) {
  const std::string probe = dir_ + "/probe";
  const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) GTEST_SKIP() << "this file system takes no O_DIRECT";
  ::close(fd);
  for (uint64_t size : {4ull << 20, (4ull << 20) + 1, (5ull << 20) + 4095}) {
    PutOptions options;
    options.content_length = size;
    PatternReader reader(size);
    auto put = store_->PutObject("bkt", "big", reader, options);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    std::string blob;
    for (const auto& e : fs::recursive_directory_iterator(dir_ + "/objects/blobs")) {
      if (e.is_regular_file()) blob = e.path();
    }
    EXPECT_LE(CachedPages(blob), 1u) << size;
    auto got = store_->GetObject("bkt", "big", {});
    ASSERT_TRUE(got.ok());
    Result<std::string> body = got->body->ReadAll(size);
    ASSERT_TRUE(body.ok());
    ASSERT_EQ(body->size(), size);
    bool same = true;
    for (uint64_t i = 0; i < size; ++i) same &= (*body)[i] == PatternReader::Byte(i);
    EXPECT_TRUE(same) << size;
    EXPECT_EQ(put->etag, QuotedMd5(*body));
    ASSERT_TRUE(store_->DeleteObject("bkt", "big", "").ok());
  }
}

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST_F(LocalObjectStoreTest, LargeObjectsStreamWithoutGrowingMemory) {
  Reopen(nullptr, /*sync_writes=*/false);
  const uint64_t size = 96ull << 20;
  const long before = PeakRssKb();
  PatternReader reader(size);
  auto put = store_->PutObject("bkt", "huge", reader, {});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto got = store_->GetObject("bkt", "huge", {});
  ASSERT_TRUE(got.ok());
  class CountingWriter : public http::BodyWriter {
   public:
    Status Write(std::string_view data) override {
      bytes += data.size();
      return Status::Ok();
    }
    uint64_t bytes = 0;
  } sink;
  ASSERT_TRUE(got->body->WriteTo(sink).ok());
  EXPECT_EQ(sink.bytes, size);
  // Both directions used bounded buffers: peak memory grew by far less than the object.
  EXPECT_LT(PeakRssKb() - before, 16 * 1024);
}

TEST_F(LocalObjectStoreTest, ShortBodyIsIncompleteAndLeavesNothing) {
  PutOptions options;
  options.content_length = 100;
  EXPECT_EQ(Put("k", "short", options).status().code(), "IncompleteBody");
  FailingReader failing;
  EXPECT_FALSE(store_->PutObject("bkt", "k", failing, {}).ok());
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  EXPECT_EQ(CountFiles("tmp") + CountFiles("blobs"), 0u);
}

TEST_F(LocalObjectStoreTest, ContentMd5IsVerifiedBeforeTheObjectIsVisible) {
  ASSERT_TRUE(Put("k", "old").ok());
  PutOptions options;
  options.content_md5 = Base64Encode(Md5("something else"));
  Status bad = Put("k", "new", options).status();
  EXPECT_EQ(bad.code(), "BadDigest");
  EXPECT_EQ(bad.http_status(), 400);
  options.content_md5 = "not-base64!";
  EXPECT_EQ(Put("k", "new", options).status().code(), "InvalidDigest");
  EXPECT_EQ(Read("k"), "old");
  options.content_md5 = Base64Encode(Md5("new"));
  EXPECT_TRUE(Put("k", "new", options).ok());
  EXPECT_EQ(Read("k"), "new");
  EXPECT_EQ(CountFiles("tmp"), 0u);
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

TEST_F(LocalObjectStoreTest, ChecksumHeadersAreVerifiedAndStored) {
  PutOptions options;
  options.expected.crc32c = "4waSgw==";  // CRC32C("123456789") = 0xE3069283
  options.checksum_algorithm = ChecksumAlgorithm::kSha256;
  auto put = Put("k", "123456789", options);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->checksums.crc32c, "4waSgw==");
  EXPECT_EQ(put->checksums.sha256, Base64Encode(Sha256("123456789")));
  EXPECT_EQ(store_->HeadObject("bkt", "k", {})->checksums.crc32c, "4waSgw==");

  options = {};
  options.expected.crc32 = Base64Encode(std::string("\x00\x00\x00\x01", 4));
  Status mismatch = Put("k2", "123456789", options).status();
  EXPECT_EQ(mismatch.code(), "BadDigest");
  EXPECT_NE(mismatch.message().find("CRC32"), std::string::npos);
  options.expected.crc32 = "AAAA";  // 3 bytes: wrong length for CRC32
  EXPECT_EQ(Put("k2", "123456789", options).status().code(), "InvalidRequest");
  EXPECT_EQ(Read("k2"), "<NoSuchKey>");
}

TEST_F(LocalObjectStoreTest, TrailingChecksumsAreVerifiedAfterTheBody) {
  PutOptions options;
  options.trailing_checksums = []() -> Result<Checksums> {
    Checksums c;
    c.sha1 = Base64Encode(Sha1("payload"));
    return c;
  };
  auto put = Put("k", "payload", options);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->checksums.sha1, Base64Encode(Sha1("payload")));
  options.trailing_checksums = []() -> Result<Checksums> {
    Checksums c;
    c.crc32 = Base64Encode(std::string(4, 'x'));
    return c;
  };
  EXPECT_EQ(Put("k", "changed", options).status().code(), "BadDigest");
  EXPECT_EQ(Read("k"), "payload");
}

TEST_F(LocalObjectStoreTest, HostileKeysRoundTripAndNeverReachOutsideTheDataDir) {
  const std::vector<std::string> keys = {"../x",
                                         "../../../../etc/passwd",
                                         "/etc/passwd",
                                         std::string("nul\0byte", 8),
                                         "..",
                                         ".",
                                         "a//b",
                                         "\xe2\x98\x83 snowman/\xf0\x9f\x98\x80",
                                         std::string(1024, '/'),
                                         "back\\slash",
                                         std::string("\xff\xfe", 2)};
  for (const std::string& key : keys) {
    ASSERT_TRUE(Put(key, "body:" + key).ok()) << key;
  }
  for (const std::string& key : keys) EXPECT_EQ(Read(key), "body:" + key);
  // Only the layout's own names exist under the data dir.
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    std::string rel = fs::relative(e.path(), dir_).string();
    bool ok = StartsWith(rel, "metadata.db") || rel == "objects" || rel == "objects/blobs" ||
              rel == "objects/tmp" ||
              (StartsWith(rel, "objects/blobs/") && (rel.size() == 16 || rel.size() == 49));
    EXPECT_TRUE(ok) << rel;
  }
  ListOptions list;
  auto listed = store_->ListObjects("bkt", list);
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> got;
  for (const ObjectInfo& o : listed->objects) got.push_back(o.key);
  std::vector<std::string> want(keys.begin(), keys.end());
  std::sort(want.begin(), want.end());  // std::string compares bytes as unsigned char
  EXPECT_EQ(got, want);
}

TEST_F(LocalObjectStoreTest, RangeReadsReturnTheRequestedBytes) {
  ASSERT_TRUE(Put("k", "0123456789").ok());
  GetOptions options;
  options.range = ParseRange("bytes=2-5");
  auto got = store_->GetObject("bkt", "k", options);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->partial);
  EXPECT_EQ(got->body->offset(), 2u);
  EXPECT_EQ(got->body->length(), 4u);
  EXPECT_EQ(*got->body->ReadAll(100), "2345");
  options.range = ParseRange("bytes=-3");
  EXPECT_EQ(Read("k", options), "789");
  options.range = ParseRange("bytes=8-");
  EXPECT_EQ(Read("k", options), "89");
  options.range = ParseRange("bytes=10-");
  EXPECT_EQ(Read("k", options), "<InvalidRange>");
}

TEST_F(LocalObjectStoreTest, ConditionalGetUsesStoredEtag) {
  auto put = Put("k", "abc");
  ASSERT_TRUE(put.ok());
  GetOptions options;
  options.conditions.if_none_match = put->etag;
  EXPECT_EQ(Read("k", options), "<NotModified>");
  options.conditions = {};
  options.conditions.if_match = "\"nope\"";
  EXPECT_EQ(Read("k", options), "<PreconditionFailed>");
  options.conditions.if_match = put->etag;
  EXPECT_EQ(Read("k", options), "abc");
}

TEST_F(LocalObjectStoreTest, ReaderKeepsOldBytesWhileObjectIsOverwritten) {
  ASSERT_TRUE(Put("k", "original").ok());
  auto got = store_->GetObject("bkt", "k", {});
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(Put("k", "replacement").ok());
  ASSERT_TRUE(store_->DeleteObject("bkt", "k", "").ok());
  EXPECT_EQ(*got->body->ReadAll(100), "original");
}

TEST_F(LocalObjectStoreTest, ObjectTagsCanBeReplacedAndAreLimited) {
  ASSERT_TRUE(Put("k", "v").ok());
  ASSERT_TRUE(store_->PutObjectTags("bkt", "k", "", {{"x", "y"}}).ok());
  auto tags = store_->GetObjectTags("bkt", "k", "");
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(*tags, (Tags{{"x", "y"}}));
  Tags many;
  for (char c = 'a'; c <= 'k'; ++c) many.emplace(std::string(2, c), std::string(1, c));
  EXPECT_EQ(store_->PutObjectTags("bkt", "k", "", many).code(), "InvalidTag");
  EXPECT_EQ(store_->PutObjectTags("bkt", "none", "", {}).code(), "NoSuchKey");
}

TEST_F(LocalObjectStoreTest, UserMetadataOver2KiBIsRefused) {
  PutOptions options;
  options.metadata.user["big"] = std::string(2100, 'm');
  EXPECT_EQ(Put("k", "v", options).status().code(), "MetadataTooLarge");
}

// ---- Versioning --------------------------------------------------------------------------

TEST_F(LocalObjectStoreTest, VersioningKeepsVersionsAndDeleteMarkers) {
  ASSERT_TRUE(Put("k", "pre-versioning").ok());  // becomes the "null" version
  ASSERT_TRUE(store_->PutBucketVersioning("bkt", VersioningStatus::kEnabled).ok());
  auto v1 = Put("k", "one");
  auto v2 = Put("k", "two");
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_NE(v1->version_id, "null");
  EXPECT_NE(v1->version_id, v2->version_id);
  auto del = store_->DeleteObject("bkt", "k", "");
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(del->delete_marker);
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  GetOptions at;
  at.version_id = v1->version_id;
  EXPECT_EQ(Read("k", at), "one");
  at.version_id = "null";
  EXPECT_EQ(Read("k", at), "pre-versioning");
  at.version_id = del->version_id;
  EXPECT_EQ(Read("k", at), "<MethodNotAllowed>");
  at.version_id = "doesnotexist";
  EXPECT_EQ(Read("k", at), "<NoSuchVersion>");
  EXPECT_TRUE(store_->ListObjects("bkt", {})->objects.empty());

  auto versions = store_->ListObjectVersions("bkt", {});
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->versions.size(), 4u);
  EXPECT_TRUE(versions->versions[0].delete_marker);
  EXPECT_TRUE(versions->versions[0].is_latest);
  EXPECT_EQ(versions->versions[1].version_id, v2->version_id);
  EXPECT_EQ(versions->versions[2].version_id, v1->version_id);
  EXPECT_EQ(versions->versions[3].version_id, "null");
  EXPECT_FALSE(versions->versions[1].is_latest);

  // Removing the marker by id brings v2 back; removing v2 by id brings v1 back.
  ASSERT_TRUE(store_->DeleteObject("bkt", "k", del->version_id).ok());
  EXPECT_EQ(Read("k"), "two");
  auto removed = store_->DeleteObject("bkt", "k", v2->version_id);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(removed->delete_marker);
  EXPECT_EQ(Read("k"), "one");
  EXPECT_EQ(CountFiles("blobs"), 2u);
}

TEST_F(LocalObjectStoreTest, SuspendedVersioningOverwritesTheNullVersion) {
  ASSERT_TRUE(store_->PutBucketVersioning("bkt", VersioningStatus::kEnabled).ok());
  auto kept = Put("k", "kept");
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE(store_->PutBucketVersioning("bkt", VersioningStatus::kSuspended).ok());
  ASSERT_TRUE(Put("k", "null one").ok());
  auto second = Put("k", "null two");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version_id, "null");
  auto versions = store_->ListObjectVersions("bkt", {});
  ASSERT_EQ(versions->versions.size(), 2u);
  EXPECT_EQ(Read("k"), "null two");
  auto del = store_->DeleteObject("bkt", "k", "");
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(del->delete_marker);
  EXPECT_EQ(del->version_id, "null");
  versions = store_->ListObjectVersions("bkt", {});
  ASSERT_EQ(versions->versions.size(), 2u);  // the marker replaced the null version
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

TEST_F(LocalObjectStoreTest, ListObjectVersionsPaginatesWithinAKey) {
  ASSERT_TRUE(store_->PutBucketVersioning("bkt", VersioningStatus::kEnabled).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Put("a", "a" + std::to_string(i)).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Put("b", "b" + std::to_string(i)).ok());
  ListVersionsOptions options;
  options.max_keys = 2;
  std::vector<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    auto result = store_->ListObjectVersions("bkt", options);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    for (const ObjectInfo& v : result->versions) seen.push_back(v.key + ":" + v.version_id);
    if (!result->truncated) break;
    options.key_marker = result->next_key_marker;
    options.version_id_marker = result->next_version_id_marker;
  }
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u);
  EXPECT_EQ(seen[0].substr(0, 2), "a:");
  EXPECT_EQ(seen[3].substr(0, 2), "b:");
}

TEST_F(LocalObjectStoreTest, DeleteObjectsReportsPerKeyResults) {
  ASSERT_TRUE(Put("a", "1").ok());
  ASSERT_TRUE(Put("b", "2").ok());
  auto results = store_->DeleteObjects(
      "bkt", {{"a", ""}, {"b", ""}, {"never-existed", ""}, {std::string(1100, 'x'), ""}});
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 4u);
  EXPECT_TRUE((*results)[0].status.ok());
  EXPECT_TRUE((*results)[2].status.ok());
  EXPECT_EQ((*results)[3].status.code(), "KeyTooLongError");
  EXPECT_EQ(Read("a"), "<NoSuchKey>");
  EXPECT_EQ(Read("b"), "<NoSuchKey>");
}

// ---- Copy --------------------------------------------------------------------------------

TEST_F(LocalObjectStoreTest, CopyKeepsOrReplacesMetadataAcrossBuckets) {
  ASSERT_TRUE(store_->CreateBucket("dest", "us-east-1", "111122223333").ok());
  PutOptions put;
  put.metadata.content_type = "image/png";
  put.metadata.user["origin"] = "camera";
  put.tags = {{"k", "v"}};
  auto src = Put("photo", "PNGDATA", put);
  ASSERT_TRUE(src.ok());

  CopyOptions copy;
  copy.source_bucket = "bkt";
  copy.source_key = "photo";
  auto same = store_->CopyObject("dest", "copy", copy);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->info.etag, src->etag);
  EXPECT_EQ(same->source_version_id, "null");
  EXPECT_EQ(Read("copy", {}, "dest"), "PNGDATA");
  EXPECT_EQ(store_->HeadObject("dest", "copy", {})->metadata, put.metadata);
  EXPECT_EQ(*store_->GetObjectTags("dest", "copy", ""), put.tags);

  copy.metadata_directive = Directive::kReplace;
  copy.metadata.content_type = "application/x-new";
  copy.tagging_directive = Directive::kReplace;
  auto replaced = store_->CopyObject("bkt", "photo", copy);  // onto itself, with new metadata
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  auto head = store_->HeadObject("bkt", "photo", {});
  EXPECT_EQ(head->metadata.content_type, "application/x-new");
  EXPECT_TRUE(head->metadata.user.empty());
  EXPECT_EQ(head->tag_count, 0u);
  EXPECT_EQ(Read("photo"), "PNGDATA");
}

TEST_F(LocalObjectStoreTest, CopyRefusesSelfCopyWithoutChangesAndChecksSourceConditions) {
  auto src = Put("k", "data");
  ASSERT_TRUE(src.ok());
  CopyOptions copy;
  copy.source_bucket = "bkt";
  copy.source_key = "k";
  EXPECT_EQ(store_->CopyObject("bkt", "k", copy).status().code(), "InvalidRequest");
  copy.source_conditions.if_match = "\"different\"";
  EXPECT_EQ(store_->CopyObject("bkt", "k2", copy).status().code(), "PreconditionFailed");
  copy.source_conditions = {};
  copy.source_conditions.if_none_match = src->etag;
  EXPECT_EQ(store_->CopyObject("bkt", "k2", copy).status().code(), "PreconditionFailed");
  copy.source_conditions = {};
  copy.source_key = "missing";
  EXPECT_EQ(store_->CopyObject("bkt", "k2", copy).status().code(), "NoSuchKey");
}

// ---- Listing -----------------------------------------------------------------------------

TEST_F(LocalObjectStoreTest, ListGroupsCommonPrefixesUnderDelimiter) {
  for (const char* key : {"photos/2023/a.jpg", "photos/2023/b.jpg", "photos/2024/c.jpg",
                          "photos/readme", "docs/x", "top"}) {
    ASSERT_TRUE(Put(key, "x").ok());
  }
  ListOptions options;
  options.delimiter = "/";
  auto root = store_->ListObjects("bkt", options);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->common_prefixes, (std::vector<std::string>{"docs/", "photos/"}));
  ASSERT_EQ(root->objects.size(), 1u);
  EXPECT_EQ(root->objects[0].key, "top");

  options.prefix = "photos/";
  auto photos = store_->ListObjects("bkt", options);
  EXPECT_EQ(photos->common_prefixes, (std::vector<std::string>{"photos/2023/", "photos/2024/"}));
  ASSERT_EQ(photos->objects.size(), 1u);
  EXPECT_EQ(photos->objects[0].key, "photos/readme");

  options = {};
  options.prefix = "photos/2023/";
  EXPECT_EQ(store_->ListObjects("bkt", options)->objects.size(), 2u);
  options = {};
  options.start_after = "photos/2023/b.jpg";
  auto after = store_->ListObjects("bkt", options);
  ASSERT_EQ(after->objects.size(), 3u);
  EXPECT_EQ(after->objects[0].key, "photos/2024/c.jpg");
}

TEST_F(LocalObjectStoreTest, ListPaginatesWithContinuationTokensAcrossPrefixes) {
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) keys.push_back(std::string("f").append(std::to_string(i)));
  for (int i = 0; i < 4; ++i) keys.push_back(std::string("g/").append(std::to_string(i)));
  keys.push_back("h");
  for (const std::string& k : keys) ASSERT_TRUE(Put(k, "x").ok());
  ListOptions options;
  options.delimiter = "/";
  options.max_keys = 2;
  std::vector<std::string> seen;
  int pages = 0;
  while (true) {
    auto page = store_->ListObjects("bkt", options);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    for (const ObjectInfo& o : page->objects) seen.push_back(o.key);
    for (const std::string& p : page->common_prefixes) seen.push_back(p);
    EXPECT_LE(page->objects.size() + page->common_prefixes.size(), 2u);
    if (!page->truncated) break;
    options.continuation_token = page->next_continuation_token;
    ASSERT_LT(pages, 20);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"f0", "f1", "f2", "f3", "f4", "g/", "h"}));
  EXPECT_EQ(pages, 4);

  options.continuation_token = "garbage";
  EXPECT_EQ(store_->ListObjects("bkt", options).status().code(), "InvalidArgument");
  options.continuation_token = Base64Encode("not ours");
  EXPECT_EQ(store_->ListObjects("bkt", options).status().code(), "InvalidArgument");
}

TEST_F(LocalObjectStoreTest, ListPaginatesManyKeysBeyondOneBatch) {
  Reopen(nullptr, /*sync_writes=*/false);  // 1205 writes: keep the test fast
  for (int i = 0; i < 1205; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "k%05d", i);
    ASSERT_TRUE(Put(key, "").ok());
  }
  ListOptions options;
  options.max_keys = 5000;  // capped at 1000, as S3 does
  auto first = store_->ListObjects("bkt", options);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->objects.size(), 1000u);
  EXPECT_TRUE(first->truncated);
  EXPECT_EQ(first->next_marker, "k00999");
  options.start_after = first->next_marker;
  auto second = store_->ListObjects("bkt", options);
  EXPECT_EQ(second->objects.size(), 205u);
  EXPECT_FALSE(second->truncated);
}

// ---- Multipart -----------------------------------------------------------------------------

class MultipartTest : public LocalObjectStoreTest {
 protected:
  Result<PartInfo> Part(const std::string& upload_id, int n, const std::string& body,
                        const std::string& key = "mp") {
    http::StringBodyReader reader(body);
    return store_->UploadPart("bkt", key, upload_id, n, reader, {});
  }
};

TEST_F(MultipartTest, CompleteAssemblesPartsWithMd5OfMd5sEtag) {
  CreateMultipartOptions create;
  create.metadata.content_type = "application/zip";
  create.checksum_algorithm = ChecksumAlgorithm::kCrc32c;
  auto upload = store_->CreateMultipartUpload("bkt", "mp", create);
  ASSERT_TRUE(upload.ok());
  const std::string p1(20, 'a'), p2(30, 'b'), p3 = "tail";
  auto r2 = Part(upload->upload_id, 2, p2);  // out of order on purpose
  auto r1 = Part(upload->upload_id, 1, p1);
  auto r3 = Part(upload->upload_id, 3, p3);
  ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
  EXPECT_EQ(r1->etag, QuotedMd5(p1));
  EXPECT_EQ(r1->checksums.crc32c, Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32c, p1)));

  auto listed = store_->ListParts("bkt", "mp", upload->upload_id, {});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->parts.size(), 3u);
  EXPECT_EQ(listed->parts[0].part_number, 1);

  auto done = store_->CompleteMultipartUpload(
      "bkt", "mp", upload->upload_id,
      {{1, r1->etag, {}}, {2, HexEncode(Md5(p2)), {}}, {3, r3->etag, {}}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  const std::string reference = "\"" + HexEncode(Md5(Md5(p1) + Md5(p2) + Md5(p3))) + "-3\"";
  EXPECT_EQ(done->etag, reference);
  EXPECT_EQ(done->parts_count, 3);
  EXPECT_EQ(done->checksums.crc32c,
            Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32c,
                                         ComputeChecksum(ChecksumAlgorithm::kCrc32c, p1) +
                                             ComputeChecksum(ChecksumAlgorithm::kCrc32c, p2) +
                                             ComputeChecksum(ChecksumAlgorithm::kCrc32c, p3))) +
                "-3");
  EXPECT_EQ(Read("mp"), p1 + p2 + p3);
  EXPECT_EQ(store_->HeadObject("bkt", "mp", {})->metadata.content_type, "application/zip");
  EXPECT_EQ(CountFiles("blobs"), 1u);  // staged parts are gone
  EXPECT_EQ(store_->ListParts("bkt", "mp", upload->upload_id, {}).status().code(), "NoSuchUpload");
}

TEST_F(MultipartTest, CompleteValidatesOrderEtagsAndSizes) {
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(upload.ok());
  const std::string id = upload->upload_id;
  auto r1 = Part(id, 1, std::string(20, 'a'));
  auto r2 = Part(id, 2, "small");
  auto r3 = Part(id, 3, "last");
  ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "mp", id, {{2, r2->etag, {}}, {1, r1->etag, {}}})
                .status()
                .code(),
            "InvalidPartOrder");
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "mp", id, {{1, "\"0000\"", {}}}).status().code(),
            "InvalidPart");
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "mp", id, {{7, r1->etag, {}}}).status().code(),
            "InvalidPart");
  EXPECT_EQ(store_
                ->CompleteMultipartUpload("bkt", "mp", id,
                                          {{1, r1->etag, {}}, {2, r2->etag, {}}, {3, r3->etag, {}}})
                .status()
                .code(),
            "EntityTooSmall");
  // Skipping the small part is fine; unused staged parts are cleaned up.
  auto done =
      store_->CompleteMultipartUpload("bkt", "mp", id, {{1, r1->etag, {}}, {3, r3->etag, {}}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Read("mp"), std::string(20, 'a') + "last");
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

TEST_F(MultipartTest, PartNumbersAndUploadIdsAreValidated) {
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(upload.ok());
  EXPECT_EQ(Part(upload->upload_id, 0, "x").status().code(), "InvalidArgument");
  EXPECT_EQ(Part(upload->upload_id, 10001, "x").status().code(), "InvalidArgument");
  EXPECT_TRUE(Part(upload->upload_id, 10000, "x").ok());
  EXPECT_EQ(Part("no-such-upload", 1, "x").status().code(), "NoSuchUpload");
  EXPECT_EQ(Part(upload->upload_id, 1, "x", "other-key").status().code(), "NoSuchUpload");
  EXPECT_EQ(store_->CreateMultipartUpload("missing", "k", {}).status().code(), "NoSuchBucket");
}

TEST_F(MultipartTest, ReuploadedPartReplacesTheEarlierOne) {
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(Part(upload->upload_id, 1, "first attempt").ok());
  auto again = Part(upload->upload_id, 1, "second attempt");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(CountFiles("blobs"), 1u);
  auto done =
      store_->CompleteMultipartUpload("bkt", "mp", upload->upload_id, {{1, again->etag, {}}});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(Read("mp"), "second attempt");
}

TEST_F(MultipartTest, AbortRemovesStagedPartsAndTheUpload) {
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(Part(upload->upload_id, 1, "data").ok());
  ASSERT_TRUE(Part(upload->upload_id, 2, "more").ok());
  EXPECT_EQ(CountFiles("blobs"), 2u);
  ASSERT_TRUE(store_->AbortMultipartUpload("bkt", "mp", upload->upload_id).ok());
  EXPECT_EQ(CountFiles("blobs"), 0u);
  EXPECT_EQ(store_->AbortMultipartUpload("bkt", "mp", upload->upload_id).code(), "NoSuchUpload");
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "mp", upload->upload_id, {{1, "x", {}}})
                .status()
                .code(),
            "NoSuchUpload");
}

TEST_F(MultipartTest, UploadPartCopyTakesARangeOfAnObject) {
  ASSERT_TRUE(Put("src", "0123456789abcdefghijklmnopqrstuvwxyz").ok());
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  UploadPartCopyOptions copy;
  copy.source_bucket = "bkt";
  copy.source_key = "src";
  copy.source_range = ParseRange("bytes=10-35");
  auto p1 = store_->UploadPartCopy("bkt", "mp", upload->upload_id, 1, copy);
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(p1->etag, QuotedMd5("abcdefghijklmnopqrstuvwxyz"));
  copy.source_range = ParseRange("bytes=0-2");
  auto p2 = store_->UploadPartCopy("bkt", "mp", upload->upload_id, 2, copy);
  ASSERT_TRUE(p2.ok());
  copy.source_range = ParseRange("bytes=30-99");
  EXPECT_EQ(store_->UploadPartCopy("bkt", "mp", upload->upload_id, 3, copy).status().code(),
            "InvalidArgument");
  auto done = store_->CompleteMultipartUpload("bkt", "mp", upload->upload_id,
                                              {{1, p1->etag, {}}, {2, p2->etag, {}}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Read("mp"), "abcdefghijklmnopqrstuvwxyz012");

  // Copying the multipart object gives a plain MD5 ETag over the bytes.
  CopyOptions whole;
  whole.source_bucket = "bkt";
  whole.source_key = "mp";
  auto copied = store_->CopyObject("bkt", "flat", whole);
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(copied->info.etag, QuotedMd5("abcdefghijklmnopqrstuvwxyz012"));
  EXPECT_EQ(copied->info.parts_count, 0);
}

TEST_F(MultipartTest, ListPartsAndUploadsPaginate) {
  auto u1 = store_->CreateMultipartUpload("bkt", "a/one", {});
  auto u2 = store_->CreateMultipartUpload("bkt", "a/one", {});
  auto u3 = store_->CreateMultipartUpload("bkt", "b", {});
  auto u4 = store_->CreateMultipartUpload("bkt", "c/two", {});
  ASSERT_TRUE(u1.ok() && u2.ok() && u3.ok() && u4.ok());
  for (int n = 1; n <= 5; ++n) ASSERT_TRUE(Part(u1->upload_id, n, "p", "a/one").ok());
  ListPartsOptions parts;
  parts.max_parts = 2;
  auto page = store_->ListParts("bkt", "a/one", u1->upload_id, parts);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_part_number_marker, 2);
  parts.part_number_marker = 4;
  page = store_->ListParts("bkt", "a/one", u1->upload_id, parts);
  ASSERT_EQ(page->parts.size(), 1u);
  EXPECT_EQ(page->parts[0].part_number, 5);
  EXPECT_FALSE(page->truncated);

  ListUploadsOptions uploads;
  auto all = store_->ListMultipartUploads("bkt", uploads);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->uploads.size(), 4u);
  EXPECT_EQ(all->uploads[0].upload_id, u1->upload_id);  // by key, then initiation
  EXPECT_EQ(all->uploads[1].upload_id, u2->upload_id);

  uploads.delimiter = "/";
  auto grouped = store_->ListMultipartUploads("bkt", uploads);
  EXPECT_EQ(grouped->common_prefixes, (std::vector<std::string>{"a/", "c/"}));
  ASSERT_EQ(grouped->uploads.size(), 1u);
  EXPECT_EQ(grouped->uploads[0].key, "b");

  uploads = {};
  uploads.max_uploads = 1;
  auto first = store_->ListMultipartUploads("bkt", uploads);
  ASSERT_TRUE(first->truncated);
  uploads.key_marker = first->next_key_marker;
  uploads.upload_id_marker = first->next_upload_id_marker;
  auto second = store_->ListMultipartUploads("bkt", uploads);
  ASSERT_EQ(second->uploads.size(), 1u);
  EXPECT_EQ(second->uploads[0].upload_id, u2->upload_id);
}

// ---- Crash safety and recovery -------------------------------------------------------------

class CrashTest : public LocalObjectStoreTest, public ::testing::WithParamInterface<CrashPoint> {
 protected:
  // Crashes the next write at the parameter's step, then "restarts": a fresh store on the
  // same directory and database, recovered.
  void CrashThenRestart(const std::function<Status()>& write) {
    std::atomic<bool> armed{true};
    const CrashPoint point = GetParam();
    Reopen([&armed, point](CrashPoint p) { return p == point && armed.exchange(false); });
    Status s = write();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("simulated crash"), std::string::npos) << s.ToString();
    Reopen();
    auto stats = store_->Recover();
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(CountFiles("tmp"), 0u);
  }
  bool Committed() const { return GetParam() == CrashPoint::kCommitted; }
};

TEST_P(CrashTest, PutLeavesOldOrNewObjectAndNoOrphans) {
  ASSERT_TRUE(Put("k", "old contents").ok());
  CrashThenRestart([&] { return Put("k", "new contents, longer").status(); });
  EXPECT_EQ(Read("k"), Committed() ? "new contents, longer" : "old contents");
  EXPECT_EQ(CountFiles("blobs"), 1u);
  auto head = store_->HeadObject("bkt", "k", {});
  EXPECT_EQ(head->etag, QuotedMd5(Read("k")));
}

TEST_P(CrashTest, FirstPutLeavesNoVisibleObjectUnlessCommitted) {
  CrashThenRestart([&] { return Put("fresh", "body").status(); });
  EXPECT_EQ(Read("fresh"), Committed() ? "body" : "<NoSuchKey>");
  EXPECT_EQ(CountFiles("blobs"), Committed() ? 1u : 0u);
}

TEST_P(CrashTest, CompleteMultipartLeavesUploadOrObject) {
  ASSERT_TRUE(Put("mp", "previous").ok());
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(upload.ok());
  http::StringBodyReader b1(std::string(20, 'x')), b2("end");
  auto p1 = store_->UploadPart("bkt", "mp", upload->upload_id, 1, b1, {});
  auto p2 = store_->UploadPart("bkt", "mp", upload->upload_id, 2, b2, {});
  ASSERT_TRUE(p1.ok() && p2.ok());
  CrashThenRestart([&] {
    return store_
        ->CompleteMultipartUpload("bkt", "mp", upload->upload_id,
                                  {{1, p1->etag, {}}, {2, p2->etag, {}}})
        .status();
  });
  if (Committed()) {
    EXPECT_EQ(Read("mp"), std::string(20, 'x') + "end");
    EXPECT_EQ(CountFiles("blobs"), 1u);
  } else {
    EXPECT_EQ(Read("mp"), "previous");
    EXPECT_EQ(CountFiles("blobs"), 3u);  // the old object and two staged parts
    auto done = store_->CompleteMultipartUpload("bkt", "mp", upload->upload_id,
                                                {{1, p1->etag, {}}, {2, p2->etag, {}}});
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_EQ(Read("mp"), std::string(20, 'x') + "end");
    EXPECT_EQ(CountFiles("blobs"), 1u);
  }
}

TEST_P(CrashTest, UploadPartLeavesOldPartOrNewPart) {
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  http::StringBodyReader first("first");
  ASSERT_TRUE(store_->UploadPart("bkt", "mp", upload->upload_id, 1, first, {}).ok());
  CrashThenRestart([&] {
    http::StringBodyReader second("second");
    return store_->UploadPart("bkt", "mp", upload->upload_id, 1, second, {}).status();
  });
  auto parts = store_->ListParts("bkt", "mp", upload->upload_id, {});
  ASSERT_EQ(parts->parts.size(), 1u);
  EXPECT_EQ(parts->parts[0].etag, QuotedMd5(Committed() ? "second" : "first"));
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, CrashTest,
                         ::testing::Values(CrashPoint::kTempWritten, CrashPoint::kTempSynced,
                                           CrashPoint::kRenamed, CrashPoint::kCommitted));

TEST_F(LocalObjectStoreTest, CrashAfterCommittedDeleteIsCleanedByRecover) {
  ASSERT_TRUE(Put("k", "doomed").ok());
  Reopen([](CrashPoint p) { return p == CrashPoint::kCommitted; });
  EXPECT_FALSE(store_->DeleteObject("bkt", "k", "").ok());
  Reopen();
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  EXPECT_EQ(CountFiles("blobs"), 1u);
  auto stats = store_->Recover();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->orphan_blobs_removed, 1u);
  EXPECT_EQ(CountFiles("blobs"), 0u);
}

TEST_F(LocalObjectStoreTest, RecoverRemovesStrayFilesButKeepsLiveBlobs) {
  ASSERT_TRUE(Put("live", "keep me").ok());
  std::ofstream(dir_ + "/objects/tmp/0123.tmp") << "partial";
  fs::create_directories(dir_ + "/objects/blobs/ab");
  std::ofstream(dir_ + "/objects/blobs/ab/abababababababababababababababab") << "orphan";
  auto stats = store_->Recover();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->temp_files_removed, 1u);
  EXPECT_EQ(stats->orphan_blobs_removed, 1u);
  EXPECT_EQ(Read("live"), "keep me");
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

// ---- Concurrency ---------------------------------------------------------------------------

TEST_F(LocalObjectStoreTest, ConcurrentWritersToOneKeyResolveLastWriterWins) {
  constexpr int kThreads = 8, kWrites = 15;
  EXPECT_EQ(ContendedWrites(
                kThreads, kWrites, 1000, [](int t, int) { return "own-" + std::to_string(t); },
                /*missing_bucket_writer=*/false),
            0);
  const std::string final_body = Read("contended");
  EXPECT_EQ(store_->HeadObject("bkt", "contended", {})->etag, QuotedMd5(final_body));
  EXPECT_EQ(CountFiles("blobs"), 1u + kThreads);
  EXPECT_EQ(CountFiles("tmp"), 0u);
}

// ---- Inline bodies -----------------------------------------------------------------------

class InlineBodyTest : public MultipartTest {
 protected:
  static constexpr uint64_t kInlineMax = 6000;  // over one 4096-byte read, under two
  void SetUp() override {
    inline_max_bytes_ = kInlineMax;
    MultipartTest::SetUp();
  }
};

TEST_F(InlineBodyTest, BodiesUpToTheLimitLiveInTheDatabase) {
  const std::string at_limit(kInlineMax, 'x');
  PutOptions known;
  known.content_length = at_limit.size();
  auto put = Put("at-limit", at_limit, known);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, QuotedMd5(at_limit));
  ASSERT_TRUE(Put("empty", "").ok());
  EXPECT_EQ(CountFiles("blobs") + CountFiles("tmp"), 0u);
  EXPECT_EQ(InlineBodies(), 2);
  EXPECT_EQ(Read("at-limit"), at_limit);
  EXPECT_EQ(Read("empty"), "");
  GetOptions range;
  range.range = ParseRange("bytes=5990-");
  auto got = store_->GetObject("bkt", "at-limit", range);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->partial);
  EXPECT_FALSE(got->body->file_region());
  EXPECT_EQ(*got->body->ReadAll(100), std::string(10, 'x'));

  const std::string over(kInlineMax + 1, 'y');
  known.content_length = over.size();
  ASSERT_TRUE(Put("over", over, known).ok());
  EXPECT_EQ(CountFiles("blobs"), 1u);
  EXPECT_EQ(InlineBodies(), 2);
  EXPECT_EQ(Read("over"), over);
}

TEST_F(InlineBodyTest, ABodyOfUnknownLengthMovesToAFileOnceItIsLonger) {
  // Read 4096 bytes at a time: the first read stays in memory, the second spills it.
  std::string body;
  for (int i = 0; i < 10000; ++i) body.push_back(static_cast<char>('a' + i % 26));
  auto put = Put("long", body);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, QuotedMd5(body));
  EXPECT_EQ(CountFiles("blobs"), 1u);
  EXPECT_EQ(CountFiles("tmp"), 0u);
  EXPECT_EQ(InlineBodies(), 0);
  EXPECT_EQ(Read("long"), body);
}

TEST_F(InlineBodyTest, ReplacedAndDeletedVersionsTakeTheirBodiesAlong) {
  ASSERT_TRUE(Put("k", "first").ok());
  ASSERT_TRUE(Put("k", "second").ok());
  EXPECT_EQ(Read("k"), "second");
  EXPECT_EQ(InlineBodies(), 1);
  ASSERT_TRUE(store_->DeleteObject("bkt", "k", "").ok());
  EXPECT_EQ(InlineBodies(), 0);

  ASSERT_TRUE(store_->PutBucketVersioning("bkt", VersioningStatus::kEnabled).ok());
  auto v1 = Put("v", "one");
  auto v2 = Put("v", "two");
  ASSERT_TRUE(v1.ok() && v2.ok());
  ASSERT_TRUE(store_->DeleteObject("bkt", "v", "").ok());  // a delete marker has no body
  EXPECT_EQ(InlineBodies(), 2);
  GetOptions old;
  old.version_id = v1->version_id;
  EXPECT_EQ(Read("v", old), "one");
  ASSERT_TRUE(store_->DeleteObject("bkt", "v", v1->version_id).ok());
  EXPECT_EQ(InlineBodies(), 1);
  old.version_id = v2->version_id;
  EXPECT_EQ(Read("v", old), "two");
  EXPECT_EQ(CountFiles("blobs"), 0u);
}

TEST_F(InlineBodyTest, FailedDigestsAndMissingBucketsLeaveNoBody) {
  PutOptions bad;
  bad.content_md5 = Base64Encode(Md5("something else"));
  EXPECT_EQ(Put("k", "body", bad).status().code(), "BadDigest");
  PutOptions known;
  known.content_length = 4;
  EXPECT_EQ(Put("k", "body", known, "missing").status().code(), "NoSuchBucket");
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  EXPECT_EQ(InlineBodies(), 0);
  EXPECT_EQ(CountFiles("blobs") + CountFiles("tmp"), 0u);
}

// With sync_writes an acknowledged write is on stable storage: an inline body has no file
// to fsync, so its commit must sync the WAL (on this thread, the group commit's only
// writer). Without, commits are not synced, bar the rare WAL restart or checkpoint.
TEST_F(InlineBodyTest, SyncedWritesCommitDurablyAndUnsyncedOnesDoNot) {
  constexpr int kWrites = 20;
  auto syncs_of = [&](const std::string& prefix) {
    const uint64_t before = store::WalSyncsOnThisThread();
    for (int i = 0; i < kWrites; ++i) {
      const std::string key = prefix + std::to_string(i);
      EXPECT_TRUE(Put(key, "body " + key).ok());
      EXPECT_TRUE(store_->PutObjectTags("bkt", key, "", {{"k", "v"}}).ok());
      EXPECT_TRUE(store_->DeleteObject("bkt", key, "").ok());
    }
    return store::WalSyncsOnThisThread() - before;
  };
  EXPECT_GE(syncs_of("synced/"), 3u * kWrites);
  Reopen(nullptr, /*sync_writes=*/false);
  EXPECT_LT(syncs_of("unsynced/"), static_cast<uint64_t>(kWrites));
}

TEST_F(InlineBodyTest, CopiesMoveBytesBetweenInlineAndFileBodies) {
  ASSERT_TRUE(Put("small", "0123456789abcdefghijklmnopqrstuvwxyz").ok());
  const std::string big(kInlineMax * 2, 'b');
  ASSERT_TRUE(Put("big", big).ok());
  CopyOptions copy;
  copy.source_bucket = "bkt";
  copy.source_key = "small";
  auto small_copy = store_->CopyObject("bkt", "small-copy", copy);
  ASSERT_TRUE(small_copy.ok()) << small_copy.status().ToString();
  EXPECT_EQ(small_copy->info.etag, QuotedMd5("0123456789abcdefghijklmnopqrstuvwxyz"));
  copy.source_key = "big";
  copy.checksum_algorithm = ChecksumAlgorithm::kSha256;  // computed while copying
  auto big_copy = store_->CopyObject("bkt", "big-copy", copy);
  ASSERT_TRUE(big_copy.ok()) << big_copy.status().ToString();
  EXPECT_EQ(big_copy->info.checksums.sha256,
            Base64Encode(ComputeChecksum(ChecksumAlgorithm::kSha256, big)));
  EXPECT_EQ(InlineBodies(), 2);
  EXPECT_EQ(CountFiles("blobs"), 2u);
  EXPECT_EQ(Read("small-copy"), "0123456789abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(Read("big-copy"), big);

  // A part copied from an inline body is a file, as every part is.
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  UploadPartCopyOptions part;
  part.source_bucket = "bkt";
  part.source_key = "small";
  part.source_range = ParseRange("bytes=10-35");
  auto p1 = store_->UploadPartCopy("bkt", "mp", upload->upload_id, 1, part);
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(p1->etag, QuotedMd5("abcdefghijklmnopqrstuvwxyz"));
  EXPECT_EQ(CountFiles("blobs"), 3u);
  auto done = store_->CompleteMultipartUpload("bkt", "mp", upload->upload_id, {{1, p1->etag, {}}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Read("mp"), "abcdefghijklmnopqrstuvwxyz");

  // Bodies written under another limit stay where they are and copy by the current one.
  inline_max_bytes_ = 8;
  Reopen();
  copy.source_key = "small";
  copy.checksum_algorithm = ChecksumAlgorithm::kNone;
  ASSERT_TRUE(store_->CopyObject("bkt", "now-a-file", copy).ok());
  EXPECT_EQ(Read("now-a-file"), "0123456789abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(Read("small"), "0123456789abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(CountFiles("blobs"), 4u);  // big, big-copy, mp and now-a-file
}

TEST_F(InlineBodyTest, ACrashAfterTheCommitKeepsTheNewBody) {
  ASSERT_TRUE(Put("k", "old").ok());
  Reopen([](CrashPoint p) { return p == CrashPoint::kCommitted; });
  EXPECT_FALSE(Put("k", "new").ok());
  Reopen();
  ASSERT_TRUE(store_->Recover().ok());
  EXPECT_EQ(Read("k"), "new");
  EXPECT_EQ(InlineBodies(), 1);
  EXPECT_EQ(CountFiles("blobs") + CountFiles("tmp"), 0u);
}

TEST_F(InlineBodyTest, ConcurrentWritersNeverSeeATornOrForeignBody) {
  constexpr int kThreads = 6, kWrites = 20;
  // Writes to a missing bucket share the others' group commits and fail alone.
  EXPECT_EQ(ContendedWrites(
                kThreads, kWrites, 100,
                [](int t, int i) { return "own-" + std::to_string(t) + "-" + std::to_string(i); },
                /*missing_bucket_writer=*/true),
            0);
  EXPECT_EQ(InlineBodies(), 1 + kThreads * kWrites);
  EXPECT_EQ(CountFiles("blobs") + CountFiles("tmp"), 0u);
}

TEST_F(InlineBodyTest, AWriteThatFailsInASharedCommitFailsAlone) {
  // Every write of the key "poison" fails halfway through its version row, after its body
  // is in: the commit it shares must be undone and the others' versions written anyway.
  ASSERT_TRUE(db_->Exec("CREATE TRIGGER poison BEFORE INSERT ON objects_versions "
                        "WHEN NEW.key = CAST('poison' AS BLOB) "
                        "BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
                  .ok());
  constexpr int kThreads = 6, kWrites = 20;
  std::atomic<int> failures{0};
  std::atomic<int> poisoned{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        const std::string key = "k-" + std::to_string(t) + "-" + std::to_string(i);
        auto put = Put(key, key);
        if (!put.ok() || put->etag != QuotedMd5(key)) ++failures;
        if (t == 0 && !Put("poison", "x").ok()) ++poisoned;
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(poisoned.load(), kWrites);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kWrites; ++i) {
      const std::string key = "k-" + std::to_string(t) + "-" + std::to_string(i);
      EXPECT_EQ(Read(key), key);
    }
  }
  EXPECT_EQ(store_->HeadObject("bkt", "poison", {}).status().code(), "NoSuchKey");
  EXPECT_EQ(InlineBodies(), kThreads * kWrites);  // none of the poisoned bodies stayed
}

}  // namespace
}  // namespace nimbus::objects
