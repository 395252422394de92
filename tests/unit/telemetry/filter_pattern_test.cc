#include "telemetry/filter_pattern.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nimbus::telemetry {
namespace {

struct MatchCase {
  const char* pattern;
  const char* message;
  bool matches;
};

const std::vector<MatchCase> kMatchCases = {
    // Empty pattern: everything.
    {"", "anything at all", true},
    {"   ", "anything at all", true},
    // Terms: all must occur, case-sensitively, as substrings.
    {"ERROR", "2024 ERROR disk full", true},
    {"ERROR", "2024 error disk full", false},
    {"ERROR disk", "2024 ERROR disk full", true},
    {"ERROR network", "2024 ERROR disk full", false},
    {"ERR", "2024 ERROR disk full", true},
    // Quoted phrases are one term, with escapes.
    {"\"disk full\"", "2024 ERROR disk full", true},
    {"\"full disk\"", "2024 ERROR disk full", false},
    {"\"say \\\"hi\\\"\"", "they say \"hi\" here", true},
    {"\"a:b\" ERROR", "ERROR at a:b", true},
    // ?terms: any one of them.
    {"?ERROR ?WARN", "WARN low memory", true},
    {"?ERROR ?WARN", "INFO all good", false},
    {"?ERROR ?\"low memory\"", "INFO low memory", true},
    // -terms: exclusions.
    {"ERROR -Retry", "ERROR timeout", true},
    {"ERROR -Retry", "ERROR timeout, Retry 3", false},
    {"-DEBUG", "INFO up", true},
    {"-DEBUG", "DEBUG x=1", false},
    {"-\"health check\"", "GET /health check", false},
    // Terms combined with ?terms: all plain terms and one of the ?terms.
    {"api ?500 ?503", "api returned 503", true},
    {"api ?500 ?503", "api returned 200", false},
    {"api ?500 ?503", "web returned 500", false},
    // JSON: string equality, exact and with wildcards.
    {"{ $.eventType = \"UpdateTrail\" }", R"({"eventType":"UpdateTrail"})", true},
    {"{ $.eventType = \"UpdateTrail\" }", R"({"eventType":"UpdateTrails"})", false},
    {"{ $.eventType = UpdateTrail }", R"({"eventType":"UpdateTrail"})", true},
    {"{ $.eventType = \"Update*\" }", R"({"eventType":"UpdateTrail"})", true},
    {"{ $.source = \"*.amazonaws.com\" }", R"({"source":"s3.amazonaws.com"})", true},
    {"{ $.ip = 10.0.* }", R"({"ip":"10.0.3.4"})", true},
    {"{ $.ip = 10.0.* }", R"({"ip":"10.1.3.4"})", false},
    {"{ $.eventType != \"UpdateTrail\" }", R"({"eventType":"CreateTrail"})", true},
    {"{ $.eventType != \"UpdateTrail\" }", R"({"eventType":"UpdateTrail"})", false},
    {"{ $.eventType != \"UpdateTrail\" }", R"({"other":1})", false},  // absent: no match
    // JSON: nested fields and arrays.
    {"{ $.a.b.c = \"x\" }", R"({"a":{"b":{"c":"x"}}})", true},
    {"{ $.a.b.c = \"x\" }", R"({"a":{"b":"x"}})", false},
    {"{ $.users[1].name = \"bo\" }", R"({"users":[{"name":"al"},{"name":"bo"}]})", true},
    {"{ $.users[0].name = \"bo\" }", R"({"users":[{"name":"al"},{"name":"bo"}]})", false},
    {"{ $.users[5].name = \"bo\" }", R"({"users":[{"name":"al"}]})", false},
    {"{ $.users[*].name = \"bo\" }", R"({"users":[{"name":"al"},{"name":"bo"}]})", true},
    // JSON: numbers.
    {"{ $.latency > 100 }", R"({"latency":150})", true},
    {"{ $.latency > 100 }", R"({"latency":100})", false},
    {"{ $.latency >= 100 }", R"({"latency":100})", true},
    {"{ $.latency < 1.5 }", R"({"latency":1.25})", true},
    {"{ $.latency <= -2 }", R"({"latency":-3})", true},
    {"{ $.latency = 50 }", R"({"latency":50.0})", true},
    {"{ $.latency != 50 }", R"({"latency":51})", true},
    {"{ $.latency > 100 }", R"({"latency":"150"})", false},  // a string is not a number
    {"{ $.code = \"200\" }", R"({"code":200})", true},       // string vs JSON text
    // JSON: && binds tighter than ||; parentheses.
    {"{ $.a = 1 && $.b = 2 }", R"({"a":1,"b":2})", true},
    {"{ $.a = 1 && $.b = 2 }", R"({"a":1,"b":3})", false},
    {"{ $.a = 1 || $.b = 2 }", R"({"a":0,"b":2})", true},
    {"{ $.a = 1 || $.b = 2 && $.c = 3 }", R"({"a":1,"b":0,"c":0})", true},
    {"{ ($.a = 1 || $.b = 2) && $.c = 3 }", R"({"a":1,"b":0,"c":0})", false},
    {"{ ($.a = 1 || $.b = 2) && $.c = 3 }", R"({"a":0,"b":2,"c":3})", true},
    {"{(($.a=1))}", R"({"a":1})", true},
    // JSON: IS NULL / TRUE / FALSE and NOT EXISTS.
    {"{ $.err IS NULL }", R"({"err":null})", true},
    {"{ $.err IS NULL }", R"({"err":"x"})", false},
    {"{ $.err IS NULL }", R"({})", false},
    {"{ $.err NOT EXISTS }", R"({})", true},
    {"{ $.err NOT EXISTS }", R"({"err":null})", false},
    {"{ $.ok IS TRUE }", R"({"ok":true})", true},
    {"{ $.ok IS FALSE }", R"({"ok":true})", false},
    {"{ $.ok is false }", R"({"ok":false})", true},
    // JSON patterns only match JSON messages.
    {"{ $.a = 1 }", "a = 1", false},
    {"{ $.a = 1 }", R"({"a":1)", false},
    {"{ $.a = 1 }", R"(  {"a":1}  )", true},
};

TEST(FilterPatternTest, MatchesAsCloudWatchLogsDoes) {
  for (const MatchCase& c : kMatchCases) {
    auto pattern = FilterPattern::Parse(c.pattern);
    ASSERT_TRUE(pattern.ok()) << c.pattern << ": " << pattern.status().ToString();
    EXPECT_EQ(pattern->Matches(c.message), c.matches)
        << "pattern " << c.pattern << " on message " << c.message;
  }
}

const std::vector<const char*> kInvalidPatterns = {
    "\"unterminated",    "{ $.a = 1",          "{ a = 1 }",        "{ $.a }",
    "{ $.a = }",         "{ $. = 1 }",         "{ $.a > abc }",    "{ $.a = 1 && }",
    "{ ($.a = 1 }",      "{ $.a = 1 ) }",      "{ $.a IS MAYBE }", "{ $.a NOT THERE }",
    "{ $.list[x] = 1 }", "{ $.list[-1] = 1 }", "{ $.list[0 = 1 }", "[ip, user, status]",
    "%ERROR [0-9]+%",    "ERROR { $.a = 1 }",  "ab\"cd",           "\"quoted\"tail",
};

TEST(FilterPatternTest, RejectsInvalidPatternsWithInvalidParameterException) {
  for (const char* text : kInvalidPatterns) {
    auto pattern = FilterPattern::Parse(text);
    ASSERT_FALSE(pattern.ok()) << text;
    EXPECT_EQ(pattern.status().code(), "InvalidParameterException") << text;
    EXPECT_EQ(pattern.status().http_status(), 400);
    EXPECT_EQ(pattern.status().message().rfind("Invalid filter pattern", 0), 0u)
        << pattern.status().message();
  }
}

TEST(FilterPatternTest, DeepNestingIsRefusedNotAStackOverflow) {
  std::string deep = "{ " + std::string(10000, '(') + "$.a = 1" + std::string(10000, ')') + " }";
  auto pattern = FilterPattern::Parse(deep);
  ASSERT_FALSE(pattern.ok());
  EXPECT_EQ(pattern.status().code(), "InvalidParameterException");
  std::string ok = "{ " + std::string(20, '(') + "$.a = 1" + std::string(20, ')') + " }";
  auto shallow = FilterPattern::Parse(ok);
  ASSERT_TRUE(shallow.ok());
  EXPECT_TRUE(shallow->Matches(R"({"a":1})"));
}

TEST(FilterPatternTest, DefaultAndEmptyPatternsMatchEverything) {
  FilterPattern all;
  EXPECT_TRUE(all.MatchesEverything());
  EXPECT_TRUE(all.Matches(""));
  auto blank = FilterPattern::Parse("  ");
  ASSERT_TRUE(blank.ok());
  EXPECT_TRUE(blank->MatchesEverything());
  auto term = FilterPattern::Parse("x");
  ASSERT_TRUE(term.ok());
  EXPECT_FALSE(term->MatchesEverything());
  EXPECT_EQ(term->text(), "x");
}

TEST(FilterPatternTest, CopiesShareTheParsedPattern) {
  auto parsed = FilterPattern::Parse("{ $.level = \"error\" }");
  ASSERT_TRUE(parsed.ok());
  FilterPattern copy = *parsed;
  EXPECT_TRUE(copy.Matches(R"({"level":"error"})"));
  EXPECT_FALSE(copy.Matches(R"({"level":"info"})"));
}

}  // namespace
}  // namespace nimbus::telemetry
