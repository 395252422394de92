#include "http/types.h"

#include <cstring>

#include "core/strings.h"

namespace nimbus::http {

void Headers::Add(std::string name, std::string value) {
  entries_.emplace_back(std::move(name), std::move(value));
}

void Headers::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

void Headers::Remove(std::string_view name) {
  std::erase_if(entries_, [&](const Entry& e) { return EqualsIgnoreCase(e.first, name); });
}

const std::string* Headers::Find(std::string_view name) const {
  for (const auto& e : entries_) {
    if (EqualsIgnoreCase(e.first, name)) return &e.second;
  }
  return nullptr;
}

std::string Headers::Get(std::string_view name, std::string_view fallback) const {
  const std::string* v = Find(name);
  return v ? *v : std::string(fallback);
}

Result<std::string> BodyReader::ReadAll(size_t limit) {
  std::string out;
  char buf[16384];
  while (true) {
    NIMBUS_ASSIGN_OR_RETURN(size_t n, Read(buf, sizeof(buf)));
    if (n == 0) return out;
    if (out.size() + n > limit) {
      return Status::Validation("request body exceeds the limit of " + std::to_string(limit) +
                                " bytes");
    }
    out.append(buf, n);
  }
}

Result<size_t> StringBodyReader::Read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, k);
  pos_ += k;
  return k;
}

std::vector<std::pair<std::string, std::string>> Request::QueryParams() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (query.empty()) return out;
  for (const auto& part : Split(query, '&')) {
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      out.emplace_back(UriDecode(part), "");
    } else {
      out.emplace_back(UriDecode(part.substr(0, eq)), UriDecode(part.substr(eq + 1)));
    }
  }
  return out;
}

void Request::SplitTarget() {
  size_t q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string::npos ? "" : target.substr(q + 1);
}

}  // namespace nimbus::http
