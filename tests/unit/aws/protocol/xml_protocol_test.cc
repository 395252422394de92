// Tests of the XML protocols: the XML DOM and writer, the query protocol (parameters in,
// XML out) and the rest-xml bodies, against hand-built shapes for the edge cases and
// against the embedded iam/sts/cloudwatch/s3 models for what real clients send. The
// request fixtures are what botocore 1.29 (Debian python3-botocore) serializes for the
// same calls; the response expectations follow botocore's QueryParser/RestXMLParser.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aws/model/model.h"
#include "aws/protocol/query.h"
#include "aws/protocol/rest_xml.h"
#include "aws/protocol/xml.h"

namespace nimbus::aws::protocol {
namespace {

using model::Member;
using model::Shape;
using model::ShapeType;
using Params = std::vector<std::pair<std::string, std::string>>;

Value List(std::initializer_list<Value> items) { return Value(Value::List(items)); }

// --- A hand-built model covering every serialization trait ---

Member Ref(std::string name, const Shape* shape, std::string location_name = "") {
  Member m;
  m.name = std::move(name);
  m.shape = shape;
  m.location_name = std::move(location_name);
  return m;
}

class HandModel {
 public:
  HandModel() {
    str_ = Add("String", ShapeType::kString);
    int_ = Add("Integer", ShapeType::kInteger);
    bool_ = Add("Boolean", ShapeType::kBoolean);
    double_ = Add("Double", ShapeType::kDouble);
    ts_ = Add("Timestamp", ShapeType::kTimestamp);
    blob_ = Add("Blob", ShapeType::kBlob);

    Shape* names = Add("NameList", ShapeType::kList);
    names->member = Ref("", str_);
    Shape* items = Add("ItemList", ShapeType::kList);
    items->member = Ref("", str_, "Item");
    items->flattened = true;
    Shape* flat = Add("FlatList", ShapeType::kList);
    flat->member = Ref("", str_);
    flat->flattened = true;
    Shape* custom = Add("CustomList", ShapeType::kList);
    custom->member = Ref("", str_, "item");

    Shape* tag = Add("Tag", ShapeType::kStructure);
    tag->members = {Ref("Key", str_), Ref("Value", str_)};
    Shape* tags = Add("TagList", ShapeType::kList);
    tags->member = Ref("", tag);

    Shape* attrs = Add("AttrMap", ShapeType::kMap);
    attrs->key = Ref("", str_);
    attrs->value = Ref("", str_);
    Shape* limits = Add("LimitMap", ShapeType::kMap);
    limits->key = Ref("", str_, "Name");
    limits->value = Ref("", int_, "Val");
    limits->flattened = true;

    Shape* inner = Add("Inner", ShapeType::kStructure);
    inner->members = {Ref("Leaf", str_)};
    Shape* nested = Add("Nested", ShapeType::kStructure);
    nested->members = {Ref("Inner", inner), Ref("Count", int_)};

    input_ = Add("Input", ShapeType::kStructure);
    input_->members = {
        Ref("Name", str_),     Ref("Count", int_),    Ref("Enabled", bool_),
        Ref("Ratio", double_), Ref("When", ts_),      Ref("Data", blob_),
        Ref("Names", names),   Ref("Items", items),   Ref("Flat", flat),
        Ref("Custom", custom), Ref("Tags", tags),     Ref("Attrs", attrs),
        Ref("Limits", limits), Ref("Nested", nested), Ref("Renamed", str_, "renamed-wire"),
    };

    service_.name = "hand";
    service_.protocol = "query";
    service_.xml_namespace = "https://hand.example.com/doc/2020-01-01/";
    op_.name = "DoThing";
    op_.input = input_;
    op_.output = input_;
  }

  const Shape* input() const { return input_; }
  const model::ServiceModel& service() const { return service_; }
  const model::Operation& op() const { return op_; }
  model::Operation& mutable_op() { return op_; }
  Shape* Add(std::string name, ShapeType type) {
    auto shape = std::make_unique<Shape>();
    shape->name = name;
    shape->type = type;
    Shape* raw = shape.get();
    service_.shapes.emplace(std::move(name), std::move(shape));
    return raw;
  }
  const Shape* string_shape() const { return str_; }
  const Shape* int_shape() const { return int_; }

