// Decoded DAG versions, kept for the next read. A stored version never changes, and decoding a large
// one (parse, validate, compile) is the slow part of every read that needs it: ~0.7 s of CPU for a
// 20,000-task DAG on a 2-core VM, which each refresh of the web page on a big run paid again, taken
// from the scheduler that serves the page. An entry is found by the DAG id, version and the size of
// the stored text, and used only when the text is the same, so it is right for whichever store the
// text came from.
#pragma once

#include <memory>

#include <leoflow/domain.h>
#include <leoflow/status.h>
#include <leoflow/store.h>

namespace leoflow::host {

/// decodeCanonicalDag(stored.spec_json), from the cache when this text was decoded lately. Thread-safe.
Result<std::shared_ptr<const DagSpec>> decodeStoredDag(const StoredDag& stored);

}  // namespace leoflow::host
