#include "engine/dag_catalog.h"

namespace leoflow::engine {

Result<std::shared_ptr<const DagVersion>> DagCatalog::compile(DagSpec spec) {
  auto compiled = planning::CompiledDag::compile(spec.tasks);
  if (!compiled) return invalidArgument("dag " + spec.dag_id + ": " + compiled.status().message());
  auto v = std::make_shared<DagVersion>(DagVersion{std::move(spec), std::move(compiled).value(), {}, {}});
  for (const TaskSpec& t : v->spec.tasks) {
    v->max_tries.push_back(t.maxTries());
    v->retry_delay_seconds.push_back(t.retry_delay_seconds);
  }
  return std::shared_ptr<const DagVersion>(std::move(v));
}

Result<std::shared_ptr<const DagVersion>> DagCatalog::get(const std::string& dag_id, std::int64_t version) {
  const auto key = std::make_pair(dag_id, version);
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      it->second.used = true;
      return it->second.version;
    }
  }
  auto stored = store_.getDag(dag_id, version);
  if (!stored) return stored.status();
  auto spec = decode_(stored->spec_json);
  if (!spec) {
    return invalidArgument("dag " + dag_id + " version " + std::to_string(version) +
                           " does not decode: " + spec.status().message());
  }
  auto compiled = compile(std::move(spec).value());
  if (!compiled) return compiled.status();
  std::lock_guard lock(mutex_);
  cache_.insert_or_assign(key, Entry{compiled.value(), true});
  return compiled;
}

std::size_t DagCatalog::sweepUnused() {
  std::lock_guard lock(mutex_);
  const std::size_t dropped = std::erase_if(cache_, [](const auto& kv) { return !kv.second.used; });
  for (auto& [key, entry] : cache_) entry.used = false;
  return dropped;
}

void DagCatalog::forget(const std::string& dag_id) {
  std::lock_guard lock(mutex_);
  std::erase_if(cache_, [&](const auto& kv) { return dag_id.empty() || kv.first.first == dag_id; });
}

std::size_t DagCatalog::size() const {
  std::lock_guard lock(mutex_);
  return cache_.size();
}

}  // namespace leoflow::engine