 private:
  model::ServiceModel service_;
  model::Operation op_;
  const Shape* str_;
  const Shape* int_;
  const Shape* bool_;
  const Shape* double_;
  const Shape* ts_;
  const Shape* blob_;
  Shape* input_;
};

// --- XML DOM and writer ---

TEST(XmlParseTest, ReadsLocalNamesAttributesTextAndCdata) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\"?>\n<s3:Root xmlns:s3=\"urn:x\" a=\"1 &amp; 2\">"
      "<Key>a &lt;b&gt; &#x41;</Key><s3:Data><![CDATA[<raw>]]></s3:Data><Empty/>"
      "<Space>  </Space></s3:Root>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "Root");
  ASSERT_NE(doc->Attribute("a"), nullptr);
  EXPECT_EQ(*doc->Attribute("a"), "1 & 2");
  ASSERT_NE(doc->Child("Key"), nullptr);
  EXPECT_EQ(doc->Child("Key")->text, "a <b> A");
  ASSERT_NE(doc->Child("Data"), nullptr);
  EXPECT_EQ(doc->Child("Data")->text, "<raw>");
  EXPECT_EQ(doc->Child("Empty")->text, "");
  EXPECT_EQ(doc->Child("Space")->text, "  ");
  EXPECT_EQ(doc->Child("Missing"), nullptr);
  EXPECT_EQ(doc->Children("Key").size(), 1u);
}

TEST(XmlParseTest, MatchesPrefixedAttributesByLocalName) {
  auto doc = ParseXml("<G xmlns:x=\"urn:i\" x:type=\"CanonicalUser\"/>");
  ASSERT_TRUE(doc.ok());
  ASSERT_NE(doc->Attribute("xsi:type"), nullptr);
  EXPECT_EQ(*doc->Attribute("xsi:type"), "CanonicalUser");
  EXPECT_EQ(doc->Attribute("other"), nullptr);
}

TEST(XmlParseTest, RejectsMalformedAndHostileDocuments) {
  const std::vector<std::string> cases = {
      "",
      "   ",
      "not xml",
      "<a>",
      "<a></b>",
      "<a/><b/>",
      "<a x=\"1></a>",
      "<a>&#xZZ;</a><",
      // Entity expansion (billion laughs) and external entities (XXE) need a DOCTYPE.
      "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><a>&lol2;</a>",
      "<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><a>&xxe;</a>",
      "<!DOCTYPE a SYSTEM \"http://example.com/a.dtd\"><a/>",
  };
  for (const std::string& text : cases) {
    auto doc = ParseXml(text);
    ASSERT_FALSE(doc.ok()) << text;
    EXPECT_EQ(doc.status().kind(), ErrorKind::kSerialization) << text;
  }
}

std::string Nest(int depth) {
  std::string out;
  for (int i = 0; i < depth; ++i) out += "<a>";
  for (int i = 0; i < depth; ++i) out += "</a>";
  return out;
}

TEST(XmlParseTest, EnforcesTheDepthLimitWithoutCrashing) {
  EXPECT_TRUE(ParseXml(Nest(kMaxXmlDepth)).ok());
  auto too_deep = ParseXml(Nest(kMaxXmlDepth + 1));
  ASSERT_FALSE(too_deep.ok());
  EXPECT_EQ(too_deep.status().kind(), ErrorKind::kSerialization);
  EXPECT_FALSE(ParseXml(Nest(200000)).ok());
}

TEST(XmlWriterTest, EscapesMarkupQuotesAndControlCharacters) {
  XmlWriter w;
  w.Declaration();
  w.Open("R", {{"a", "x\"y'<&>\t\n\r"}});
  w.Element("T", "a&b<c>d\"e'f\tg\nh\ri\x01j\x1f");
  w.Open("Open");
  EXPECT_EQ(w.Finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<R a=\"x&quot;y&apos;&lt;&amp;&gt;&#x9;&#xA;&#xD;\">"
            "<T>a&amp;b&lt;c&gt;d&quot;e&apos;f\tg\nh&#xD;i&#x1;j&#x1F;</T><Open></Open></R>");
  EXPECT_EQ(w.Finish(), "");
}

TEST(XmlWriterTest, TextRoundTripsThroughTheParser) {
  const std::string text = "tab\there\nline & <tag> \"q\" 'a' \r cr \x01";
  XmlWriter w;
  w.Open("R", {{"attr", text}});
  w.Text(text);
  auto doc = ParseXml(w.Finish());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->text, text);
  EXPECT_EQ(*doc->Attribute("attr"), text);
}

// --- Query parameters ---

struct QueryCase {
  std::string label;
  Params params;
  Value expected;
};

