#include "lines.h"

#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace leoflow::plugins::metrics_statsd {

std::string sanitize(std::string_view id) {
  if (id.empty()) return std::string(1, '_');
  std::string out(id);
  for (char& c : out) {
    switch (c) {
      case '.':
      case ':':
      case '|':
      case '@':
      case '#':
      case ',':
      case '\n':
      case '\r':
        c = '_';
        break;
      default:
        break;
    }
  }
  return out;
}

std::string sanitizeTagValue(std::string_view value) {
  if (value.empty()) return std::string(1, '_');
  std::string out(value);
  for (char& c : out) {
    if (c == ':' || c == '|' || c == '@' || c == '#' || c == ',' || c == '\n' || c == '\r') c = '_';
  }
  return out;
}

namespace {

std::string formatValue(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{}", static_cast<long long>(value));
  return fmt::format("{:.3f}", value);
}

}  // namespace

std::string formatLine(std::string_view name, MetricType type, double value, double rate, const Tags& tags) {
  fmt::memory_buffer out;
  const char* kind = type == MetricType::kCounter ? "c" : type == MetricType::kGauge ? "g" : "ms";
  fmt::format_to(std::back_inserter(out), "{}:{}|{}", name, formatValue(value), kind);
  if (rate < 1.0 && type != MetricType::kGauge) fmt::format_to(std::back_inserter(out), "|@{}", rate);
  char sep = '#';
  for (const auto& [k, v] : tags) {
    fmt::format_to(std::back_inserter(out), "{}{}:{}", sep == '#' ? "|#" : ",", k, sanitizeTagValue(v));
    sep = ',';
  }
  return fmt::to_string(out);
}

std::string joinName(std::string_view prefix, std::initializer_list<std::string_view> parts) {
  std::string name(prefix);
  for (std::string_view p : parts) {
    if (!name.empty()) name.push_back('.');
    name.append(p);
  }
  return name;
}

std::vector<std::string> packDatagrams(const std::vector<std::string>& lines, std::size_t max_bytes,
                                       std::size_t& oversized) {
  std::vector<std::string> out;
  std::string current;
  for (const std::string& line : lines) {
    if (line.size() > max_bytes) {
      ++oversized;
      continue;
    }
    const std::size_t needed = current.empty() ? line.size() : current.size() + 1 + line.size();
    if (needed > max_bytes) {
      out.push_back(std::move(current));
      current.clear();
    }
    if (!current.empty()) current.push_back('\n');
    current.append(line);
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

}  // namespace leoflow::plugins::metrics_statsd
