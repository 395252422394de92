#include "worker/log_capture.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nimbus::worker {
namespace {

// The largest prefix of text no longer than limit that does not split a UTF-8 character.
size_t Utf8Cut(std::string_view text, size_t limit) {
  if (text.size() <= limit) return text.size();
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut == 0 ? limit : cut;
}

}  // namespace

std::string LineCapture::Format(int64_t ms, std::string_view text) {
  std::string line = std::to_string(ms);
  line += '\t';
  line.append(text);
  line += '\n';
  return line;
}

void LineCapture::Emit(std::string_view text, int64_t ms, std::string* out) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  do {
    const size_t n = Utf8Cut(text, max_line_bytes_);
    out->append(Format(ms, text.substr(0, n)));
    text.remove_prefix(n);
  } while (!text.empty());
}

Status LineCapture::Feed(std::string_view data, int64_t now_ms) {
  std::string out;
  while (!data.empty()) {
    if (pending_.empty()) pending_since_ms_ = now_ms;
    const size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      pending_.append(data);
      // A line that never ends is cut, so memory stays bounded.
      while (pending_.size() > max_line_bytes_) {
        const size_t n = Utf8Cut(pending_, max_line_bytes_);
        out.append(Format(pending_since_ms_, std::string_view(pending_).substr(0, n)));
        pending_.erase(0, n);
        pending_since_ms_ = now_ms;
      }
      break;
    }
    pending_.append(data.substr(0, nl));
    Emit(pending_, pending_since_ms_, &out);
    pending_.clear();
    data.remove_prefix(nl + 1);
  }
  return WriteAll(out);
}

Status LineCapture::Finish(int64_t now_ms) {
  if (pending_.empty()) return Status::Ok();
  std::string out;
  Emit(pending_, pending_since_ms_, &out);
  pending_.clear();
  return WriteAll(out);
}

Status LineCapture::WriteAll(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Status::Internal(std::string("cannot write the log: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace nimbus::worker