TEST(QueryParseTest, MapsParametersToValues) {
  HandModel m;
  const std::vector<QueryCase> cases = {
      {"scalars",
       {{"Name", "n"},
        {"Count", "42"},
        {"Enabled", "true"},
        {"Ratio", "1.5"},
        {"When", "2026-11-25T10:00:00Z"},
        {"Data", "aGk="}},
       Value::Object({{"Name", "n"},
                      {"Count", 42},
                      {"Enabled", true},
                      {"Ratio", 1.5},
                      {"When", Value::Timestamp(1795600800)},
                      {"Data", Value::Blob("hi")}})},
      {"list ordered by index with gaps",
       {{"Names.member.10", "d"}, {"Names.member.1", "a"}, {"Names.member.3", "c"}},
       Value::Object({{"Names", List({"a", "c", "d"})}})},
      {"empty list", {{"Names", ""}}, Value::Object({{"Names", Value::MakeList()}})},
      {"flattened list named by its member",
       {{"Item.2", "y"}, {"Item.1", "x"}},
       Value::Object({{"Items", List({"x", "y"})}})},
      {"flattened list",
       {{"Flat.1", "p"}, {"Flat.2", "q"}},
       Value::Object({{"Flat", List({"p", "q"})}})},
      {"list member locationName",
       {{"Custom.item.1", "i"}},
       Value::Object({{"Custom", List({"i"})}})},
      {"list of structures",
       {{"Tags.member.1.Key", "k1"},
        {"Tags.member.1.Value", "v1"},
        {"Tags.member.2.Key", "k2"},
        {"Tags.member.2.Value", "v2"}},
       Value::Object({{"Tags", List({Value::Object({{"Key", "k1"}, {"Value", "v1"}}),
                                     Value::Object({{"Key", "k2"}, {"Value", "v2"}})})}})},
      {"map",
       {{"Attrs.entry.1.key", "a"},
        {"Attrs.entry.1.value", "1"},
        {"Attrs.entry.2.key", "b"},
        {"Attrs.entry.2.value", "2"}},
       Value::Object({{"Attrs", Value::Object({{"a", "1"}, {"b", "2"}})}})},
      {"flattened map with key and value names",
       {{"Limits.1.Name", "cpu"}, {"Limits.1.Val", "4"}, {"Limits.2.Name", "mem"}},
       Value::Object({{"Limits", Value::Object({{"cpu", 4}})}})},
      {"nested structures",
       {{"Nested.Inner.Leaf", "deep"}, {"Nested.Count", "7"}},
       Value::Object({{"Nested", Value::Object({{"Inner", Value::Object({{"Leaf", "deep"}})},
                                                {"Count", 7}})}})},
      {"member locationName",
       {{"renamed-wire", "w"}, {"Renamed", "ignored"}},
       Value::Object({{"Renamed", "w"}})},
      {"action, version and unknown parameters ignored",
       {{"Action", "DoThing"}, {"Version", "2020-01-01"}, {"Bogus.member.1", "x"}, {"Name", "n"}},
       Value::Object({{"Name", "n"}})},
      {"last repeated key wins",
       {{"Name", "first"}, {"Name", "second"}},
       Value::Object({{"Name", "second"}})},
      {"huge and zero-padded indexes ordered numerically",
       {{"Names.member.99999999999999999999999", "last"},
        {"Names.member.2", "b"},
        {"Names.member.01", "a"},
        {"Names.member.x", "not an index"}},
       Value::Object({{"Names", List({"a", "b", "last"})}})},
  };
  for (const QueryCase& c : cases) {
    auto parsed = ParseQueryParams(m.input(), c.params);
    ASSERT_TRUE(parsed.ok()) << c.label << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, c.expected) << c.label;
  }
}

TEST(QueryParseTest, RejectsUnparseableScalarsNamingTheParameter) {
  HandModel m;
  const std::vector<std::pair<Params, std::string>> cases = {
      {{{"Count", "forty"}}, "Count"},
      {{{"Enabled", "yes"}}, "Enabled"},
      {{{"When", "yesterday"}}, "When"},
      {{{"Data", "***"}}, "Data"},
      {{{"Nested.Count", "1.5"}}, "Nested.Count"},
      {{{"Limits.1.Name", "x"}, {"Limits.1.Val", "big"}}, "Limits.1.Val"},
  };
  for (const auto& [params, name] : cases) {
    auto parsed = ParseQueryParams(m.input(), params);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().kind(), ErrorKind::kSerialization);
    EXPECT_NE(parsed.status().message().find("'" + name + "'"), std::string::npos)
        << parsed.status().message();
  }
}

TEST(QueryParseTest, RefusesKeysNestedTooDeep) {
  HandModel m;
  std::string key = "Nested";
  for (size_t i = 0; i < kMaxQueryKeyDepth; ++i) key += ".Inner";
  auto parsed = ParseQueryParams(m.input(), {{key, "x"}});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().kind(), ErrorKind::kSerialization);
}

