#include "objects/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace nimbus::objects {
namespace {

namespace fs = std::filesystem;

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-archive-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // A tar.gz holding one entry named `name`.
  void WriteTarWithEntry(const std::string& path, const std::string& name) {
    archive* a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, 1);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, "x", 1);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
  }
  std::string dir_;
};

TEST_F(ArchiveTest, RoundTripsADirectoryTree) {
  fs::create_directories(dir_ + "/model/sub");
  std::ofstream(dir_ + "/model/xgboost-model") << "weights";
  std::ofstream(dir_ + "/model/sub/meta.json") << "{}";
  ASSERT_TRUE(CreateTarGz(dir_ + "/model", dir_ + "/model.tar.gz").ok());
  ASSERT_TRUE(ExtractArchive(dir_ + "/model.tar.gz", dir_ + "/out").ok());
  EXPECT_EQ(Read(dir_ + "/out/xgboost-model"), "weights");
  EXPECT_EQ(Read(dir_ + "/out/sub/meta.json"), "{}");
}

TEST_F(ArchiveTest, AnEmptyDirectoryMakesAnEmptyArchive) {
  ASSERT_TRUE(CreateTarGz(dir_ + "/missing", dir_ + "/empty.tar.gz").ok());
  ASSERT_TRUE(ExtractArchive(dir_ + "/empty.tar.gz", dir_ + "/out").ok());
  EXPECT_TRUE(fs::is_empty(dir_ + "/out"));
}

TEST_F(ArchiveTest, RefusesEntriesThatEscapeTheTarget) {
  for (const std::string name : {"../evil", "/etc/evil", "a/../../evil"}) {
    WriteTarWithEntry(dir_ + "/bad.tar.gz", name);
    Status s = ExtractArchive(dir_ + "/bad.tar.gz", dir_ + "/out/inner");
    EXPECT_FALSE(s.ok()) << name;
    EXPECT_NE(s.message().find("outside"), std::string::npos) << s.message();
  }
  EXPECT_FALSE(fs::exists(dir_ + "/out/evil"));
  EXPECT_FALSE(fs::exists(dir_ + "/evil"));
  std::ofstream(dir_ + "/garbage.tar.gz") << "not an archive";
  EXPECT_FALSE(ExtractArchive(dir_ + "/garbage.tar.gz", dir_ + "/g").ok());
}

}  // namespace
}  // namespace nimbus::objects
