#include "objects/transfer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "objects/local_object_store.h"
#include "store/database.h"

namespace nimbus::objects {
namespace {

namespace fs = std::filesystem;

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-transfer-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_ + "/data");
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    LocalObjectStoreOptions options;
    options.data_dir = dir_ + "/data";
    options.db = db_.get();
    auto opened = LocalObjectStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    ASSERT_TRUE(store_->CreateBucket("bkt", "us-east-1", "000000000000").ok());
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }

  void Put(const std::string& key, const std::string& body) {
    http::StringBodyReader reader(body);
    ASSERT_TRUE(store_->PutObject("bkt", key, reader, {}).ok()) << key;
  }
  std::string Get(const std::string& key) {
    auto got = store_->GetObject("bkt", key, {});
    if (!got.ok()) return "<" + got.status().code() + ">";
    return *got->body->ReadAll(1 << 20);
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<LocalObjectStore> store_;
};

TEST(S3UriTest, ParsesBucketAndKey) {
  auto loc = ParseS3Uri("s3://bkt/a/b.csv");
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->bucket, "bkt");
  EXPECT_EQ(loc->key, "a/b.csv");
  EXPECT_EQ(ParseS3Uri("s3://bkt")->key, "");
  EXPECT_FALSE(ParseS3Uri("http://bkt/a").ok());
  EXPECT_FALSE(ParseS3Uri("s3:///a").ok());
}

TEST_F(TransferTest, DownloadsAPrefixRelativeToItsFolder) {
  Put("data/train/a.csv", "1,2\n");
  Put("data/train/sub/b.csv", "3,4\n");
  Put("data/train/", "");
  Put("data/other.csv", "x");
  auto stats = DownloadPrefix(*store_, {"bkt", "data/train/"}, dir_ + "/ch");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 2);
  EXPECT_EQ(stats->bytes, 8);
  EXPECT_EQ(ReadFile(dir_ + "/ch/a.csv"), "1,2\n");
  EXPECT_EQ(ReadFile(dir_ + "/ch/sub/b.csv"), "3,4\n");
  EXPECT_FALSE(fs::exists(dir_ + "/ch/other.csv"));

  ASSERT_TRUE(DownloadPrefix(*store_, {"bkt", "data/other.csv"}, dir_ + "/one").ok());
  EXPECT_EQ(ReadFile(dir_ + "/one/other.csv"), "x");
  // A prefix without its trailing '/' that names a folder lands the same way.
  ASSERT_TRUE(DownloadPrefix(*store_, {"bkt", "data/train"}, dir_ + "/noslash").ok());
  EXPECT_EQ(ReadFile(dir_ + "/noslash/a.csv"), "1,2\n");
  EXPECT_EQ(ReadFile(dir_ + "/noslash/sub/b.csv"), "3,4\n");
}

TEST_F(TransferTest, RefusesKeysThatAreNotSafePaths) {
  Put("p/../../escape", "x");
  auto stats = DownloadPrefix(*store_, {"bkt", "p/"}, dir_ + "/ch");
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.status().message().find("p/../../escape"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ + "/escape"));
}

TEST_F(TransferTest, AnEmptyPrefixIsAnErrorNamingTheUri) {
  auto stats = DownloadPrefix(*store_, {"bkt", "nothing/"}, dir_ + "/ch");
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.status().message().find("s3://bkt/nothing/"), std::string::npos);
  EXPECT_EQ(DownloadPrefix(*store_, {"nobucket", ""}, dir_ + "/ch").status().code(),
            "NoSuchBucket");
}

TEST_F(TransferTest, DownloadsWhatAManifestLists) {
  Put("m/x/1.csv", "one");
  Put("m/x/2.csv", "two");
  Put("m/x/3.csv", "three");
  Put("manifest", R"([{"prefix": "s3://bkt/m/x/"}, "1.csv", "3.csv"])");
  auto stats = DownloadManifest(*store_, {"bkt", "manifest"}, dir_ + "/ch");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 2);
  EXPECT_EQ(ReadFile(dir_ + "/ch/1.csv"), "one");
  EXPECT_EQ(ReadFile(dir_ + "/ch/3.csv"), "three");
  EXPECT_FALSE(fs::exists(dir_ + "/ch/2.csv"));
  Put("bad", "{}");
  EXPECT_FALSE(DownloadManifest(*store_, {"bkt", "bad"}, dir_ + "/ch2").ok());
}

TEST_F(TransferTest, UploadsADirectoryUnderAPrefix) {
  fs::create_directories(dir_ + "/out/sub");
  std::ofstream(dir_ + "/out/model.bin") << "weights";
  std::ofstream(dir_ + "/out/sub/log.txt") << "log";
  auto stats = UploadDirectory(*store_, dir_ + "/out", {"bkt", "jobs/j1/output"});
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 2);
  EXPECT_EQ(Get("jobs/j1/output/model.bin"), "weights");
  EXPECT_EQ(Get("jobs/j1/output/sub/log.txt"), "log");
  EXPECT_EQ(UploadDirectory(*store_, dir_ + "/missing", {"bkt", "x"})->files, 0);
}

}  // namespace
}  // namespace nimbus::objects