TEST(QueryParseTest, NoInputShapeGivesAnEmptyMap) {
  auto parsed = ParseQueryParams(nullptr, {{"Action", "GetCallerIdentity"}});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, Value::MakeMap());
}

// --- Query responses and errors ---

TEST(QueryResponseTest, SerializesMembersInModelOrderInsideTheResult) {
  HandModel m;
  Value output = Value::Object({
      {"Renamed", "r"},
      {"Name", "a&b"},
      {"Count", 3},
      {"Enabled", false},
      {"When", Value::Timestamp(1795600800.25)},
      {"Data", Value::Blob("hi")},
      {"Names", List({"x", "y"})},
      {"Items", List({"i1", "i2"})},
      {"Flat", Value::MakeList()},
      {"Custom", Value::MakeList()},
      {"Tags", List({Value::Object({{"Key", "k"}, {"Value", nullptr}})})},
      {"Attrs", Value::Object({{"b", "2"}, {"a", "1"}})},
      {"Limits", Value::Object({{"cpu", 4}})},
      {"Nested", Value::Object({{"Inner", Value::Object({{"Leaf", "l"}})}})},
      {"Ratio", nullptr},
  });
  EXPECT_EQ(SerializeQueryResponse(m.service(), m.op(), output, "req-1"),
            "<DoThingResponse xmlns=\"https://hand.example.com/doc/2020-01-01/\">"
            "<DoThingResult>"
            "<Name>a&amp;b</Name><Count>3</Count><Enabled>false</Enabled>"
            "<When>2026-11-25T10:00:00.250Z</When><Data>aGk=</Data>"
            "<Names><member>x</member><member>y</member></Names>"
            "<Item>i1</Item><Item>i2</Item>"
            "<Custom></Custom>"
            "<Tags><member><Key>k</Key></member></Tags>"
            "<Attrs><entry><key>a</key><value>1</value></entry>"
            "<entry><key>b</key><value>2</value></entry></Attrs>"
            "<Limits><Name>cpu</Name><Val>4</Val></Limits>"
            "<Nested><Inner><Leaf>l</Leaf></Inner></Nested>"
            "<renamed-wire>r</renamed-wire>"
            "</DoThingResult>"
            "<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>"
            "</DoThingResponse>");
}

TEST(QueryResponseTest, UsesTheResultWrapperAndOmitsTheResultWithoutOutput) {
  HandModel m;
  m.mutable_op().result_wrapper = "WrappedResult";
  EXPECT_EQ(SerializeQueryResponse(m.service(), m.op(), Value::MakeMap(), "r"),
            "<DoThingResponse xmlns=\"https://hand.example.com/doc/2020-01-01/\">"
            "<WrappedResult></WrappedResult>"
            "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DoThingResponse>");
  m.mutable_op().output = nullptr;
  EXPECT_EQ(SerializeQueryResponse(m.service(), m.op(), Value(), "r"),
            "<DoThingResponse xmlns=\"https://hand.example.com/doc/2020-01-01/\">"
            "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DoThingResponse>");
}

TEST(QueryResponseTest, ParsesBackToTheSameValue) {
  // What the server writes, read back with the XML rules the client uses, is the value
  // the handler returned.
  HandModel m;
  Value output = Value::Object({
      {"Name", "n <&> 'q'"},
      {"Count", -5},
      {"Ratio", 0.1},
      {"When", Value::Timestamp(1795600800)},
      {"Names", List({"a", "b"})},
      {"Items", List({"i"})},
      {"Tags", List({Value::Object({{"Key", "k"}, {"Value", "v"}})})},
      {"Attrs", Value::Object({{"a", "1"}})},
      {"Limits", Value::Object({{"cpu", 4}, {"mem", 8}})},
      {"Nested", Value::Object({{"Inner", Value::Object({{"Leaf", "l"}})}, {"Count", 1}})},
  });
  auto doc = ParseXml(SerializeQueryResponse(m.service(), m.op(), output, "r"));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const XmlElement* result = doc->Child("DoThingResult");
  ASSERT_NE(result, nullptr);
  Value back;
  ASSERT_TRUE(ReadXmlMembers(*m.input(), *result, "", &back).ok());
  EXPECT_EQ(back, output);
}

