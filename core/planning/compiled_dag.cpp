#include "planning/compiled_dag.h"

#include <algorithm>

#include "text/quoted.h"

namespace leoflow::planning {
namespace {

// Finds one cycle among the tasks Kahn's algorithm could not order and spells it out, so the
// message shows the loop instead of just saying there is one ("a -> b -> a"; a loop of more than 15
// tasks as "of N tasks" with its first and last five).
std::string describeCycle(const CompiledDag& dag, const std::vector<std::uint32_t>& remaining_in) {
  const std::uint32_t n = dag.size();
  // Walk upstream from any unordered task: every unordered task has an unordered upstream.
  TaskIndex start = 0;
  while (start < n && remaining_in[start] == 0) ++start;
  std::vector<int> seen_at(n, -1);
  std::vector<TaskIndex> path;
  TaskIndex cur = start;
  while (seen_at[cur] < 0) {
    seen_at[cur] = static_cast<int>(path.size());
    path.push_back(cur);
    for (TaskIndex u : dag.upstreams(cur)) {
      if (remaining_in[u] > 0) {
        cur = u;
        break;
      }
    }
  }
  // path[seen_at[cur]..] is the loop, walked against the edges: print it along them.
  std::vector<TaskIndex> loop(path.begin() + seen_at[cur], path.end());
  std::reverse(loop.begin(), loop.end());
  // Start at the first declared task of the loop, so the message does not depend on the walk.
  std::rotate(loop.begin(), std::min_element(loop.begin(), loop.end()), loop.end());
  // A long loop is shortened to its first and last tasks: a cycle through 20,000 tasks must not
  // make a message of hundreds of kilobytes.
  constexpr std::size_t kShown = 5;
  std::string text;
  if (loop.size() <= 3 * kShown) {
    for (TaskIndex t : loop) text += dag.id(t) + " -> ";
  } else {
    text = "of " + std::to_string(loop.size()) + " tasks ";
    for (std::size_t i = 0; i < kShown; ++i) text += dag.id(loop[i]) + " -> ";
    text += "... (" + std::to_string(loop.size() - 2 * kShown) + " more) -> ";
    for (std::size_t i = loop.size() - kShown; i < loop.size(); ++i) text += dag.id(loop[i]) + " -> ";
  }
  text += dag.id(loop.front());
  return text;
}

}  // namespace

std::optional<TaskIndex> CompiledDag::find(std::string_view task_id) const {
  auto it = index_.find(task_id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

Result<CompiledDag> CompiledDag::compile(std::span<const TaskSpec> tasks) {
  CompiledDag dag;
  const auto n = static_cast<std::uint32_t>(tasks.size());
  dag.ids_.reserve(n);
  dag.rules_.reserve(n);
  dag.index_.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const TaskSpec& t = tasks[i];
    if (t.task_id.empty()) {
      return invalidArgument("tasks[" + std::to_string(i) + "].task_id: must not be empty");
    }
    if (!dag.index_.emplace(t.task_id, i).second) {
      return invalidArgument("tasks[" + std::to_string(i) + "].task_id: duplicate task id " +
                             text::quoted(t.task_id));
    }
    dag.ids_.push_back(t.task_id);
    dag.rules_.push_back(t.trigger_rule);
  }

  // Upstream CSR in declaration order of depends_on, duplicates dropped.
  dag.up_offsets_.assign(n + 1, 0);
  std::vector<std::uint32_t> in_degree(n, 0);
  std::vector<std::uint32_t> out_degree(n, 0);
  for (std::uint32_t i = 0; i < n; ++i) {
    dag.up_offsets_[i] = static_cast<std::uint32_t>(dag.up_.size());
    const auto first = dag.up_.size();
    for (const std::string& dep : tasks[i].depends_on) {
      auto found = dag.find(dep);
      if (!found) {
        return invalidArgument("tasks[" + std::to_string(i) + "].depends_on: " + text::quoted(dep) +
                               " is not a task (in task " + text::quoted(tasks[i].task_id) + ")");
      }
      if (std::find(dag.up_.begin() + static_cast<std::ptrdiff_t>(first), dag.up_.end(), *found) !=
          dag.up_.end()) {
        continue;
      }
      dag.up_.push_back(*found);
      ++out_degree[*found];
    }
    in_degree[i] = static_cast<std::uint32_t>(dag.up_.size() - first);
  }
  dag.up_offsets_[n] = static_cast<std::uint32_t>(dag.up_.size());

  // Downstream CSR, each list in ascending task order (the order plans visit tasks).
  dag.down_offsets_.assign(n + 1, 0);
  for (std::uint32_t i = 0; i < n; ++i) dag.down_offsets_[i + 1] = dag.down_offsets_[i] + out_degree[i];
  dag.down_.resize(dag.up_.size());
  std::vector<std::uint32_t> fill(dag.down_offsets_.begin(), dag.down_offsets_.end() - 1);
  for (std::uint32_t i = 0; i < n; ++i) {
    for (TaskIndex u : dag.upstreams(i)) dag.down_[fill[u]++] = i;
  }

  // Kahn's algorithm: every task must be orderable, else there is a cycle.
  std::vector<std::uint32_t> remaining = in_degree;
  std::vector<TaskIndex> ready;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (remaining[i] == 0) ready.push_back(i);
  }
  std::uint32_t ordered = 0;
  while (!ready.empty()) {
    TaskIndex t = ready.back();
    ready.pop_back();
    ++ordered;
    for (TaskIndex d : dag.downstreams(t)) {
      if (--remaining[d] == 0) ready.push_back(d);
    }
  }
  if (ordered != n) return invalidArgument("tasks: cycle " + describeCycle(dag, remaining));
  return dag;
}

}  // namespace leoflow::planning
