// The StatsD line protocol: metric names, sanitised ids, and lines (plain or DogStatsD-tagged).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leoflow::plugins::metrics_statsd {

/// An id inside a name: a dot, colon, `|` or `@` becomes `_` (so an id is one name segment and
/// never ends the name or the value early); a newline, `#` or `,` too.
std::string sanitize(std::string_view id);

/// A tag value: as sanitize(), but dots stay (they end no name there).
std::string sanitizeTagValue(std::string_view value);

enum class MetricType { kCounter, kGauge, kTimer };

using Tags = std::vector<std::pair<std::string_view, std::string_view>>;

/// "<name>:<value>|<c|g|ms>[|@rate][|#k:v,...]". `name` is already joined and sanitised; tag values
/// are sanitised here (sanitizeTagValue). `rate` is written only when below 1.
std::string formatLine(std::string_view name, MetricType type, double value, double rate = 1.0,
                       const Tags& tags = {});

/// "<prefix>.<a>.<b>...": joins with dots, skipping an empty prefix.
std::string joinName(std::string_view prefix, std::initializer_list<std::string_view> parts);

/// Packs lines into datagrams of at most `max_bytes` (lines joined by '\n'). A line longer than
/// `max_bytes` alone is dropped and counted in `oversized`.
std::vector<std::string> packDatagrams(const std::vector<std::string>& lines, std::size_t max_bytes,
                                       std::size_t& oversized);

}  // namespace leoflow::plugins::metrics_statsd
