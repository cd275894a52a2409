// The web page's files (core/host/web/), built into the binary by scripts/embed_web_assets.py so the
// page needs no network at run time (ARCHITECTURE §8.15). HttpApi serves them.
#pragma once

#include <span>
#include <string_view>

namespace leoflow::host::web {

struct WebAsset {
  std::string_view path;          ///< "/" for index.html, "/web/<file name>" for the others
  std::string_view content_type;  ///< with charset for text
  std::string_view etag;          ///< a strong ETag, quoted: a hash of the body
  std::string_view body;
};

/// Every embedded file, in the order meson listed them.
std::span<const WebAsset> assets();

}  // namespace leoflow::host::web
