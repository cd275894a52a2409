#include "host/dag_spec_cache.h"

#include <cstddef>
#include <iterator>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "host/dag_file.h"

namespace leoflow::host {
namespace {

// A few versions of the largest DAGs (the text is kept to compare with): a web page or two following
// big runs, and a scheduler's API answering for several DAGs. Small ones decode in well under a
// millisecond and are not worth an entry. A decoded spec takes ~5 times its text (a TaskSpec is 640
// bytes; a 20,000-task DAG's text 2.9 MB), so the 8 MB of text kept hold ~50 MB in all.
constexpr std::size_t kMaxEntries = 16;
constexpr std::size_t kMaxTextBytes = std::size_t{8} << 20;
constexpr std::size_t kMinTextBytes = 16 << 10;

struct Entry {
  std::string key;
  std::string text;
  std::shared_ptr<const DagSpec> spec;
};

class DagSpecCache {
 public:
  std::shared_ptr<const DagSpec> find(const std::string& key, const std::string& text) {
    std::lock_guard lock(mutex_);
    auto it = by_key_.find(key);
    if (it == by_key_.end() || it->second->text != text) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);  // the most recently used first
    return it->second->spec;
  }

  void put(std::string key, const std::string& text, std::shared_ptr<const DagSpec> spec) {
    std::lock_guard lock(mutex_);
    if (auto it = by_key_.find(key); it != by_key_.end()) drop(it->second);
    lru_.push_front(Entry{std::move(key), text, std::move(spec)});
    by_key_.emplace(lru_.front().key, lru_.begin());
    bytes_ += text.size();
    while (lru_.size() > kMaxEntries || (bytes_ > kMaxTextBytes && lru_.size() > 1)) drop(std::prev(lru_.end()));
  }

 private:
  void drop(std::list<Entry>::iterator entry) {
    bytes_ -= entry->text.size();
    by_key_.erase(entry->key);
    lru_.erase(entry);
  }

  std::mutex mutex_;
  std::list<Entry> lru_;
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_;
  std::size_t bytes_ = 0;
};

DagSpecCache& cache() {
  static DagSpecCache instance;
  return instance;
}

}  // namespace

Result<std::shared_ptr<const DagSpec>> decodeStoredDag(const StoredDag& stored) {
  const bool cached = stored.spec_json.size() >= kMinTextBytes;
  std::string key;
  if (cached) {
    key = stored.dag_id + '\0' + std::to_string(stored.version) + '\0' + std::to_string(stored.spec_json.size());
    if (auto spec = cache().find(key, stored.spec_json)) return spec;
  }
  auto decoded = decodeCanonicalDag(stored.spec_json);
  if (!decoded) return decoded.status();
  auto spec = std::make_shared<const DagSpec>(std::move(decoded).value());
  if (cached) cache().put(std::move(key), stored.spec_json, spec);
  return spec;
}

}  // namespace leoflow::host
