#include "app/config.h"

#include <gtest/gtest.h>

#include <map>

namespace nimbus::app {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) {
    auto it = vars.find(name);
    return it == vars.end() ? std::string() : it->second;
  };
}

TEST(ServeConfigTest, DefaultsMatchTheDocumentedOnes) {
  auto config = ParseServeConfig({}, Env({}));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->host, "127.0.0.1");
  EXPECT_EQ(config->port, 4566);
  EXPECT_EQ(config->data_dir, "./nimbus-data");
  EXPECT_EQ(config->region, "us-east-1");
  EXPECT_EQ(config->account_id, "000000000000");
}

TEST(ServeConfigTest, FlagsOverrideEnvironmentWhichOverridesDefaults) {
  auto config = ParseServeConfig(
      {"--port", "5000", "--region=eu-west-1"},
      Env({{"NIMBUS_PORT", "4000"}, {"NIMBUS_DATA", "/tmp/d"}, {"NIMBUS_HOST", "0.0.0.0"}}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->port, 5000);
  EXPECT_EQ(config->region, "eu-west-1");
  EXPECT_EQ(config->data_dir, "/tmp/d");
  EXPECT_EQ(config->host, "0.0.0.0");
}

TEST(ServeConfigTest, RejectsBadValuesNamingTheFlag) {
  auto bad_port = ParseServeConfig({"--port", "70000"}, Env({}));
  ASSERT_FALSE(bad_port.ok());
  EXPECT_NE(bad_port.status().message().find("--port"), std::string::npos);
  EXPECT_FALSE(ParseServeConfig({"--account-id", "12"}, Env({})).ok());
  EXPECT_FALSE(ParseServeConfig({"--nope", "1"}, Env({})).ok());
  EXPECT_FALSE(ParseServeConfig({"--port"}, Env({})).ok());
  auto bad_env = ParseServeConfig({}, Env({{"NIMBUS_LOG_LEVEL", "loud"}}));
  ASSERT_FALSE(bad_env.ok());
  EXPECT_NE(bad_env.status().message().find("NIMBUS_LOG_LEVEL"), std::string::npos);
}

TEST(ServeConfigTest, ReadsCapacityAndSandbox) {
  auto config = ParseServeConfig(
      {"--capacity-vcpus", "8", "--sandbox", "off"},
      Env({{"NIMBUS_CAPACITY_MEMORY_MIB", "16384"}, {"NIMBUS_CAPACITY_GPUS", "0"}}));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->capacity_vcpus, 8);
  EXPECT_EQ(config->capacity_memory_mib, 16384);
  EXPECT_EQ(config->capacity_gpus, 0);
  EXPECT_EQ(config->sandbox, "off");
  EXPECT_FALSE(ParseServeConfig({"--capacity-vcpus", "0"}, Env({})).ok());
  EXPECT_FALSE(ParseServeConfig({"--sandbox", "maybe"}, Env({})).ok());
  EXPECT_EQ(ParseServeConfig({}, Env({}))->capacity_gpus, -1);
}

TEST(ServeConfigTest, SyncWritesDefaultsOnAndTakesOnOrOff) {
  EXPECT_TRUE(ParseServeConfig({}, Env({}))->sync_writes);
  EXPECT_FALSE(ParseServeConfig({"--sync-writes", "off"}, Env({}))->sync_writes);
  EXPECT_FALSE(ParseServeConfig({}, Env({{"NIMBUS_SYNC_WRITES", "off"}}))->sync_writes);
  EXPECT_TRUE(
      ParseServeConfig({"--sync-writes=on"}, Env({{"NIMBUS_SYNC_WRITES", "off"}}))->sync_writes);
  auto bad = ParseServeConfig({"--sync-writes", "sometimes"}, Env({}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sync-writes"), std::string::npos);
}

}  // namespace
}  // namespace nimbus::app