TEST(QueryErrorTest, SerializesSenderAndReceiverFaults) {
  HandModel m;
  EXPECT_EQ(SerializeQueryError(&m.service(), "NoSuchEntity", "User <x> not found", true, "id-1"),
            "<ErrorResponse xmlns=\"https://hand.example.com/doc/2020-01-01/\"><Error>"
            "<Type>Sender</Type><Code>NoSuchEntity</Code>"
            "<Message>User &lt;x&gt; not found</Message></Error>"
            "<RequestId>id-1</RequestId></ErrorResponse>");
  EXPECT_EQ(SerializeQueryError(nullptr, "InternalFailure", "boom", false, "id-2"),
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
            "<Message>boom</Message></Error><RequestId>id-2</RequestId></ErrorResponse>");
}

// --- rest-xml with hand-built shapes ---

TEST(RestXmlTest, ReadsAndWritesAttributesNamespacesAndFlattenedMaps) {
  HandModel m;
  Shape* grantee = m.Add("Grantee", ShapeType::kStructure);
  grantee->xml_namespace_uri = "http://www.w3.org/2001/XMLSchema-instance";
  Member type = Ref("Type", m.string_shape(), "xsi:type");
  type.xml_attribute = true;
  grantee->members = {Ref("ID", m.string_shape()), type};
  Shape* limits = m.Add("Limits", ShapeType::kMap);
  limits->key = Ref("", m.string_shape(), "Name");
  limits->value = Ref("", m.int_shape(), "Val");
  limits->flattened = true;
  Shape* body = m.Add("Body", ShapeType::kStructure);
  Member header = Ref("Bucket", m.string_shape(), "x-bucket");
  header.location = "header";
  body->members = {Ref("Grantee", grantee), Ref("Limit", limits), header};
  Shape* input = m.Add("PutThingRequest", ShapeType::kStructure);
  Member payload = Ref("Thing", body, "Thing");
  payload.xml_namespace_uri = std::string(kS3XmlNamespace);
  input->members = {payload};
  input->payload = "Thing";

  model::Operation op;
  op.name = "PutThing";
  op.input = input;
  op.output = input;
  Value value =
      Value::Object({{"Thing", Value::Object({
                                   {"Grantee", Value::Object({{"ID", "abc"}, {"Type", "Group"}})},
                                   {"Limit", Value::Object({{"a", 1}, {"b", 2}})},
                                   {"Bucket", "not in the body"},
                               })}});
  std::string xml = SerializeRestXmlBody(m.service(), op, value);
  EXPECT_EQ(xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Thing xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
            "xsi:type=\"Group\"><ID>abc</ID></Grantee>"
            "<Limit><Name>a</Name><Val>1</Val></Limit><Limit><Name>b</Name><Val>2</Val></Limit>"
            "</Thing>");

  Value parsed = Value::Object({{"Existing", "kept"}});
  ASSERT_TRUE(ParseRestXmlBody(op, xml, &parsed).ok());
  value["Thing"].Erase("Bucket");
  value["Existing"] = "kept";
  EXPECT_EQ(parsed, value);
}

TEST(RestXmlTest, WritesTheRootAsTextWhenItIsTheOnlyMember) {
  HandModel m;
  Shape* output = m.Add("GetBucketLocationOutput", ShapeType::kStructure);
  output->members = {Ref("LocationConstraint", m.string_shape())};
  model::Operation op;
  op.name = "GetBucketLocation";
  op.output = output;
  EXPECT_EQ(
      SerializeRestXmlBody(m.service(), op, Value::Object({{"LocationConstraint", "eu-west-1"}})),
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<LocationConstraint xmlns=\"https://hand.example.com/doc/2020-01-01/\">eu-west-1"
      "</LocationConstraint>");
}

TEST(RestXmlErrorTest, SerializesS3ErrorDocument) {
  EXPECT_EQ(SerializeRestXmlError("NoSuchKey", "The specified key does not exist.", "R1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
            "<RequestId>R1</RequestId></Error>");
}

// --- The real models ---

class RealModelTest : public ::testing::Test {
 protected:
  const model::ServiceModel& Service(std::string_view name) {
    const model::ServiceModel* service = model::ModelRegistry::Embedded().Find(name);
    EXPECT_NE(service, nullptr) << name;
    if (service == nullptr) std::abort();
    return *service;
  }
  const model::Operation& Op(std::string_view service, std::string_view op) {
    const model::Operation* found = Service(service).FindOperation(op);
    EXPECT_NE(found, nullptr) << op;
    if (found == nullptr) std::abort();
    return *found;
  }
};

TEST_F(RealModelTest, ParsesWhatBotocoreSendsForIamCreateUser) {
  Params params = {{"Action", "CreateUser"},      {"Version", "2010-05-08"},
                   {"UserName", "alice"},         {"Path", "/eng/"},
                   {"Tags.member.1.Key", "team"}, {"Tags.member.1.Value", "ml"},
                   {"Tags.member.2.Key", "env"},  {"Tags.member.2.Value", "dev"}};
  auto parsed = ParseQueryParams(Op("iam", "CreateUser").input, params);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed,
            Value::Object({{"UserName", "alice"},
                           {"Path", "/eng/"},
                           {"Tags", List({Value::Object({{"Key", "team"}, {"Value", "ml"}}),
                                          Value::Object({{"Key", "env"}, {"Value", "dev"}})})}}));
}

