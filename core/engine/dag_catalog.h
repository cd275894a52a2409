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

  /// Forgets every version nobody asked for since the previous sweep; returns how many. The engine
  /// sweeps once per full-resync interval, within which every active run is reloaded (and asks for
  /// its version), so only versions no active run uses are dropped — a DAG re-synced every few
  /// minutes does not keep each old version compiled forever.
  std::size_t sweepUnused();
  /// Forgets every cached version of `dag_id` (it was deleted and may come back with the same
  /// version numbers); or of every DAG when `dag_id` is empty.
  void forget(const std::string& dag_id);
  std::size_t size() const;

 private:
  Store& store_;
  DagDecoder decode_;
  struct Entry {
    std::shared_ptr<const DagVersion> version;
    bool used = true;  ///< asked for since the last sweep
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::int64_t>, Entry> cache_;
};

}  // namespace leoflow::engine
