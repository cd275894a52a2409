// Cron benchmarks: cron/next and cron/catchup100 (registered once core/schedule has its API).
namespace leoflow::bench {
void registerCronBenchmarks() {}
}  // namespace leoflow::bench