TEST_F(RealModelTest, ParsesWhatBotocoreSendsForCloudWatchPutMetricData) {
  Params params = {{"Action", "PutMetricData"},
                   {"Version", "2010-08-01"},
                   {"Namespace", "App"},
                   {"MetricData.member.1.MetricName", "Latency"},
                   {"MetricData.member.1.Dimensions.member.1.Name", "Host"},
                   {"MetricData.member.1.Dimensions.member.1.Value", "a"},
                   {"MetricData.member.1.Timestamp", "2026-11-25T10:00:00Z"},
                   {"MetricData.member.1.Value", "1.5"},
                   {"MetricData.member.1.Unit", "Milliseconds"},
                   {"MetricData.member.1.Values.member.1", "1.0"},
                   {"MetricData.member.1.Values.member.2", "2.0"},
                   {"MetricData.member.1.Counts.member.1", "3.0"},
                   {"MetricData.member.1.Counts.member.2", "4.0"},
                   {"MetricData.member.1.StorageResolution", "1"}};
  auto parsed = ParseQueryParams(Op("cloudwatch", "PutMetricData").input, params);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed,
            Value::Object(
                {{"Namespace", "App"},
                 {"MetricData",
                  List({Value::Object(
                      {{"MetricName", "Latency"},
                       {"Dimensions", List({Value::Object({{"Name", "Host"}, {"Value", "a"}})})},
                       {"Timestamp", Value::Timestamp(1795600800)},
                       {"Value", 1.5},
                       {"Unit", "Milliseconds"},
                       {"Values", List({1.0, 2.0})},
                       {"Counts", List({3.0, 4.0})},
                       {"StorageResolution", 1}})})}}));
}

TEST_F(RealModelTest, ParsesWhatBotocoreSendsForStsAssumeRole) {
  Params params = {{"Action", "AssumeRole"},
                   {"Version", "2011-06-15"},
                   {"RoleArn", "arn:aws:iam::123456789012:role/r"},
                   {"RoleSessionName", "ss"},
                   {"DurationSeconds", "900"},
                   {"PolicyArns.member.1.arn", "arn:aws:iam::aws:policy/ReadOnly"},
                   {"Tags.member.1.Key", "k"},
                   {"Tags.member.1.Value", "v"},
                   {"TransitiveTagKeys", ""}};
  auto parsed = ParseQueryParams(Op("sts", "AssumeRole").input, params);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed,
            Value::Object({{"RoleArn", "arn:aws:iam::123456789012:role/r"},
                           {"RoleSessionName", "ss"},
                           {"DurationSeconds", 900},
                           {"PolicyArns",
                            List({Value::Object({{"arn", "arn:aws:iam::aws:policy/ReadOnly"}})})},
                           {"Tags", List({Value::Object({{"Key", "k"}, {"Value", "v"}})})},
                           {"TransitiveTagKeys", Value::MakeList()}}));
}

TEST_F(RealModelTest, SerializesStsGetCallerIdentityAsAwsDoes) {
  const model::ServiceModel& sts = Service("sts");
  Value output = Value::Object({{"UserId", "AIDA"},
                                {"Account", "123456789012"},
                                {"Arn", "arn:aws:iam::123456789012:user/alice"}});
  EXPECT_EQ(SerializeQueryResponse(sts, Op("sts", "GetCallerIdentity"), output, "rid"),
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
            "<GetCallerIdentityResult><UserId>AIDA</UserId><Account>123456789012</Account>"
            "<Arn>arn:aws:iam::123456789012:user/alice</Arn></GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>");
}

TEST_F(RealModelTest, SerializesIamListUsersWithMemberLists) {
  const model::ServiceModel& iam = Service("iam");
  Value output = Value::Object(
      {{"Users", List({Value::Object({{"Path", "/"},
                                      {"UserName", "alice"},
                                      {"UserId", "AIDA1"},
                                      {"Arn", "arn:aws:iam::123456789012:user/alice"},
                                      {"CreateDate", Value::Timestamp(1795600800)}})})},
       {"IsTruncated", false}});
  std::string xml = SerializeQueryResponse(iam, Op("iam", "ListUsers"), output, "rid");
  EXPECT_EQ(xml,
            "<ListUsersResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"
            "<ListUsersResult><Users><member><Path>/</Path><UserName>alice</UserName>"
            "<UserId>AIDA1</UserId><Arn>arn:aws:iam::123456789012:user/alice</Arn>"
            "<CreateDate>2026-11-25T10:00:00.000Z</CreateDate></member></Users>"
            "<IsTruncated>false</IsTruncated></ListUsersResult>"
            "<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>"
            "</ListUsersResponse>");
}

