// The library's only exported symbol: the plugin descriptor (ARCHITECTURE §3, plugin.h).
#include <leoflow/plugin.h>

#include "factory.h"

namespace {

void registerFactories(leoflow::PluginRegistrar& registrar) {
  registrar.addRecorder(std::make_unique<leoflow::plugins::metrics_statsd::StatsdRecorderFactory>());
}

}  // namespace

LEOFLOW_PLUGIN("metrics-statsd", "0.1.0",
               "sends the scheduler's metrics to a StatsD daemon over UDP (Airflow's names; DogStatsD tags optional)",
               registerFactories)
