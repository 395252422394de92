// tar.gz archives of directories (libarchive): SageMaker's model.tar.gz and output.tar.gz
// artifacts, and script-mode source bundles (sourcedir.tar.gz).
//
// Extraction is safe: an entry with an absolute path or a ".." component, or a link, is an
// error naming it; nothing is ever written outside the target directory.
//
// Thread-safety: free functions.
#pragma once

#include <string>

#include "core/result.h"

namespace nimbus::objects {

// Writes every regular file under dir (paths relative to dir) to a gzip-compressed tar at
// archive_path.
Status CreateTarGz(const std::string& dir, const std::string& archive_path);

// Extracts a tar archive (gzip-compressed or not) into dir, creating it.
Status ExtractArchive(const std::string& archive_path, const std::string& dir);

}  // namespace nimbus::objects
