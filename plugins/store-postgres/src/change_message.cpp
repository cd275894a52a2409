#include "change_message.h"

#include <charconv>
#include <vector>

namespace leoflow::plugins::store_postgres {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t colon = s.find(':', start);
    parts.push_back(s.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return parts;
}

}  // namespace

std::optional<std::string> decodeId(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      out += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    const int hi = hexValue(encoded[i + 1]);
    const int lo = hexValue(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::optional<Change> parseChangeMessage(std::string_view message) {
  const auto parts = split(message);
  std::vector<std::string> ids;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    auto id = decodeId(parts[i]);
    if (!id || id->empty()) return std::nullopt;
    ids.push_back(std::move(*id));
  }
  Change c;
  // A leader's write names the term that wrote it after the ids: a transition's (t, 3 ids), a run
  // start's or run move's (r, 2 ids).
  if ((parts[0] == "t" && ids.size() == 4) || (parts[0] == "r" && ids.size() == 3)) {
    const std::string& term = ids.back();
    const auto [end, error] = std::from_chars(term.data(), term.data() + term.size(), c.leader_term);
    if (error != std::errc{} || end != term.data() + term.size() || c.leader_term <= 0) return std::nullopt;
    ids.pop_back();
  }
  if (parts[0] == "t" && ids.size() == 3) {
    c.kind = Change::Kind::kTask;
    c.run = RunKey{ids[0], ids[1]};
    c.task_id = ids[2];
  } else if (parts[0] == "x" && ids.size() == 4) {  // an executor's report, with its execution
    c.kind = Change::Kind::kTask;
    c.run = RunKey{ids[0], ids[1]};
    c.task_id = ids[2];
    c.execution_id = ids[3];
  } else if (parts[0] == "r" && ids.size() == 2) {
    c.kind = Change::Kind::kRun;
    c.run = RunKey{ids[0], ids[1]};
  } else if (parts[0] == "d" && ids.size() == 1) {
    c.kind = Change::Kind::kDag;
    c.dag_id = ids[0];
  } else {
    return std::nullopt;
  }
  return c;
}

}  // namespace leoflow::plugins::store_postgres
