#include "factory.h"

#include <stdexcept>

#include "sender.h"
#include "statsd_recorder.h"

namespace leoflow::plugins::metrics_statsd {

std::vector<ConfigKey> StatsdRecorderFactory::configKeys() const {
  return {
      {"address", ConfigType::kString, false, ConfigValue{std::string("127.0.0.1:8125")},
       "StatsD daemon host:port (UDP); resolved at start and again after a send fails"},
      {"prefix", ConfigType::kString, false, ConfigValue{std::string("leoflow")},
       "prepended to every metric name with a dot; empty for none"},
      {"tags", ConfigType::kBool, false, ConfigValue{false},
       "DogStatsD: dag_id, task_id, state and tenant travel as tags instead of inside names"},
      {"max_packet_bytes", ConfigType::kInt, false, ConfigValue{std::int64_t{1432}},
       "largest datagram sent (lines are batched up to it); keep it below the path MTU"},
      {"sample_rate", ConfigType::kDouble, false, ConfigValue{1.0},
       "in (0, 1]: the share of per-tick samples sent (scheduler_heartbeat, scheduler.tick_duration)"},
  };
}

std::unique_ptr<Recorder> StatsdRecorderFactory::create(const ConfigView& config, const PluginContext& context) {
  RecorderOptions o;
  o.sender.address = config.getString("address");
  std::string host, port;
  if (!splitAddress(o.sender.address, host, port)) {
    throw std::invalid_argument("[" + config.section() + "] address \"" + o.sender.address +
                                "\" is not host:port (e.g. 127.0.0.1:8125)");
  }
  o.prefix = config.getString("prefix");
  while (!o.prefix.empty() && o.prefix.back() == '.') o.prefix.pop_back();
  o.tags = config.getBool("tags");
  const std::int64_t max_packet = config.getInt("max_packet_bytes");
  if (max_packet < 64 || max_packet > 65'507) {
    throw std::invalid_argument("[" + config.section() + "] max_packet_bytes must be within 64..65507, not " +
                                std::to_string(max_packet));
  }
  o.sender.max_packet_bytes = static_cast<std::size_t>(max_packet);
  o.sample_rate = config.getDouble("sample_rate");
  if (!(o.sample_rate > 0.0 && o.sample_rate <= 1.0)) {
    throw std::invalid_argument("[" + config.section() + "] sample_rate must be in (0, 1]");
  }
  return std::make_unique<StatsdRecorder>(std::move(o), context.logger());
}

}  // namespace leoflow::plugins::metrics_statsd
