// The legal state moves of a task instance and of a dag run.
//
// The seed's tables (BEHAVIOUR §1.2) extended with the moves the system really makes (ARCHITECTURE
// §8.2). Every store write is checked against these before it is attempted.
#pragma once

#include <leoflow/domain.h>

namespace leoflow::planning {

/// True when a task instance may move from `from` to `to`. Self-moves are never legal.
bool canTransition(TaskState from, TaskState to) noexcept;

/// True when a dag run may move from `from` to `to`.
bool canTransitionDagRun(DagRunState from, DagRunState to) noexcept;

}  // namespace leoflow::planning