TEST_F(RealModelTest, ParsesWhatBotocoreSendsForS3Bodies) {
  struct Case {
    std::string op;
    std::string body;
    Value expected;
  };
  const std::vector<Case> cases = {
      {"PutBucketTagging",
       "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>a</Key>"
       "<Value>1</Value></Tag><Tag><Key>b &amp; c</Key><Value>&lt;2&gt;</Value></Tag></TagSet>"
       "</Tagging>",
       Value::Object(
           {{"Tagging",
             Value::Object(
                 {{"TagSet", List({Value::Object({{"Key", "a"}, {"Value", "1"}}),
                                   Value::Object({{"Key", "b & c"}, {"Value", "<2>"}})})}})}})},
      {"DeleteObjects",
       "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>x.txt</Key>"
       "</Object><Object><Key>y.txt</Key><VersionId>v1</VersionId></Object><Quiet>true</Quiet>"
       "</Delete>",
       Value::Object(
           {{"Delete", Value::Object({{"Objects", List({Value::Object({{"Key", "x.txt"}}),
                                                        Value::Object({{"Key", "y.txt"},
                                                                       {"VersionId", "v1"}})})},
                                      {"Quiet", true}})}})},
      {"CompleteMultipartUpload",
       "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part>"
       "<ETag>\"e1\"</ETag><PartNumber>1</PartNumber></Part><Part><ETag>\"e2\"</ETag>"
       "<PartNumber>2</PartNumber></Part></CompleteMultipartUpload>",
       Value::Object(
           {{"MultipartUpload",
             Value::Object(
                 {{"Parts", List({Value::Object({{"ETag", "\"e1\""}, {"PartNumber", 1}}),
                                  Value::Object({{"ETag", "\"e2\""}, {"PartNumber", 2}})})}})}})},
      {"CreateBucket",
       "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
       "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>",
       Value::Object(
           {{"CreateBucketConfiguration", Value::Object({{"LocationConstraint", "eu-west-1"}})}})},
      {"PutBucketAcl",
       "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
       "<AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
       " xsi:type=\"CanonicalUser\"><ID>abc</ID></Grantee><Permission>READ</Permission></Grant>"
       "</AccessControlList><Owner><ID>abc</ID></Owner></AccessControlPolicy>",
       Value::Object(
           {{"AccessControlPolicy",
             Value::Object({{"Grants", List({Value::Object(
                                           {{"Grantee", Value::Object({{"ID", "abc"},
                                                                       {"Type", "CanonicalUser"}})},
                                            {"Permission", "READ"}})})},
                            {"Owner", Value::Object({{"ID", "abc"}})}})}})},
      {"PutBucketTagging",
       "<Tagging a=\"1\"><Unknown>u</Unknown><TagSet><Junk/><Tag><Key>k</Key><Value>v</Value>"
       "<Extra>e</Extra></Tag></TagSet></Tagging>",
       Value::Object(
           {{"Tagging",
             Value::Object({{"TagSet", List({Value::Object({{"Key", "k"}, {"Value", "v"}})})}})}})},
      {"CreateBucket", "", Value::MakeMap()},
      {"PutObject", "raw bytes, not XML <", Value::MakeMap()},
  };
  for (const Case& c : cases) {
    Value input;
    Status st = ParseRestXmlBody(Op("s3", c.op), c.body, &input);
    ASSERT_TRUE(st.ok()) << c.op << ": " << st.ToString();
    EXPECT_EQ(input, c.expected) << c.op;
  }
}

TEST_F(RealModelTest, RejectsMalformedS3Bodies) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"PutBucketTagging", "<Tagging><TagSet>"},
      {"DeleteObjects", "<Delete><Quiet>maybe</Quiet></Delete>"},
      {"CompleteMultipartUpload", "<C><Part><PartNumber>one</PartNumber></Part></C>"},
      {"DeleteObjects", "<!DOCTYPE d [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Delete/>"},
      {"PutBucketTagging", Nest(5000)},
  };
  for (const auto& [op, body] : cases) {
    Value input;
    Status st = ParseRestXmlBody(Op("s3", op), body, &input);
    EXPECT_EQ(st.kind(), ErrorKind::kSerialization) << op << ": " << body.substr(0, 80);
  }
}

