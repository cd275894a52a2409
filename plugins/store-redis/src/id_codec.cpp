#include "id_codec.h"

#include <charconv>
#include <vector>

namespace leoflow::plugins::store_redis {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Same set as the Lua pattern '[%%:%c]' (%c = iscntrl in the C locale).
bool mustEscape(unsigned char c) { return c == '%' || c == ':' || c < 0x20 || c == 0x7f; }

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

}  // namespace

std::string encodeId(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  for (char ch : id) {
    const auto c = static_cast<unsigned char>(ch);
    if (mustEscape(c)) {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::optional<std::string> decodeId(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      out.push_back(encoded[i]);
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    const int hi = hexValue(encoded[i + 1]);
    const int lo = hexValue(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::optional<RunKey> parseRunRef(std::string_view ref) {
  const auto parts = split(ref, ':');
  if (parts.size() != 2) return std::nullopt;
  auto dag = decodeId(parts[0]);
  auto run = decodeId(parts[1]);
  if (!dag || !run) return std::nullopt;
  return RunKey{std::move(*dag), std::move(*run)};
}

std::string changeChannel(const std::string& key_prefix, int db) {
  return key_prefix + ":" + std::to_string(db) + ":changes";
}

std::string runChangeChannel(const std::string& key_prefix, int db) { return changeChannel(key_prefix, db) + ":runs"; }

std::optional<Change> parseChangeMessage(std::string_view message) {
  const auto parts = split(message, ':');
  if (parts.empty() || parts[0].size() != 1) return std::nullopt;
  std::vector<std::string> ids;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    auto id = decodeId(parts[i]);
    if (!id) return std::nullopt;
    ids.push_back(std::move(*id));
  }
  Change change;
  // A leader's write names the term that wrote it, after the ids.
  const auto read_term = [&](const std::string& term) {
    const auto [end, error] = std::from_chars(term.data(), term.data() + term.size(), change.leader_term);
    return error == std::errc{} && end == term.data() + term.size() && change.leader_term > 0;
  };
  switch (parts[0][0]) {
    case 't':
      if (ids.size() == 4) {  // a transition's, with the term that wrote it
        if (!read_term(ids[3])) return std::nullopt;
      } else if (ids.size() != 3) {
        return std::nullopt;
      }
      change.kind = Change::Kind::kTask;
      change.run = RunKey{ids[0], ids[1]};
      change.task_id = ids[2];
      return change;
    case 'x':  // an executor's report, with the execution that made it
      if (ids.size() != 4 || ids[3].empty()) return std::nullopt;
      change.kind = Change::Kind::kTask;
      change.run = RunKey{ids[0], ids[1]};
      change.task_id = ids[2];
      change.execution_id = ids[3];
      return change;
    case 'r':
      if (ids.size() == 3) {  // the leader's run start or move, with the term that wrote it
        if (!read_term(ids[2])) return std::nullopt;
      } else if (ids.size() != 2) {
        return std::nullopt;
      }
      change.kind = Change::Kind::kRun;
      change.run = RunKey{ids[0], ids[1]};
      return change;
    case 'd':
      if (ids.size() != 1) return std::nullopt;
      change.kind = Change::Kind::kDag;
      change.dag_id = ids[0];
      return change;
    default:
      return std::nullopt;
  }
}

}  // namespace leoflow::plugins::store_redis
