// The SDK alone is enough to write a plugin (STYLE.md, libcamera's public-api test): this file is
// compiled with nothing but core/include on its include path — no core/ internals — includes every
// SDK header, implements a trivial plugin of each role (trivial_roles.h), exports it with
// LEOFLOW_PLUGIN and drives it through its own descriptor, as the host would.
#include <leoflow/abi.h>
#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/dispatcher.h>
#include <leoflow/domain.h>
#include <leoflow/inline_runner.h>
#include <leoflow/leader.h>
#include <leoflow/plugin.h>
#include <leoflow/recorder.h>
#include <leoflow/status.h>
#include <leoflow/store.h>

#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include "trivial_roles.h"

namespace {

void registerEveryRole(leoflow::PluginRegistrar& registrar) {
  registrar.addStore(std::make_unique<trivial::StoreFactory>());
  registrar.addLeader(std::make_unique<trivial::LeaderFactory>());
  registrar.addDispatcher(std::make_unique<trivial::DispatcherFactory>());
  registrar.addInlineRunner(std::make_unique<trivial::InlineRunnerFactory>());
  registrar.addRecorder(std::make_unique<trivial::RecorderFactory>());
}

}  // namespace

LEOFLOW_PLUGIN("public-api", "0.0.1", "every role, from the SDK headers alone", registerEveryRole)

namespace {

struct Collected final : leoflow::PluginRegistrar {
  void addStore(std::unique_ptr<leoflow::StoreFactory> f) override { store = std::move(f); }
  void addLeader(std::unique_ptr<leoflow::LeaderFactory> f) override { leader = std::move(f); }
  void addDispatcher(std::unique_ptr<leoflow::DispatcherFactory> f) override { dispatcher = std::move(f); }
  void addInlineRunner(std::unique_ptr<leoflow::InlineRunnerFactory> f) override { inline_runner = std::move(f); }
  void addRecorder(std::unique_ptr<leoflow::RecorderFactory> f) override { recorder = std::move(f); }

  std::unique_ptr<leoflow::StoreFactory> store;
  std::unique_ptr<leoflow::LeaderFactory> leader;
  std::unique_ptr<leoflow::DispatcherFactory> dispatcher;
  std::unique_ptr<leoflow::InlineRunnerFactory> inline_runner;
  std::unique_ptr<leoflow::RecorderFactory> recorder;
};

class CountingEvents final : public leoflow::TaskEvents {
 public:
  leoflow::Status running(const leoflow::ExecutionRef&) override {
    ++running_;
    return {};
  }
  leoflow::Status heartbeat(const leoflow::ExecutionRef&) override { return {}; }
  leoflow::Status finished(const leoflow::ExecutionRef&, const leoflow::TaskOutcome& outcome) override {
    last_message_ = outcome.message;
    return {};
  }
  int running_ = 0;
  std::string last_message_;
};

class EpochClock final : public leoflow::Clock {
 public:
  leoflow::Timestamp now() const override { return leoflow::Timestamp{}; }
};

// Builds the values a host would, from the keys a factory declares: every default, plus `extra`.
leoflow::ConfigView viewFor(const std::vector<leoflow::ConfigKey>& keys, const std::string& section,
                            std::map<std::string, leoflow::ConfigValue> extra = {}) {
  for (const leoflow::ConfigKey& key : keys) {
    if (key.default_value) extra.emplace(key.name, *key.default_value);
  }
  return leoflow::ConfigView(section, std::move(extra));
}

TEST(PublicApi, TheDescriptorIsWhatTheHostChecks) {
  const LeoflowPluginDescriptor* d = leoflow_plugin_descriptor();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->struct_size, sizeof(LeoflowPluginDescriptor));
  EXPECT_EQ(d->abi_major, static_cast<std::uint32_t>(LEOFLOW_ABI_MAJOR));
  EXPECT_EQ(d->abi_minor, static_cast<std::uint32_t>(LEOFLOW_ABI_MINOR));
  EXPECT_STREQ(d->build_tag, LEOFLOW_BUILD_TAG);
  EXPECT_STREQ(d->sdk_hash, LEOFLOW_SDK_HASH);
  EXPECT_EQ(std::strlen(d->sdk_hash), 16u) << d->sdk_hash;
  EXPECT_STREQ(d->name, "public-api");
  EXPECT_STREQ(d->version, "0.0.1");
  EXPECT_NE(d->register_factories, nullptr);
  EXPECT_STREQ(LEOFLOW_PLUGIN_ENTRY_POINT, "leoflow_plugin_descriptor");
  // The build tag carries the C++ standard and the spdlog and fmt versions a plugin must share.
  EXPECT_NE(std::strstr(d->build_tag, "cxx=202002L"), nullptr) << d->build_tag;
  EXPECT_NE(std::strstr(d->build_tag, "spdlog="), nullptr);
  EXPECT_NE(std::strstr(d->build_tag, "fmt="), nullptr);
}