TEST_F(RealModelTest, SerializesS3ListObjectsV2UnderListBucketResult) {
  const model::ServiceModel& s3 = Service("s3");
  Value output = Value::Object(
      {{"IsTruncated", false},
       {"Contents", List({Value::Object({{"Key", "a.txt"},
                                         {"LastModified", Value::Timestamp(1795600800)},
                                         {"ETag", "\"abc\""},
                                         {"Size", 3},
                                         {"StorageClass", "STANDARD"}}),
                          Value::Object({{"Key", "b.txt"}, {"Size", 0}})})},
       {"Name", "bucket"},
       {"Prefix", ""},
       {"MaxKeys", 1000},
       {"CommonPrefixes", List({Value::Object({{"Prefix", "dir/"}})})},
       {"KeyCount", 2},
       {"RequestCharged", "requester"}});
  EXPECT_EQ(SerializeRestXmlBody(s3, Op("s3", "ListObjectsV2"), output),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<IsTruncated>false</IsTruncated>"
            "<Contents><Key>a.txt</Key><LastModified>2026-11-25T10:00:00.000Z</LastModified>"
            "<ETag>&quot;abc&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass>"
            "</Contents><Contents><Key>b.txt</Key><Size>0</Size></Contents>"
            "<Name>bucket</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys>"
            "<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>"
            "<KeyCount>2</KeyCount></ListBucketResult>");
}

TEST_F(RealModelTest, SerializesS3RootsPayloadsAndBodilessOutputs) {
  const model::ServiceModel& s3 = Service("s3");
  EXPECT_EQ(
      SerializeRestXmlBody(
          s3, Op("s3", "ListBuckets"),
          Value::Object({{"Buckets", List({Value::Object(
                                         {{"Name", "b"}, {"CreationDate", Value::Timestamp(0)}})})},
                         {"Owner", Value::Object({{"ID", "o"}})}})),
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Buckets><Bucket><Name>b</Name><CreationDate>1970-01-01T00:00:00.000Z"
      "</CreationDate></Bucket></Buckets><Owner><ID>o</ID></Owner>"
      "</ListAllMyBucketsResult>");
  EXPECT_EQ(
      SerializeRestXmlBody(s3, Op("s3", "CopyObject"),
                           Value::Object({{"CopyObjectResult", Value::Object({{"ETag", "\"e\""}})},
                                          {"VersionId", "header member"}})),
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<ETag>&quot;e&quot;</ETag></CopyObjectResult>");
  EXPECT_EQ(SerializeRestXmlBody(s3, Op("s3", "GetBucketLocation"),
                                 Value::Object({{"LocationConstraint", "eu-west-1"}})),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">eu-west-1"
            "</LocationConstraint>");
  EXPECT_EQ(SerializeRestXmlBody(s3, Op("s3", "GetBucketVersioning"),
                                 Value::Object({{"Status", "Enabled"}})),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Status>Enabled</Status></VersioningConfiguration>");
  // Raw payloads and header-only outputs have no XML body.
  EXPECT_EQ(
      SerializeRestXmlBody(s3, Op("s3", "GetObject"), Value::Object({{"Body", Value::Blob("x")}})),
      "");
  EXPECT_EQ(
      SerializeRestXmlBody(s3, Op("s3", "GetBucketPolicy"), Value::Object({{"Policy", "{}"}})), "");
  EXPECT_EQ(SerializeRestXmlBody(s3, Op("s3", "PutObject"), Value::Object({{"ETag", "\"e\""}})),
            "");
  EXPECT_EQ(SerializeRestXmlBody(s3, Op("s3", "DeleteBucket"), Value()), "");
}

TEST_F(RealModelTest, S3OutputsParseBackToTheSameValue) {
  const model::ServiceModel& s3 = Service("s3");
  const model::Operation& op = Op("s3", "DeleteObjects");
  Value output =
      Value::Object({{"Deleted", List({Value::Object({{"Key", "a"}, {"DeleteMarker", true}})})},
                     {"Errors", List({Value::Object({{"Key", "b"}, {"Code", "AccessDenied"}})})}});
  auto doc = ParseXml(SerializeRestXmlBody(s3, op, output));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "DeleteResult");
  EXPECT_EQ(doc->Children("Error").size(), 1u);
  Value back;
  ASSERT_TRUE(ReadXmlMembers(*op.output, *doc, "", &back).ok());
  EXPECT_EQ(back, output);
}

}  // namespace
}  // namespace nimbus::aws::protocol
