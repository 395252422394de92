#include "core/compression.h"

#include <zlib.h>

namespace nimbus {

Result<std::string> Gunzip(std::string_view data, size_t limit) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
    return Status::Internal("cannot initialise zlib");
  }
  std::string out;
  char buffer[64 * 1024];
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (true) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    rc = inflate(&stream, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buffer, sizeof(buffer) - stream.avail_out);
    if (out.size() > limit) {
      inflateEnd(&stream);
      return Status::Validation("the decompressed body is larger than " + std::to_string(limit) +
                                " bytes");
    }
    if (rc == Z_STREAM_END) {
      if (stream.avail_in == 0) break;
      inflateReset(&stream);  // another gzip member follows
    }
  }
  inflateEnd(&stream);
  if (rc != Z_STREAM_END) return Status::Validation("the body is not valid gzip data");
  return out;
}

}  // namespace nimbus
