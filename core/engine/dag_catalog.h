// Decoded and compiled DAG versions, cached per (dag_id, version): a version never changes, so
// every run of it shares one topology and planning never re-parses a spec (BEHAVIOUR §10 item 19).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <leoflow/domain.h>
#include <leoflow/status.h>
#include <leoflow/store.h>

#include "engine/engine_options.h"
#include "planning/compiled_dag.h"

namespace leoflow::engine {

/// One DAG version ready for planning: its spec (defaults applied) and compiled topology, in the
/// same task order.
struct DagVersion {
  DagSpec spec;
  planning::CompiledDag dag;
  std::vector<std::int32_t> max_tries;
  std::vector<std::int32_t> retry_delay_seconds;
};

class DagCatalog {
 public:
  DagCatalog(Store& store, DagDecoder decode) : store_(store), decode_(std::move(decode)) {}

  /// The version, loaded and compiled on first use. Errors (unknown version, a spec that does not
  /// decode or compile) are not cached: a fixed store is read again next time.
  Result<std::shared_ptr<const DagVersion>> get(const std::string& dag_id, std::int64_t version);

  /// Compiles a decoded spec (shared by get() and tests).
  static Result<std::shared_ptr<const DagVersion>> compile(DagSpec spec);

 private:
  Store& store_;
  DagDecoder decode_;
  std::mutex mutex_;
  std::map<std::pair<std::string, std::int64_t>, std::shared_ptr<const DagVersion>> cache_;
};

}  // namespace leoflow::engine
