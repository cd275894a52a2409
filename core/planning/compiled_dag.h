// A DAG's topology compiled for planning: dense task indices and adjacency in CSR form.
//
// Compiled once per DAG version and shared by every run of that version, so planning never touches
// a string: task i's upstreams are upstreams(i), its downstreams downstreams(i).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <leoflow/domain.h>
#include <leoflow/status.h>

namespace leoflow::planning {

using TaskIndex = std::uint32_t;

class CompiledDag {
 public:
  /// Compiles the tasks, in declaration order (the order plans are emitted in). Fails with a
  /// message naming the field on a duplicate id (`tasks[3].task_id: duplicate task id "x"`), a
  /// dependency that is not a task (`tasks[1].depends_on: "nowhere" is not a task`), or a cycle
  /// (`tasks: cycle a -> b -> a`). A dependency listed twice counts once.
  static Result<CompiledDag> compile(std::span<const TaskSpec> tasks);

  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(ids_.size()); }
  std::size_t edgeCount() const noexcept { return up_.size(); }

  const std::string& id(TaskIndex i) const noexcept { return ids_[i]; }
  TriggerRule rule(TaskIndex i) const noexcept { return rules_[i]; }
  std::span<const TaskIndex> upstreams(TaskIndex i) const noexcept {
    return {up_.data() + up_offsets_[i], up_offsets_[i + 1] - up_offsets_[i]};
  }
  std::span<const TaskIndex> downstreams(TaskIndex i) const noexcept {
    return {down_.data() + down_offsets_[i], down_offsets_[i + 1] - down_offsets_[i]};
  }

  /// The index of a task id, or nullopt.
  std::optional<TaskIndex> find(std::string_view task_id) const;

 private:
  struct IdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> ids_;
  std::vector<TriggerRule> rules_;
  std::vector<std::uint32_t> up_offsets_;
  std::vector<TaskIndex> up_;
  std::vector<std::uint32_t> down_offsets_;
  std::vector<TaskIndex> down_;
  std::unordered_map<std::string, TaskIndex, IdHash, std::equal_to<>> index_;
};

}  // namespace leoflow::planning
