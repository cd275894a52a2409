#include "shapes.h"

#include <algorithm>
#include <stdexcept>

namespace leoflow::bench {
namespace {

std::string id(int k) { return "t" + std::to_string(k); }

Shape withTasks(std::string name, int n) {
  Shape s;
  s.name = std::move(name);
  s.tasks.resize(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) {
    s.tasks[static_cast<std::size_t>(k)].task_id = id(k);
    s.tasks[static_cast<std::size_t>(k)].type = "python";
  }
  s.states.assign(static_cast<std::size_t>(n), TaskState::kNone);
  return s;
}

class Fnv {
 public:
  void add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      h_ ^= c;
      h_ *= 1099511628211ULL;
    }
  }
  std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_ = 14695981039346656037ULL;
};

}  // namespace

std::uint64_t SplitMix64::next() {
  state_ += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

Shape chain(int n, int n_success) {
  Shape s = withTasks("chain", n);
  for (int k = 1; k < n; ++k) s.tasks[static_cast<std::size_t>(k)].depends_on = {id(k - 1)};
  for (int k = 0; k < n_success; ++k) s.states[static_cast<std::size_t>(k)] = TaskState::kSuccess;
  return s;
}

Shape fanOut(int children) {
  Shape s = withTasks("fan_out", children + 1);
  for (int k = 1; k <= children; ++k) s.tasks[static_cast<std::size_t>(k)].depends_on = {"t0"};
  s.states[0] = TaskState::kSuccess;
  return s;
}

Shape fanIn(int roots) {
  Shape s = withTasks("fan_in", roots + 1);
  auto& sink = s.tasks[static_cast<std::size_t>(roots)].depends_on;
  for (int k = 0; k < roots; ++k) {
    sink.push_back(id(k));
    s.states[static_cast<std::size_t>(k)] = TaskState::kSuccess;
  }
  return s;
}

Shape layered(int layers, int width, int fan_in, std::uint64_t seed, int success_layers) {
  Shape s = withTasks("layered", layers * width);
  SplitMix64 rng(seed);
  for (int l = 1; l < layers; ++l) {
    for (int i = 0; i < width; ++i) {
      std::vector<std::uint64_t> picked;
      while (static_cast<int>(picked.size()) < fan_in) {
        const std::uint64_t c = rng.next() % static_cast<std::uint64_t>(width);
        if (std::find(picked.begin(), picked.end(), c) == picked.end()) picked.push_back(c);
      }
      auto& deps = s.tasks[static_cast<std::size_t>(l * width + i)].depends_on;
      for (std::uint64_t c : picked) deps.push_back(id((l - 1) * width + static_cast<int>(c)));
    }
  }
  for (int k = 0; k < success_layers * width; ++k) s.states[static_cast<std::size_t>(k)] = TaskState::kSuccess;
  return s;
}

Shape small() {
  Shape s = withTasks("small", 10);
  const std::vector<std::vector<int>> deps = {{}, {0}, {0}, {0}, {1, 2}, {3}, {4, 5}, {6}, {6}, {7, 8}};
  for (std::size_t k = 0; k < deps.size(); ++k) {
    for (int d : deps[k]) s.tasks[k].depends_on.push_back(id(d));
  }
  return s;
}

Shape smallMid() {
  Shape s = small();
  s.name = "small_mid";
  s.states[0] = s.states[1] = TaskState::kSuccess;
  s.states[2] = TaskState::kRunning;
  s.states[3] = TaskState::kScheduled;
  return s;
}

Shape fanOutQueue(int children) {
  Shape s = fanOut(children);
  s.name = "fan_out_queue";
  for (int k = 1; k <= children; ++k) s.states[static_cast<std::size_t>(k)] = TaskState::kScheduled;
  return s;
}

std::uint64_t topoFnv(const Shape& s) {
  Fnv h;
  for (const TaskSpec& t : s.tasks) {
    h.add(t.task_id);
    h.add(":");
    for (std::size_t d = 0; d < t.depends_on.size(); ++d) {
      if (d > 0) h.add(",");
      h.add(t.depends_on[d]);
    }
    h.add("\n");
  }
  return h.value();
}

std::uint64_t statesFnv(const Shape& s) {
  Fnv h;
  for (std::size_t k = 0; k < s.tasks.size(); ++k) {
    h.add(s.tasks[k].task_id);
    h.add("=");
    h.add(toString(s.states[k]));
    h.add("\n");
  }
  return h.value();
}

CompiledShape::CompiledShape(const Shape& s) : shape(s), dag([&] {
  auto compiled = planning::CompiledDag::compile(s.tasks);
  if (!compiled) throw std::runtime_error("shape " + s.name + ": " + compiled.status().message());
  return std::move(compiled).value();
}()) {}

planning::RunSnapshot CompiledShape::snapshot() const {
  planning::RunSnapshot snap;
  snap.dag = &dag;
  snap.states = shape.states;
  return snap;
}

}  // namespace leoflow::bench
