#include "dsn.h"

#include <cctype>

namespace leoflow::plugins::store_postgres {
namespace {

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The key=value form's password value: [begin, end) in `dsn`, quotes included; npos when absent.
std::pair<std::size_t, std::size_t> kvPassword(const std::string& dsn) {
  std::size_t pos = 0;
  while ((pos = dsn.find("password", pos)) != std::string::npos) {
    const bool at_word_start = pos == 0 || std::isspace(static_cast<unsigned char>(dsn[pos - 1])) != 0;
    std::size_t eq = pos + 8;
    while (eq < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[eq])) != 0) ++eq;
    if (!at_word_start || eq >= dsn.size() || dsn[eq] != '=') {
      pos += 8;
      continue;
    }
    std::size_t begin = eq + 1;
    while (begin < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[begin])) != 0) ++begin;
    std::size_t end = begin;
    if (end < dsn.size() && dsn[end] == '\'') {
      for (++end; end < dsn.size() && dsn[end] != '\''; ++end) {
        if (dsn[end] == '\\') ++end;
      }
      if (end < dsn.size()) ++end;
    } else {
      while (end < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[end])) == 0) ++end;
    }
    return {begin, std::min(end, dsn.size())};
  }
  return {std::string::npos, std::string::npos};
}

// The URI form's password: [begin, end) of the userinfo's password, or of a password=... query value.
std::vector<std::pair<std::size_t, std::size_t>> uriPasswords(const std::string& dsn) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  const std::size_t scheme_end = dsn.find("://");
  if (scheme_end == std::string::npos) return out;
  const std::size_t auth = scheme_end + 3;
  const std::size_t path = dsn.find_first_of("/?", auth);
  const std::size_t at = dsn.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at != std::string::npos && at >= auth) {
    const std::size_t colon = dsn.find(':', auth);
    if (colon != std::string::npos && colon < at) out.emplace_back(colon + 1, at);
  }
  const std::size_t query = dsn.find('?', auth);
  if (query != std::string::npos) {
    std::size_t pos = query + 1;
    while (pos < dsn.size()) {
      std::size_t amp = dsn.find('&', pos);
      if (amp == std::string::npos) amp = dsn.size();
      if (dsn.compare(pos, 9, "password=") == 0) out.emplace_back(pos + 9, amp);
      pos = amp + 1;
    }
  }
  return out;
}

std::vector<std::string> passwords(const std::string& dsn) {
  std::vector<std::string> out;
  if (isUriDsn(dsn)) {
    for (auto [b, e] : uriPasswords(dsn)) {
      if (e > b) out.push_back(dsn.substr(b, e - b));
    }
  } else {
    auto [b, e] = kvPassword(dsn);
    if (b != std::string::npos && e > b) {
      std::string p = dsn.substr(b, e - b);
      if (p.size() >= 2 && p.front() == '\'' && p.back() == '\'') p = p.substr(1, p.size() - 2);
      if (!p.empty()) out.push_back(p);
    }
  }
  return out;
}

bool hasParam(const std::string& dsn, const std::string& key) {
  if (isUriDsn(dsn)) {
    const std::size_t query = dsn.find('?');
    if (query == std::string::npos) return false;
    const std::string q = "&" + dsn.substr(query + 1);
    return q.find("&" + key + "=") != std::string::npos;
  }
  std::size_t pos = 0;
  while ((pos = dsn.find(key, pos)) != std::string::npos) {
    const bool word_start = pos == 0 || std::isspace(static_cast<unsigned char>(dsn[pos - 1])) != 0;
    std::size_t eq = pos + key.size();
    while (eq < dsn.size() && dsn[eq] == ' ') ++eq;
    if (word_start && eq < dsn.size() && dsn[eq] == '=') return true;
    pos += key.size();
  }
  return false;
}

}  // namespace

bool isUriDsn(const std::string& dsn) { return startsWith(dsn, "postgresql://") || startsWith(dsn, "postgres://"); }

std::string withDefaultParams(const std::string& dsn, const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out = dsn;
  for (const auto& [key, value] : params) {
    if (hasParam(out, key)) continue;
    if (isUriDsn(out)) {
      out += out.find('?') == std::string::npos ? '?' : '&';
      out += key + "=" + value;
    } else {
      if (!out.empty()) out += ' ';
      out += key + "=" + value;
    }
  }
  return out;
}

std::string redactDsn(const std::string& dsn) {
  std::string out = dsn;
  if (isUriDsn(dsn)) {
    auto spans = uriPasswords(dsn);
    // Right to left, so earlier offsets stay valid.
    for (auto it = spans.rbegin(); it != spans.rend(); ++it) out.replace(it->first, it->second - it->first, "***");
    return out;
  }
  auto [b, e] = kvPassword(dsn);
  if (b != std::string::npos) out.replace(b, e - b, "***");
  return out;
}

std::string scrubPassword(const std::string& text, const std::string& dsn) {
  std::string out = text;
  for (const std::string& p : passwords(dsn)) {
    std::size_t pos = 0;
    while ((pos = out.find(p, pos)) != std::string::npos) {
      out.replace(pos, p.size(), "***");
      pos += 3;
    }
  }
  return out;
}

}  // namespace leoflow::plugins::store_postgres
