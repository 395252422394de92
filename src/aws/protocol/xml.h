// XML for the AWS XML protocols (query responses, rest-xml bodies): a small DOM that
// hostile request bodies are parsed into (pugixml underneath, kept out of this header),
// a streaming writer, and the shape-driven mapping between XML and Value that botocore's
// XML serializer and parsers define (shared by query.cc and rest_xml.cc).
//
// Parsing refuses DOCTYPE declarations (so no entity expansion or external entities,
// XXE) and nesting deeper than kMaxXmlDepth; every failure is a kSerialization Status.
// Element names are local names: a namespace prefix ("s3:Key") is stripped.
//
// Thread-safety: XmlElement is a plain value; XmlWriter is not thread-safe (one writer
// per document); the free functions are pure.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/model/model.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::aws::protocol {

inline constexpr int kMaxXmlDepth = 100;

struct XmlElement {
  std::string name;  // local name, namespace prefix stripped
  std::vector<std::pair<std::string, std::string>> attributes;  // names as written
  std::string text;  // concatenated text and CDATA of this element (not of its children)
  std::vector<XmlElement> children;

  // The first child element named name, or nullptr.
  const XmlElement* Child(std::string_view name) const;
  // All child elements named name, in document order.
  std::vector<const XmlElement*> Children(std::string_view name) const;
  // The attribute whose name, or whose local name (prefix stripped), is name; nullptr
  // when absent.
  const std::string* Attribute(std::string_view name) const;
};

// Parses a whole document and returns its root element.
// Errors: kSerialization for malformed XML, a DOCTYPE, more than one root element or
// nesting deeper than kMaxXmlDepth.
Result<XmlElement> ParseXml(std::string_view text);

// Writes a document element by element. Text and attribute values are escaped: & < > " '
// always; in text, CR as &#xD; (so that it survives end-of-line normalisation); in
// attributes, TAB, LF and CR as character references too; other C0 control characters
// as character references, as S3 writes them.
class XmlWriter {
 public:
  using Attributes = std::vector<std::pair<std::string, std::string>>;

  // <?xml version="1.0" encoding="UTF-8"?>
  void Declaration();
  void Open(std::string_view name,
            std::initializer_list<std::pair<std::string_view, std::string_view>> attrs = {});
  void Open(std::string_view name, const Attributes& attrs);
  void Text(std::string_view text);
  // Closes the innermost open element; does nothing when none is open.
  void Close();
  // <name>text</name>
  void Element(std::string_view name, std::string_view text);
  // Closes every element still open and returns the document; the writer is then empty.
  std::string Finish();

 private:
  void OpenStart(std::string_view name);
  void AppendAttribute(std::string_view name, std::string_view value);

  std::string out_;
  std::vector<std::string> open_;
};

// --- Shape-driven XML (botocore's rules, shared by the query and rest-xml protocols) ---

// botocore's shape.serialization['name'] of a reference (structure member, list member,
// map key or value): its locationName, else the referenced shape's, else fallback.
std::string SerializedName(const model::Member& ref, std::string_view fallback);

// The element name of a structure member: for a flattened list whose member reference
// has a locationName, that name (botocore's _member_key_name); else the member's
// locationName, its shape's locationName, or its model name.
std::string XmlMemberName(const model::Member& member);

// Writes the members of structure `shape` present (and not null) in value, in model
// order, as child elements of the element currently open. Members bound to an HTTP
// location (header, URI, ...) and xmlAttribute members are skipped: the former are not
// body members, the latter belong to the open tag (see XmlStructureAttributes).
void WriteXmlMembers(XmlWriter* writer, const model::Shape& shape, const Value& value);

// Writes value as element `name` of shape (reached through member, which may be null).
// A flattened list or map writes one `name` element per entry.
void WriteXmlValue(XmlWriter* writer, const model::Member* member, const model::Shape& shape,
                   std::string_view name, const Value& value);

// The attributes of a structure element: its xmlAttribute members present in value and
// the namespace declaration of member/shape, if any.
XmlWriter::Attributes XmlStructureAttributes(const model::Member* member, const model::Shape& shape,
                                             const Value& value);

// Reads the members of structure `shape` from element's children and attributes into
// out (a map; members already there are kept unless the XML carries them). Members
// bound to an HTTP location are skipped; unknown elements are ignored, and so are list
// items and map entries not named as the model names them (member / entry, or the
// locationName). path names the element in error messages.
// Errors: kSerialization when a scalar does not parse.
Status ReadXmlMembers(const model::Shape& shape, const XmlElement& element, std::string_view path,
                      Value* out);

}  // namespace nimbus::aws::protocol