TEST(PublicApi, EveryRoleIsCreatedThroughItsFactory) {
  Collected factories;
  leoflow_plugin_descriptor()->register_factories(factories);
  ASSERT_TRUE(factories.store && factories.leader && factories.dispatcher && factories.inline_runner &&
              factories.recorder);

  std::ostringstream log;
  EpochClock clock;
  CountingEvents events;
  trivial::Recorder lent_recorder;
  auto logger =
      std::make_shared<spdlog::logger>("plugin.public-api", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  const leoflow::PluginContext context("public-api", logger, clock, events, lent_recorder, std::chrono::seconds(15),
                                       "replica-0");
  EXPECT_EQ(context.pluginName(), "public-api");
  EXPECT_EQ(context.heartbeatInterval(), std::chrono::seconds(15));

  auto store = factories.store->create(
      viewFor(factories.store->configKeys(), "store.config", {{"url", leoflow::ConfigValue(std::string("x"))}}),
      context);
  EXPECT_TRUE(store->ping().isOk());
  EXPECT_EQ(store->claimTerm("replica-0").value(), 1);
  EXPECT_EQ(store->getDag("nope", std::nullopt).status().code(), leoflow::StatusCode::kNotFound);

  auto leader = factories.leader->create(viewFor(factories.leader->configKeys(), "leader.config"), context);
  EXPECT_EQ(leader->checkInterval(), std::chrono::milliseconds(1000));

  auto dispatcher =
      factories.dispatcher->create(viewFor(factories.dispatcher->configKeys(), "dispatcher.config"), context);
  leoflow::DispatchRequest request;
  request.attempt = leoflow::AttemptRef{leoflow::RunKey{"dag", "run"}, "task", 1};
  request.task.entrypoint = "true";
  EXPECT_EQ(dispatcher->dispatch(request).value(), leoflow::DispatchOutcome::kStarted);
  EXPECT_EQ(dispatcher->dispatch(request).value(), leoflow::DispatchOutcome::kAlreadyRunning);
  EXPECT_EQ(events.running_, 1);
  EXPECT_EQ(events.last_message_, "trivial: true");
  EXPECT_NE(log.str().find("attempt dispatched task_id=task try=1"), std::string::npos) << log.str();

  auto runner = factories.inline_runner->create(leoflow::ConfigView{}, context);
  EXPECT_FALSE(runner->start(request).value());

  auto recorder = factories.recorder->create(viewFor(factories.recorder->configKeys(), "recorder.config"), context);
  recorder->observeTickDuration(std::chrono::microseconds(5));
}

TEST(PublicApi, ValueTypesAndStatusesWork) {
  EXPECT_EQ(leoflow::parseTaskState("up_for_retry"), leoflow::TaskState::kUpForRetry);
  EXPECT_EQ(leoflow::parseTriggerRule(""), leoflow::TriggerRule::kAllSuccess);
  const leoflow::Result<int> failed = leoflow::unavailable("down");
  EXPECT_EQ(failed.status().toString(), "unavailable: down");
  const leoflow::ConfigView view("x.config", {{"n", leoflow::ConfigValue(std::int64_t{2})}});
  EXPECT_DOUBLE_EQ(view.getDouble("n"), 2.0);
  EXPECT_THROW((void)view.getString("n"), std::invalid_argument);
}

}  // namespace
