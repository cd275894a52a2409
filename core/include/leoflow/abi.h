// ABI identity of the SDK a library was compiled against.
//
// Plugins talk to the host through C++ interfaces, so a plugin must match the host's build exactly
// (compiler, standard library ABI, language standard, spdlog and fmt), not just a version number:
// the host compares the build tag byte for byte and refuses a mismatch with both tags in the
// message. ABI major must be equal; a plugin's minor may not be newer than the host's. At equal
// major and minor the SDK header hash (LEOFLOW_SDK_HASH) must be equal too (ARCHITECTURE §8.17).
//
// Changing any SDK header in a way the compiler sees (not a comment) changes LEOFLOW_SDK_HASH, and
// then the version below must step and the new hash be recorded in sdk_versions.txt beside this
// file: the loader suite's sdk_versions test fails until it is, and says what to write.
#pragma once

#include <fmt/core.h>
#include <spdlog/version.h>

#include <leoflow/sdk_hash.h>

/// Raised on any incompatible change to an SDK type or interface.
/// 2: executions (docs/architecture.md §8.13) — TaskEvents and the Store's reports take an ExecutionRef.
/// 3: operating runs — the Store's person's commands (clear, mark, cancel, delete), run uids and
///    tenants in the records, Dispatcher/InlineRunner stop() and log readers.
#define LEOFLOW_ABI_MAJOR 3
/// Raised when the SDK grows compatibly (a new descriptor field at the end, a new optional hook).
/// (3.0 includes everything of 2.2: the descriptor's sdk_hash, InlineRunner::freeCapacity().)
/// 3.1: Recorder hooks recordSchedulerHeartbeat, recordTaskStart, recordTaskFinish, recordRunEnd and
///      setTaskGauges (appended, no-op defaults; called only on recorders of 3.1 or newer).
/// 3.2: Store::loadTaskInstances (a leader refreshes a run by the tasks that changed); Recorder task
///      hooks with TaskLabels (the tenant) — recordTaskStartLabelled, recordTaskFinishLabelled,
///      observeTaskDurationLabelled.
/// 3.3: Store::listActiveRunKeys (the leader's periodic listing of the active runs, keys only).
/// 3.4: Change::leader_term (a change made by applyTransitions names the term that wrote it: a leader
///      skips the echoes of its own writes).
/// 3.5: Change::execution_id (a change made by an executor's report names the execution: the host
///      mirrors its own executions' reports and skips their echoes).
/// 3.6: Recorder::recordSchedulerDecisions (decisions of one type counted in one call: every task a
///      tick leaves waiting for capacity is a "backpressure" decision).
/// 3.7: Change::leader_term also on the kRun change of materializeRun and setRunState (the leader
///      mirrors its own run starts and run moves and skips their echoes).
/// 3.8: Store::cancelRuns (several runs cancelled in one call: `dags delete --force` on a DAG with
///      thousands of active runs).
/// 3.9: Store::clearRuns (several runs cleared in one call: `runs clear` over a range of thousands
///      of runs).
/// 3.10: Store::createRuns (several runs created in one call: `dags backfill` of thousands of slots).
/// 3.11: Store::subscribeRuns (a feed of run changes only: `runs trigger --wait` is not woken by
///       every task's change).
#define LEOFLOW_ABI_MINOR 11

#define LEOFLOW_ABI_STR2(x) #x
#define LEOFLOW_ABI_STR(x) LEOFLOW_ABI_STR2(x)

#if defined(__clang__)
#define LEOFLOW_ABI_COMPILER \
  "clang-" LEOFLOW_ABI_STR(__clang_major__) "." LEOFLOW_ABI_STR(__clang_minor__)
#elif defined(__GNUC__)
#define LEOFLOW_ABI_COMPILER "gcc-" LEOFLOW_ABI_STR(__GNUC__) "." LEOFLOW_ABI_STR(__GNUC_MINOR__)
#else
#define LEOFLOW_ABI_COMPILER "unknown-compiler"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define LEOFLOW_ABI_LIBSTDCXX "cxx11abi=" LEOFLOW_ABI_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define LEOFLOW_ABI_LIBSTDCXX "cxx11abi=none"
#endif

/// Compiler, libstdc++ ABI, C++ standard, spdlog and fmt versions, e.g.
/// "gcc-12.2;cxx11abi=1;cxx=202002L;spdlog=1.10.0;fmt=90100".
#define LEOFLOW_BUILD_TAG                                                               \
  LEOFLOW_ABI_COMPILER ";" LEOFLOW_ABI_LIBSTDCXX ";cxx=" LEOFLOW_ABI_STR(__cplusplus) \
  ";spdlog=" LEOFLOW_ABI_STR(SPDLOG_VER_MAJOR) "." LEOFLOW_ABI_STR(SPDLOG_VER_MINOR) "."       \
  LEOFLOW_ABI_STR(SPDLOG_VER_PATCH) ";fmt=" LEOFLOW_ABI_STR(FMT_VERSION)
