// store-postgres behaviour beyond the contract suites, on a real PostgreSQL: migrations (from nothing,
// re-run, concurrent, a schema newer than the plugin), login errors (a wrong password never shown,
// an unreachable server is UnavailableError), config checks, the task history, deleteFinishedRuns,
// statement_timeout, schema isolation and leadership details (check interval, lock ids, a killed or
// idle lock session). Schemas lf_store_*, lock ids 7300000002-7300000009. What stops or restarts the
// server is in pg_restart_test.cpp, which runs alone; the real binary's exit codes are in
// pg_cli_test.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <leoflow/status.h>

#include "change_message.h"
#include "migrations.h"
#include "pg_test_env.h"
#include "planning/transitions.h"

namespace leoflow::testing::pg {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;
using S = TaskState;
using R = DagRunState;
using SteadyClock = std::chrono::steady_clock;
namespace sp = leoflow::plugins::store_postgres;

const Timestamp kT0 = Timestamp{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::May / 28}} + 12h;
Timestamp at(int seconds) { return kT0 + std::chrono::seconds{seconds}; }
/// at(seconds) as microseconds since the epoch, in decimal: the form the store's SQL functions take.
std::string atMicros(int seconds) {
  return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(at(seconds).time_since_epoch()).count());
}

// A password nobody uses, to look for in messages.
constexpr const char* kWrongPassword = "Wr0ng-Pa55word-4417";

long long millisSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

Settings settingsFor(const std::string& schema, std::int64_t lock_id = 7'300'000'002) {
  Settings s;
  s.schema = schema;
  s.pool_size = 3;
  s.lock_id = lock_id;
  return s;
}

/// "schema".table
std::string tableOf(const std::string& schema, const std::string& table) { return "\"" + schema + "\"." + table; }

std::int64_t countOf(const std::string& sql) { return std::stoll(adminQuery(sql)); }

DagDefinition dagDef(const std::string& dag_id) {
  DagDefinition d;
  d.spec.dag_id = dag_id;
  d.spec_json = R"({"dag_id":")" + dag_id + R"("})";
  return d;
}

/// The message of what `make` throws, and whether it was UnavailableError; fails when nothing is thrown.
struct Thrown {
  bool thrown = false;
  bool unavailable = false;
  std::string message;
};

template <typename Make>
Thrown thrownBy(Make&& make) {
  Thrown t;
  try {
    auto made = make();
    (void)made;
  } catch (const UnavailableError& e) {
    t = {true, true, e.what()};
  } catch (const std::exception& e) {
    t = {true, false, e.what()};
  }
  return t;
}

std::vector<std::string> migrationNames() {
  std::vector<std::string> names;
  for (const auto& m : sp::kMigrations) names.emplace_back(m.name);
  return names;
}

const std::vector<std::string> kTables = {"dag_versions", "dags",           "liveness",       "run_moves",
                                          "runs",         "schema_migrations", "task_history", "task_instances",
                                          "task_moves",   "term"};

// --- Migrations -------------------------------------------------------------------------------------

TEST(PgMigrations, AnEmptySchemaGetsEveryTableAndRunningAgainIsUpToDate) {
  LEOFLOW_REQUIRE_TEST_PG();
  const std::string schema = "lf_store_migrate";
  dropSchema(schema);
  ASSERT_FALSE(schemaExists(schema));

  const auto start = SteadyClock::now();
  auto first = openStore(settingsFor(schema));
  std::printf("[ figures  ] create() on an empty schema (every migration) took %lld ms\n", millisSince(start));
  ASSERT_TRUE(schemaExists(schema));
  EXPECT_THAT(tablesOf(schema), IsSupersetOf(kTables));
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(schema, "schema_migrations")),
            static_cast<std::int64_t>(sp::kMigrations.size()))
      << "one row per migration applied";
  EXPECT_TRUE(first->ping().isOk());

  // This store object applied every migration, in create(), and says so; a second one finds the
  // schema up to date.
  auto applied = first->migrate();
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  ASSERT_TRUE(applied->has_value()) << "store-postgres has migrations: migrate() must not answer 'unsupported'";
  EXPECT_EQ(**applied, migrationNames());

  const auto start2 = SteadyClock::now();
  auto second = openStore(settingsFor(schema));
  std::printf("[ figures  ] create() on an up-to-date schema took %lld ms\n", millisSince(start2));
  auto second_run = second->migrate();
  ASSERT_TRUE(second_run.isOk()) << second_run.status().toString();
  ASSERT_TRUE(second_run->has_value());
  EXPECT_THAT(**second_run, ::testing::IsEmpty());
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(schema, "schema_migrations")),
            static_cast<std::int64_t>(sp::kMigrations.size()))
      << "re-running records nothing new";
  EXPECT_THAT(tablesOf(schema), IsSupersetOf(kTables));
  // And the store works: a DAG synced through one handle is read through the other.
  ASSERT_TRUE(first->syncDags(std::vector{dagDef("etl")}).isOk());
  auto dag = second->getDag("etl", std::nullopt);
  ASSERT_TRUE(dag.isOk()) << dag.status().toString();
  EXPECT_EQ(dag->version, 1);
}

TEST(PgMigrations, MigrateOnAnEmptiedSchemaAppliesEveryMigrationByName) {
  LEOFLOW_REQUIRE_TEST_PG();
  const std::string schema = "lf_store_remigrate";
  dropSchema(schema);
  { auto installer = openStore(settingsFor(schema)); }
  auto store = openStore(settingsFor(schema));  // applied nothing in create(): up to date
  // The schema disappears behind the store's back (an operator's DROP): migrate() builds it again
  // and names what it applied now.
  dropSchema(schema);
  auto applied = store->migrate();
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  ASSERT_TRUE(applied->has_value());
  EXPECT_EQ(**applied, migrationNames());
  EXPECT_THAT(tablesOf(schema), IsSupersetOf(kTables));
  auto other = openStore(settingsFor(schema))->migrate();
  ASSERT_TRUE(other.isOk()) << other.status().toString();
  ASSERT_TRUE(other->has_value());
  EXPECT_THAT(**other, ::testing::IsEmpty());
}

TEST(PgMigrations, StoresCreatedAtOnceOnAnEmptySchemaMigrateItOnce) {
  LEOFLOW_REQUIRE_TEST_PG();
  const std::string schema = "lf_store_race";
  dropSchema(schema);
  constexpr int kStores = 4;
  std::vector<std::unique_ptr<Store>> stores(kStores);
  std::vector<std::string> errors(kStores);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      try {
        stores[i] = openStore(settingsFor(schema));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStores; ++i) {
    EXPECT_TRUE(errors[i].empty()) << "store " << i << ": " << errors[i];
    EXPECT_NE(stores[i], nullptr);
  }
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(schema, "schema_migrations")),
            static_cast<std::int64_t>(sp::kMigrations.size()));
}

TEST(PgMigrations, ASchemaNewerThanThePluginIsRefusedWithAClearMessage) {
  LEOFLOW_REQUIRE_TEST_PG();
  const std::string schema = "lf_store_newer";
  dropSchema(schema);
  auto before = openStore(settingsFor(schema));
  const int newer = static_cast<int>(sp::kMigrations.size()) + 1;
  adminQuery("INSERT INTO " + tableOf(schema, "schema_migrations") + " (version, name) VALUES (" +
             std::to_string(newer) + ", '" + std::to_string(newer) + "_from_the_future')");

  const Thrown store = thrownBy([&] { return openStore(settingsFor(schema)); });
  ASSERT_TRUE(store.thrown) << "a schema at version " << newer << " was accepted by a plugin that knows "
                            << sp::kMigrations.size();
  EXPECT_FALSE(store.unavailable) << "a newer schema is not a reachability problem: " << store.message;
  EXPECT_THAT(store.message, HasSubstr(std::to_string(newer))) << "name the schema's version";
  EXPECT_THAT(store.message, HasSubstr(std::to_string(sp::kMigrations.size()))) << "and the plugin's";
  EXPECT_THAT(store.message, HasSubstr(schema)) << "and the schema";
  std::printf("[ message  ] %s\n", store.message.c_str());
  // A store opened before the upgrade is told the same when it is asked to migrate.
  auto migrated = before->migrate();
  EXPECT_EQ(migrated.status().code(), StatusCode::kInvalidArgument) << migrated.status().toString();
  EXPECT_THAT(migrated.status().message(), HasSubstr(std::to_string(newer)));
  // Nothing was touched.
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(schema, "schema_migrations")),
            static_cast<std::int64_t>(sp::kMigrations.size()) + 1);
}

// --- Logging in -------------------------------------------------------------------------------------

std::string secureUser() {
  const char* u = std::getenv("LEOFLOW_TEST_PG_SECURE_USER");
  return u != nullptr && *u != '\0' ? u : "leoflow_secure";
}

std::string securePassword() {
  const char* p = std::getenv("LEOFLOW_TEST_PG_SECURE_PASSWORD");
  return p != nullptr && *p != '\0' ? p : "right-password";
}

// The payloads the SQL functions send (src/change_message.h); no server needed.
TEST(PgChangeMessage, PayloadsParseBackToChangesWithTheLeadersTerm) {
  auto report = sp::parseChangeMessage("t:etl%3Av2:r1:x");
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->run, (RunKey{"etl:v2", "r1"}));
  EXPECT_EQ(report->task_id, "x");
  EXPECT_EQ(report->leader_term, 0) << "a report's or a person's change names no term";
  auto moved = sp::parseChangeMessage("t:etl:r1:a%3Ab:42");
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->task_id, "a:b");
  EXPECT_EQ(moved->leader_term, 42) << "a transition's change names the term that wrote it";
  auto executor = sp::parseChangeMessage("x:etl:r1:a:host%3Aa/1/e%251");
  ASSERT_TRUE(executor.has_value());
  EXPECT_EQ(executor->kind, Change::Kind::kTask);
  EXPECT_EQ(executor->task_id, "a");
  EXPECT_EQ(executor->execution_id, "host:a/1/e%1") << "an executor's report names its execution";
  EXPECT_EQ(report->execution_id, "") << "nobody else's change names one";
  auto created = sp::parseChangeMessage("r:etl:r1");
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->kind, Change::Kind::kRun);
  EXPECT_EQ(created->leader_term, 0) << "a run's creation or a person's command names no term";
  auto started = sp::parseChangeMessage("r:etl:r%3A1:42");
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->kind, Change::Kind::kRun);
  EXPECT_EQ(started->run, (RunKey{"etl", "r:1"}));
  EXPECT_EQ(started->leader_term, 42) << "the leader's run start or move names the term that wrote it";
  for (const char* bad : {"t:etl:r1", "t:a:b:c:x", "t:a:b:c:0", "t:a:b:c:-1", "t:a:b:c:1:2", "r:a:b:x", "r:a:b:0",
                          "r:a:b:1:2", "d:", "x:a:b:c", "x:a:b:c:", "x:a:b:c:e:f"}) {
    EXPECT_FALSE(sp::parseChangeMessage(bad).has_value()) << bad;
  }
}

TEST(PgLogin, AWrongPasswordIsAClearErrorThatNeverShowsThePassword) {
  LEOFLOW_REQUIRE_TEST_PG();
  const std::vector<std::string> dsns = {
      dsnFor(secureUser(), kWrongPassword),
      "host=127.0.0.1 port=" + std::to_string(serverPort()) + " user=" + secureUser() + " password=" + kWrongPassword +
          " dbname=postgres",
  };
  for (const std::string& dsn : dsns) {
    SCOPED_TRACE(dsn);
    Settings s = settingsFor("lf_store_secure");
    s.dsn = dsn;
    const Thrown store = thrownBy([&] { return openStore(s); });
    const Thrown leader = thrownBy([&] { return openLeader(s, "replica-a"); });
    for (const Thrown& t : {store, leader}) {
      ASSERT_TRUE(t.thrown) << "a rejected login must not create anything";
      EXPECT_FALSE(t.unavailable) << "a rejected login is a configuration error (exit 2), not an unreachable "
                                     "server: "
                                  << t.message;
      EXPECT_THAT(t.message, Not(HasSubstr(kWrongPassword))) << "the password leaked";
      EXPECT_THAT(t.message, HasSubstr("password authentication failed")) << "say why";
      EXPECT_THAT(t.message, HasSubstr(secureUser())) << "say for whom";
    }
    std::printf("[ message  ] %s\n", store.message.c_str());
  }
}

TEST(PgLogin, TheRightPasswordLogsInAndTheRoleGetsAnInstallation) {
  LEOFLOW_REQUIRE_TEST_PG();
  dropSchema("lf_store_secure");
  Settings s = settingsFor("lf_store_secure");
  s.dsn = dsnFor(secureUser(), securePassword());
  std::unique_ptr<Store> store;
  try {
    store = openStore(s);
  } catch (const std::exception& e) {
    FAIL() << "the right password was refused: " << e.what();
  }
  EXPECT_TRUE(store->ping().isOk());
  EXPECT_THAT(tablesOf("lf_store_secure"), IsSupersetOf(kTables));
}

TEST(PgLogin, AnUnknownDatabaseIsAConfigurationError) {
  LEOFLOW_REQUIRE_TEST_PG();
  Settings s = settingsFor("lf_store_nodb");
  s.dsn = "postgresql://postgres@127.0.0.1:" + std::to_string(serverPort()) + "/no_such_database";
  const Thrown t = thrownBy([&] { return openStore(s); });
  ASSERT_TRUE(t.thrown);
  EXPECT_FALSE(t.unavailable) << t.message;
  EXPECT_THAT(t.message, HasSubstr("no_such_database"));
}

TEST(PgLogin, AClosedPortIsUnavailableWithinTheConnectTimeout) {
  LEOFLOW_REQUIRE_TEST_PG();
  Settings s = settingsFor("lf_store_closed");
  s.dsn = "postgresql://" + secureUser() + ":" + kWrongPassword + "@127.0.0.1:" + std::to_string(closedPort()) +
          "/postgres";
  s.connect_timeout_ms = 1000;
  for (const bool leader : {false, true}) {
    SCOPED_TRACE(leader ? "leader" : "store");
    const auto start = SteadyClock::now();
    const Thrown t = leader ? thrownBy([&] { return openLeader(s, "replica-a"); })
                            : thrownBy([&] { return openStore(s); });
    const long long took = millisSince(start);
    ASSERT_TRUE(t.thrown);
    EXPECT_TRUE(t.unavailable) << "a closed port is an unreachable server (UnavailableError, exit 3): " << t.message;
    EXPECT_THAT(t.message, Not(HasSubstr(kWrongPassword))) << "the password leaked";
    EXPECT_LT(took, 3000) << "connect_timeout_ms is 1000";
    std::printf("[ message  ] (%lld ms) %s\n", took, t.message.c_str());
  }
}

// --- Configuration ------------------------------------------------------------------------------------

TEST(PgConfig, ALeaderPollLongerThanAThirdOfTheLeaseOrALeaseUnder300MsIsRefused) {
  LEOFLOW_REQUIRE_TEST_PG();
  Settings slow = settingsFor("lf_store_config", 7'300'000'008);
  slow.lease_ms = 900;
  slow.poll_ms = 301;
  const Thrown t1 = thrownBy([&] { return openLeader(slow, "replica-a"); });
  ASSERT_TRUE(t1.thrown) << "poll_ms 301 > lease_ms 900 / 3 lets the lease lapse between checks";
  EXPECT_FALSE(t1.unavailable) << t1.message;
  EXPECT_THAT(t1.message, HasSubstr("poll_ms"));
  Settings short_lease = settingsFor("lf_store_config", 7'300'000'008);
  short_lease.lease_ms = 299;
  short_lease.poll_ms = 50;
  const Thrown t2 = thrownBy([&] { return openLeader(short_lease, "replica-a"); });
  ASSERT_TRUE(t2.thrown);
  EXPECT_FALSE(t2.unavailable) << t2.message;
  EXPECT_THAT(t2.message, HasSubstr("lease_ms"));
  Settings fine = settingsFor("lf_store_config", 7'300'000'008);
  fine.lease_ms = 900;
  fine.poll_ms = 300;
  EXPECT_NE(openLeader(fine, "replica-a"), nullptr);
}

// --- The store's own records --------------------------------------------------------------------------

class PgStoreTest : public ::testing::Test {
 protected:
  static constexpr const char* kSchema = "lf_store_records";

  void SetUp() override {
    LEOFLOW_REQUIRE_TEST_PG();
    dropSchema(kSchema);
    store_ = openStore(settingsFor(kSchema));
  }
  void TearDown() override {
    if (store_) store_->unsubscribe();
  }

  Store& store() { return *store_; }

  /// A running run with `tasks` in none, under a claimed term.
  RunKey startedRun(const std::string& dag, const std::string& run, const std::vector<std::string>& tasks,
                    std::int32_t max_tries = 1, Timestamp queued = kT0) {
    EXPECT_TRUE(store().syncDags(std::vector{dagDef(dag)}).isOk());
    if (term_ == 0) term_ = *store().claimTerm("replica-test");
    const RunKey key{dag, run};
    const Status created = store().createRun(std::nullopt, NewRun{key, 1, RunTrigger::kManual, queued, "", queued});
    EXPECT_TRUE(created.isOk()) << created.toString();
    std::vector<NewTaskInstance> instances;
    for (const auto& t : tasks) instances.push_back(NewTaskInstance{t, max_tries});
    const Status s = store().materializeRun(term_, key, instances, queued);
    EXPECT_TRUE(s.isOk()) << s.toString();
    return key;
  }

  bool apply(const RunKey& key, const std::string& task, S from, std::int32_t try_number, S to, Timestamp when) {
    auto r = store().applyTransitions(term_, key, std::vector{TaskTransitionWrite{task, from, try_number, to, "", false}},
                                      when);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() && r->at(0);
  }

  std::string runUid(const RunKey& key) {
    return adminQuery("SELECT uid FROM " + tableOf(kSchema, "runs") + " WHERE dag_id = '" + key.dag_id +
                      "' AND run_id = '" + key.run_id + "'");
  }

  /// The run's history rows as "task try from->to source", oldest first.
  std::vector<std::string> history(const RunKey& key) {
    return adminColumn("SELECT task_id || ' ' || try_number || ' ' || from_state || '->' || to_state || ' ' || "
                       "source FROM " +
                       tableOf(kSchema, "task_history") + " WHERE run_uid = " + runUid(key) + " ORDER BY id");
  }

  /// Entries of the runs table's primary key its scans have returned so far (pg_stat_user_indexes), once
  /// that is at least `at_least` or 15 s have passed. A session publishes its counters up to 10 s after
  /// going idle, and at once when it ends: the store is closed (its sessions end) and opened again, and
  /// the count read until it holds still.
  std::int64_t runKeyReads(std::int64_t at_least = 0) {
    store_->unsubscribe();
    store_.reset();
    const std::string sql = "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE schemaname = '" +
                            std::string(kSchema) + "' AND indexrelname = 'runs_pkey'";
    const auto deadline = SteadyClock::now() + 15s;
    std::int64_t last = countOf(sql);
    for (int still = 0; still < 4 || (last < at_least && SteadyClock::now() < deadline);) {
      std::this_thread::sleep_for(250ms);
      const std::int64_t now = countOf(sql);
      still = now == last ? still + 1 : 0;
      last = now;
    }
    store_ = openStore(settingsFor(kSchema));
    return last;
  }

  /// A counter of task_instances for what this session's transaction did so far (read inside it).
  static std::string taskInstancesCounterSql(const std::string& column) {
    return "SELECT coalesce(" + column + ", 0) FROM pg_stat_xact_user_tables WHERE schemaname = '" +
           std::string(kSchema) + "' AND relname = 'task_instances'";
  }

  std::unique_ptr<Store> store_;
  Term term_ = 0;
};

// The liveness record is a tick's one write when nothing changed: its transaction commits without
// waiting for the WAL flush (migration 014), so an idle tick does not wait on the disk. Every other
// write, the term's above all, still waits.
TEST_F(PgStoreTest, OnlyTheLivenessRecordCommitsWithoutWaitingForTheFlush) {
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("etl")}).isOk());
  const Term term = *store().claimTerm("replica-test");
  AdminSession session;
  session.query("SET search_path = " + std::string(kSchema));
  session.query("SET synchronous_commit = on");  // as in production (the test server runs with it off)
  auto commitSetting = [&](const std::string& call) {
    session.query("BEGIN");
    session.query(call);
    const std::string setting = session.query("SHOW synchronous_commit");
    session.query("COMMIT");
    return setting;
  };
  const std::string t = std::to_string(term);
  EXPECT_EQ(commitSetting("SELECT record_liveness(" + t + ", 'replica-test', " + t + ", 5000000, 3, 4)"), "off");
  EXPECT_EQ(session.query("SHOW synchronous_commit"), "on") << "back to the session's setting after the commit";
  EXPECT_EQ(commitSetting("SELECT claim_term('replica-test')"), "on");
  EXPECT_EQ(commitSetting("SELECT set_paused('etl', true)"), "on");

  auto read = store().readLiveness();
  ASSERT_TRUE(read.isOk()) << read.status().toString();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->holder, "replica-test");
  EXPECT_EQ((*read)->queue_depth, 3);
  EXPECT_EQ((*read)->active_runs, 4);
}

TEST_F(PgStoreTest, TheHistoryGetsOneRowPerAppliedTransitionAndNoneForARefusedOne) {
  const RunKey key = startedRun("etl", "r1", {"a", "b"}, /*max_tries=*/2);
  EXPECT_THAT(history(key), ::testing::IsEmpty()) << "materializing is not a transition";

  EXPECT_TRUE(apply(key, "a", S::kNone, 1, S::kScheduled, at(1)));
  EXPECT_FALSE(apply(key, "b", S::kNone, 2, S::kScheduled, at(1))) << "wrong try: the guard does not hold";
  EXPECT_FALSE(apply(key, "b", S::kScheduled, 1, S::kQueued, at(1))) << "wrong state";
  EXPECT_FALSE(apply(key, "b", S::kNone, 1, S::kRunning, at(1))) << "a move the table forbids";
  EXPECT_TRUE(apply(key, "a", S::kScheduled, 1, S::kQueued, at(2)));
  const ExecutionRef a1{AttemptRef{key, "a", 1}, "host-a/101/e1"};
  ASSERT_TRUE(store().reportRunning(a1, at(3)).isOk());
  ASSERT_TRUE(store().reportHeartbeat(a1, at(4)).isOk());  // a fact, not a transition
  ASSERT_TRUE(store().reportFinished(a1, TaskOutcome{false, 3, "exit code 3"}, at(5)).isOk());
  EXPECT_EQ(store().reportFinished(a1, TaskOutcome{true, 0, ""}, at(6)).code(), StatusCode::kConflict);
  EXPECT_TRUE(apply(key, "a", S::kFailed, 1, S::kUpForRetry, at(6)));
  EXPECT_TRUE(apply(key, "a", S::kUpForRetry, 1, S::kNone, at(7)));
  EXPECT_TRUE(apply(key, "a", S::kNone, 2, S::kScheduled, at(8)));
  ASSERT_TRUE(store().reapRun(term_, key, at(9), "orphaned").isOk());

  EXPECT_THAT(history(key), ::testing::ElementsAre("a 1 none->scheduled scheduler",       //
                                                   "a 1 scheduled->queued scheduler",     //
                                                   "a 1 queued->running executor",        //
                                                   "a 1 running->failed executor",        //
                                                   "a 1 failed->up_for_retry scheduler",  //
                                                   "a 1 up_for_retry->none scheduler",    //
                                                   "a 2 none->scheduled scheduler",       //
                                                   "a 2 scheduled->failed reaper",        //
                                                   "b 1 none->failed reaper"));
  // Decisions carry their term; executor reports carry none. Times are the calls' `at`.
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "task_history") + " WHERE run_uid = " + runUid(key) +
                    " AND source IN ('scheduler', 'reaper') AND term = " + std::to_string(term_)),
            7);
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "task_history") + " WHERE run_uid = " + runUid(key) +
                    " AND source = 'executor' AND term IS NULL"),
            2);
  EXPECT_EQ(adminQuery("SELECT " + tableOf(kSchema, "ts_us") + "(at) FROM " + tableOf(kSchema, "task_history") +
                       " WHERE run_uid = " + runUid(key) + " AND to_state = 'running'"),
            atMicros(3));
}

// A task that becomes ready while its executor has room is sent as none → scheduled → queued in one
// batch (engine_tick.cpp); migrations/012 writes that pair as one row write. The answers, the row and
// the history are what two writes gave; each half is still a compare-and-set.
TEST_F(PgStoreTest, AReadyTaskReachesQueuedInOneRowWriteWithBothHistoryRows) {
  const RunKey key = startedRun("etl", "pairs", {"a", "b", "c"});
  ASSERT_TRUE(apply(key, "c", S::kNone, 1, S::kScheduled, at(1)));  // c waits in scheduled already
  auto pair = [](const std::string& task, std::int32_t try_number) {
    return std::vector{TaskTransitionWrite{task, S::kNone, try_number, S::kScheduled, "", false},
                       TaskTransitionWrite{task, S::kScheduled, try_number, S::kQueued, "", false}};
  };
  std::vector<TaskTransitionWrite> batch = pair("a", 1);
  for (auto& w : pair("b", 2)) batch.push_back(w);  // b is on try 1: both halves refused
  for (auto& w : pair("c", 1)) batch.push_back(w);  // c is not in none: only the second half applies
  auto applied = store().applyTransitions(term_, key, batch, at(2));
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  EXPECT_THAT(*applied, ::testing::ElementsAre(true, true, false, false, false, true));

  auto loaded = store().loadRuns(std::vector{key});
  ASSERT_TRUE(loaded.at(0).isOk());
  const TaskInstance& a = loaded[0]->tasks.at(0);
  EXPECT_EQ(a.state, S::kQueued);
  EXPECT_EQ(a.scheduled_at, at(2));
  EXPECT_EQ(a.queued_at, at(2));
  EXPECT_EQ(loaded[0]->tasks.at(1).state, S::kNone);
  EXPECT_EQ(loaded[0]->tasks.at(2).state, S::kQueued);
  EXPECT_EQ(loaded[0]->tasks.at(2).scheduled_at, at(1)) << "c was scheduled by the earlier write";
  EXPECT_THAT(history(key), ::testing::ElementsAre("c 1 none->scheduled scheduler", "a 1 none->scheduled scheduler",
                                                   "a 1 scheduled->queued scheduler",
                                                   "c 1 scheduled->queued scheduler"));

  // The row writes of such a batch, counted by the server inside its transaction: one per ready task.
  const RunKey wide = startedRun("etl", "wide", {"x", "y", "z"});
  AdminSession session;
  session.query("BEGIN; SET LOCAL search_path = " + std::string(kSchema));
  const std::string updates_sql = taskInstancesCounterSql("n_tup_upd");
  const std::string updated_before = session.query(updates_sql);
  const std::string answer = session.query(
      "SELECT apply_transitions(" + std::to_string(term_) + ", 'etl', 'wide', 0, '{x,x,y,y,z,z}', "
      "'{none,scheduled,none,scheduled,none,scheduled}', '{1,1,1,1,1,1}', "
      "'{scheduled,queued,scheduled,queued,scheduled,queued}', '{\"\",\"\",\"\",\"\",\"\",\"\"}', '{f,f,f,f,f,f}')");
  const std::string updated = session.query(updates_sql);
  session.query("COMMIT");
  EXPECT_EQ(answer, "{t,t,t,t,t,t}");
  EXPECT_EQ(std::stoll(updated) - std::stoll(updated_before), 3)
      << "three ready tasks, three row writes (two each before)";
  auto wide_loaded = store().loadRuns(std::vector{wide});
  ASSERT_TRUE(wide_loaded.at(0).isOk());
  for (const TaskInstance& ti : wide_loaded[0]->tasks) EXPECT_EQ(ti.state, S::kQueued) << ti.task_id;
  EXPECT_EQ(history(wide).size(), 6u);
}

// The scheduler's moves and the executors' reports find their instance by its primary key in every
// plan (migration 013). A session caches a function's plan after a few calls; one made while
// task_instances was small could be a sequential scan, and stayed one — reading the whole table per
// call — after a run of thousands of instances arrived (until autovacuum's next ANALYZE).
TEST_F(PgStoreTest, OneTaskWriteReadsOneInstanceWhateverTheTableWasWhenItsPlanWasMade) {
  AdminSession session;  // one session throughout: the plans it caches are what this test is about
  session.query("SET search_path = " + std::string(kSchema));
  // A task's whole way, each step its own call: two scheduler moves (move_task), claim, finish.
  auto runTask = [&](const std::string& run, const std::string& task) {
    for (const auto& [from, to] : {std::pair{"none", "scheduled"}, std::pair{"scheduled", "queued"}}) {
      EXPECT_EQ(session.query("SELECT apply_transitions(" + std::to_string(term_) + ", 'etl', '" + run + "', 0, '{" +
                              task + "}', '{" + from + "}', '{1}', '{" + to + "}', '{\"\"}', '{f}')"),
                "{t}");
    }
    session.query("SELECT report_running('etl', '" + run + "', '" + task + "', 1, 0, 'e-" + task + "')");
    session.query("SELECT report_finished('etl', '" + run + "', '" + task + "', 1, 0, 'e-" + task +
                  "', 'success', 0, '')");
  };
  std::vector<std::string> few;
  for (int i = 0; i < 400; ++i) few.push_back("s" + std::to_string(i));
  startedRun("etl", "small", few);
  for (int i = 0; i < 8; ++i) runTask("small", few[i]);

  std::vector<std::string> many;
  for (int i = 0; i < 3000; ++i) many.push_back("b" + std::to_string(i));
  const RunKey big = startedRun("etl", "big", many);
  const std::string read_sql = taskInstancesCounterSql("seq_tup_read");
  session.query("BEGIN");
  const std::string before = session.query(read_sql);
  for (int i = 0; i < 10; ++i) runTask("big", many[i]);
  const std::string after = session.query(read_sql);
  session.query("COMMIT");
  EXPECT_EQ(std::stoll(after) - std::stoll(before), 0) << "rows the 40 calls read by scanning the table";
  auto loaded = store().loadRuns(std::vector{big});
  ASSERT_TRUE(loaded.at(0).isOk());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(loaded[0]->tasks.at(i).state, S::kSuccess) << many[i];
  EXPECT_EQ(loaded[0]->tasks.at(10).state, S::kNone);
}

// create_run's check for a held logical date reaches the run by runs_by_dag_logical in every plan
// (migration 018). A plan cached while the DAG had few runs walked them all along (dag_id, run_id)'s
// unique index, and kept doing so as a backfill added thousands: each create read every run before it.
TEST_F(PgStoreTest, ARunsHeldDateCheckFetchesOneRunWhateverTheTableWasWhenItsPlanWasMade) {
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("etl")}).isOk());
  AdminSession session;  // one session throughout: the plans it caches are what this test is about
  session.query("SET search_path = " + std::string(kSchema));
  auto create = [&](int hour) {
    session.query("SELECT create_run(NULL, 'etl', 'backfill__" + std::to_string(hour) + "', 0, 'backfill', " +
                  std::to_string(static_cast<long long>(hour) * 3'600'000'000LL) + ", '', 0, 'default')");
  };
  for (int hour = 0; hour < 8; ++hour) create(hour);

  std::vector<NewRun> many;
  for (int hour = 8; hour < 2008; ++hour) {
    many.push_back(NewRun{{"etl", "backfill__" + std::to_string(hour)}, 0, RunTrigger::kBackfill,
                          Timestamp{} + std::chrono::hours(hour), "", at(0)});
  }
  // One call: the store writes it 100 runs per transaction, as `dags backfill` sends them.
  for (const Status& s : store().createRuns(std::nullopt, many)) ASSERT_TRUE(s.isOk()) << s.toString();

  // Rows reached through an index (the bad plan fetched every run of the DAG to test its date).
  const std::string read_sql = "SELECT coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables WHERE "
                               "schemaname = '" + std::string(kSchema) + "' AND relname = 'runs'";
  session.query("BEGIN");
  const std::string before = session.query(read_sql);
  for (int hour = 2008; hour < 2018; ++hour) create(hour);
  const std::string after = session.query(read_sql);
  session.query("COMMIT");
  EXPECT_LT(std::stoll(after) - std::stoll(before), 100) << "runs 10 creates fetched among 2,008 runs of the DAG";
  EXPECT_EQ(store()
                .createRun(std::nullopt, NewRun{{"etl", "backfill__again"}, 0, RunTrigger::kBackfill,
                                                Timestamp{} + std::chrono::hours(2017), "", at(0)})
                .code(),
            StatusCode::kAlreadyExists)
      << "the date the last create took is held";
}

// load_runs sends a row per run and a row per instance, in no order (the run's fields are not repeated on
// its instances' rows); the plugin puts each instance under its own run, in the order the run was
// materialized, whatever the keys' order, the runs' sizes and the runs that have no instance or none
// at all.
TEST_F(PgStoreTest, LoadRunsPutsEachInstanceUnderItsRunInMaterializationOrder) {
  const RunKey small = startedRun("etl", "small", {"z", "a"});
  std::vector<std::string> ids;
  for (int i = 12; i >= 0; --i) ids.push_back("t" + std::to_string(i));  // t12, t11, …, t0: not sorted either way
  const RunKey wide = startedRun("etl", "wide", ids, /*max_tries=*/3);
  const RunKey waiting{"etl", "waiting"};  // queued, not materialized: no instance
  ASSERT_TRUE(
      store().createRun(std::nullopt, NewRun{waiting, 1, RunTrigger::kManual, at(4), R"({"x":1})", at(4)}).isOk());
  ASSERT_TRUE(apply(wide, "t3", S::kNone, 1, S::kScheduled, at(7)));

  const RunKey ghost{"etl", "ghost"};
  auto loaded = store().loadRuns(std::vector{wide, ghost, waiting, small, wide});
  ASSERT_EQ(loaded.size(), 5u);
  for (std::size_t i : {0u, 4u}) {
    ASSERT_TRUE(loaded[i].isOk()) << loaded[i].status().toString();
    const RunRecord& r = *loaded[i];
    EXPECT_EQ(r.key, wide);
    ASSERT_EQ(r.tasks.size(), ids.size());
    for (std::size_t j = 0; j < ids.size(); ++j) {
      EXPECT_EQ(r.tasks[j].task_id, ids[j]) << j;
      EXPECT_EQ(r.tasks[j].max_tries, 3) << ids[j];
      EXPECT_EQ(r.tasks[j].state, ids[j] == "t3" ? S::kScheduled : S::kNone) << ids[j];
    }
    EXPECT_EQ(r.tasks[9].scheduled_at, at(7)) << "t3's own stamp";
  }
  EXPECT_EQ(loaded[1].status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(loaded[2].isOk()) << loaded[2].status().toString();
  EXPECT_EQ(loaded[2]->state, R::kQueued);
  EXPECT_EQ(loaded[2]->queued_at, at(4));
  EXPECT_EQ(loaded[2]->conf_json, R"({"x":1})");
  EXPECT_TRUE(loaded[2]->tasks.empty());
  ASSERT_TRUE(loaded[3].isOk()) << loaded[3].status().toString();
  EXPECT_TRUE(loaded[3]->conf_json.empty());
  EXPECT_EQ(loaded[3]->state, R::kRunning);
  ASSERT_EQ(loaded[3]->tasks.size(), 2u);
  EXPECT_EQ(loaded[3]->tasks[0].task_id, "z");
  EXPECT_EQ(loaded[3]->tasks[1].task_id, "a");
  EXPECT_EQ(loaded[3]->uid, std::stoll(runUid(small)));
  EXPECT_EQ(loaded[0]->uid, std::stoll(runUid(wide)));
}

// load_task_instances answers rows in no particular order and the plugin matches them by id: an id
// asked twice gets its instance twice, each in its place, with the claim the fast-path reports
// (migrations/005_fast_reports.sql) wrote.
TEST_F(PgStoreTest, LoadTaskInstancesMatchesRowsByIdWhateverTheOrderAndRepeats) {
  const RunKey key = startedRun("etl", "r1", {"a", "b", "c"});
  EXPECT_TRUE(apply(key, "b", S::kNone, 1, S::kScheduled, at(1)));
  EXPECT_TRUE(apply(key, "b", S::kScheduled, 1, S::kQueued, at(2)));
  const ExecutionRef b1{AttemptRef{key, "b", 1}, "host-a/101/e1"};
  ASSERT_TRUE(store().reportRunning(b1, at(3)).isOk());
  ASSERT_TRUE(store().reportRunning(b1, at(4)).isOk()) << "the same execution's claim again changes nothing";
  EXPECT_EQ(store().reportRunning(ExecutionRef{AttemptRef{key, "b", 1}, "host-b/9/e2"}, at(4)).code(),
            StatusCode::kConflict);
  EXPECT_EQ(store().reportFinished(ExecutionRef{AttemptRef{key, "b", 1}, "host-b/9/e2"}, TaskOutcome{true, 0, ""},
                                   at(5))
                .code(),
            StatusCode::kConflict)
      << "only the claiming execution finishes";

  auto got = store().loadTaskInstances(key, std::vector<std::string>{"c", "b", "ghost", "b", "a"});
  ASSERT_EQ(got.size(), 5u);
  ASSERT_TRUE(got[0].isOk() && got[1].isOk() && got[3].isOk() && got[4].isOk());
  EXPECT_EQ(got[0]->task_id, "c");
  EXPECT_EQ(got[0]->state, S::kNone);
  EXPECT_EQ(got[1]->task_id, "b");
  EXPECT_EQ(got[1]->state, S::kRunning);
  EXPECT_EQ(got[1]->execution_id, "host-a/101/e1");
  EXPECT_EQ(got[1]->started_at, at(3));
  EXPECT_EQ(got[2].status().code(), StatusCode::kNotFound);
  EXPECT_EQ(got[3]->task_id, "b");
  EXPECT_EQ(got[3]->state, S::kRunning);
  EXPECT_EQ(got[4]->task_id, "a");

  ASSERT_TRUE(store().reportFinished(b1, TaskOutcome{true, 0, "done"}, at(6)).isOk());
  got = store().loadTaskInstances(key, std::vector<std::string>{"b"});
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].isOk());
  EXPECT_EQ(got[0]->state, S::kSuccess);
  EXPECT_EQ(got[0]->ended_at, at(6));
  EXPECT_EQ(got[0]->exit_code, 0);
  EXPECT_EQ(got[0]->note, "done");
  EXPECT_EQ(got[0]->started_at, at(3)) << "the repeated claim stamped nothing";
  EXPECT_THAT(history(key), ::testing::ElementsAre("b 1 none->scheduled scheduler", "b 1 scheduled->queued scheduler",
                                                   "b 1 queued->running executor", "b 1 running->success executor"));
}

// report_batch (migrations/011_report_batches.sql), the plugin's write of several executor reports in
// one transaction: each report is its own compare-and-set, answered in its own row in the order given; a
// refused one undoes only its own writes and the rest commit, written in the order of their instances.
TEST_F(PgStoreTest, ReportsWrittenTogetherAreEachAcceptedOrRefusedOnTheirOwn) {
  const RunKey key = startedRun("etl", "r1", {"a", "b", "c"});
  for (const char* t : {"a", "b", "c"}) {
    EXPECT_TRUE(apply(key, t, S::kNone, 1, S::kScheduled, at(1)));
    EXPECT_TRUE(apply(key, t, S::kScheduled, 1, S::kQueued, at(2)));
  }
  // a: claimed, then finished in the same batch; b: a stale try's claim; c: claimed; a again: finished
  // by an execution that never claimed it.
  const auto answers = adminColumn(
      std::string("SET search_path TO ") + kSchema + "; SELECT coalesce(refused_sqlstate || ' ' || refused_message, "
      "'accepted') FROM report_batch('{f,f,f,t,t}', '{etl,etl,etl,etl,etl}', '{r1,r1,r1,r1,r1}', '{a,b,c,a,a}', "
      "'{1,2,1,1,1}', '{" + atMicros(3) + "," + atMicros(3) + "," + atMicros(3) + "," + atMicros(4) + "," +
      atMicros(5) + "}', "
      "'{h/1/a,h/1/b,h/1/c,h/1/a,h/2/x}', '{\"\",\"\",\"\",success,failed}', '{NULL,NULL,NULL,0,1}', "
      "'{\"\",\"\",\"\",done,\"\"}')");
  ASSERT_EQ(answers.size(), 5u);
  EXPECT_EQ(answers[0], "accepted");
  EXPECT_THAT(answers[1], HasSubstr("LF003 attempt 2 is not current"));
  EXPECT_EQ(answers[2], "accepted");
  EXPECT_EQ(answers[3], "accepted");
  EXPECT_THAT(answers[4], HasSubstr("LF003"));
  EXPECT_THAT(history(key), ::testing::ElementsAre(
                                "a 1 none->scheduled scheduler", "a 1 scheduled->queued scheduler",
                                "b 1 none->scheduled scheduler", "b 1 scheduled->queued scheduler",
                                "c 1 none->scheduled scheduler", "c 1 scheduled->queued scheduler",
                                "a 1 queued->running executor", "a 1 running->success executor",
                                "c 1 queued->running executor"));
  auto got = store().loadTaskInstances(key, std::vector<std::string>{"a", "b", "c"});
  ASSERT_EQ(got.size(), 3u);
  ASSERT_TRUE(got[0].isOk() && got[1].isOk() && got[2].isOk());
  EXPECT_EQ(got[0]->state, S::kSuccess);
  EXPECT_EQ(got[0]->note, "done");
  EXPECT_EQ(got[0]->exit_code, 0);
  EXPECT_EQ(got[0]->ended_at, at(4));
  EXPECT_EQ(got[1]->state, S::kQueued);
  EXPECT_EQ(got[2]->state, S::kRunning);
  EXPECT_EQ(got[2]->execution_id, "h/1/c");
}

// Of two reports of one instance and kind in a batch, the first given is written and the others are
// answered as repeats: the same execution's claim again is accepted, another execution's refused.
TEST_F(PgStoreTest, InABatchTheFirstReportOfAnInstanceIsWrittenAndTheOthersAreRepeats) {
  const RunKey key = startedRun("etl", "r1", {"a", "b"});
  for (const char* t : {"a", "b"}) {
    EXPECT_TRUE(apply(key, t, S::kNone, 1, S::kScheduled, at(1)));
    EXPECT_TRUE(apply(key, t, S::kScheduled, 1, S::kQueued, at(2)));
  }
  const std::string t3 = atMicros(3);
  const auto answers = adminColumn(
      std::string("SET search_path TO ") + kSchema + "; SELECT coalesce(refused_sqlstate || ' ' || refused_message, "
      "'accepted') FROM report_batch('{f,f,f,f,t,t}', '{etl,etl,etl,etl,etl,etl}', '{r1,r1,r1,r1,r1,r1}', "
      "'{a,a,a,b,b,b}', '{1,1,1,1,1,1}', '{" + t3 + "," + t3 + "," + t3 + "," + t3 + "," + t3 + "," + t3 + "}', "
      "'{h/1/a,h/1/a,h/2/a,h/1/b,h/1/b,h/1/b}', '{\"\",\"\",\"\",\"\",success,failed}', '{NULL,NULL,NULL,NULL,0,1}', "
      "'{\"\",\"\",\"\",\"\",\"\",\"\"}')");
  ASSERT_EQ(answers.size(), 6u);
  EXPECT_EQ(answers[0], "accepted");
  EXPECT_EQ(answers[1], "accepted") << "the same execution's claim again";
  EXPECT_THAT(answers[2], HasSubstr("LF003 attempt 1 is claimed by execution h/1/a, not h/2/a"));
  EXPECT_EQ(answers[3], "accepted");
  EXPECT_EQ(answers[4], "accepted");
  EXPECT_THAT(answers[5], HasSubstr("LF003")) << "finished already: the second finished report is refused";
  auto got = store().loadTaskInstances(key, std::vector<std::string>{"a", "b"});
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(got[0].isOk() && got[1].isOk());
  EXPECT_EQ(got[0]->state, S::kRunning);
  EXPECT_EQ(got[0]->execution_id, "h/1/a");
  EXPECT_EQ(got[1]->state, S::kSuccess);
  EXPECT_EQ(got[1]->exit_code, 0);
  EXPECT_THAT(history(key), ::testing::ElementsAre(
                                "a 1 none->scheduled scheduler", "a 1 scheduled->queued scheduler",
                                "b 1 none->scheduled scheduler", "b 1 scheduled->queued scheduler",
                                "a 1 queued->running executor", "b 1 queued->running executor",
                                "b 1 running->success executor"));
}

// report_batch finds its instances by their keys in every plan, as the one-report functions do (013): a
// plan cached while task_instances was small must not scan or hash the whole table once a run of
// thousands of instances arrived. (A rewrite of report_batch as one UPDATE over all its reports did:
// its cached plan read the big run's whole primary key for every batch.)
TEST_F(PgStoreTest, AReportBatchReadsItsInstancesByKeyWhateverTheTableWasWhenItsPlanWasMade) {
  AdminSession session;  // one session throughout: the plans it caches are what this test is about
  session.query("SET search_path = " + std::string(kSchema));
  // Two tasks queued, claimed together, finished together: two batches.
  auto runPair = [&](const std::string& run, const std::string& x, const std::string& y) {
    for (const auto& [from, to] : {std::pair{"none", "scheduled"}, std::pair{"scheduled", "queued"}}) {
      EXPECT_EQ(session.query("SELECT apply_transitions(" + std::to_string(term_) + ", 'etl', '" + run + "', 0, '{" +
                              x + "," + y + "}', '{" + from + "," + from + "}', '{1,1}', '{" + to + "," + to +
                              "}', '{\"\",\"\"}', '{f,f}')"),
                "{t,t}");
    }
    const std::string common = "'{etl,etl}', '{" + run + "," + run + "}', '{" + x + "," + y + "}', '{1,1}', "
                               "'{0,0}', '{e-" + x + ",e-" + y + "}'";
    EXPECT_EQ(session.query("SELECT count(*) FROM report_batch('{f,f}', " + common +
                            ", '{\"\",\"\"}', '{NULL,NULL}', '{\"\",\"\"}') WHERE refused_sqlstate IS NULL"),
              "2");
    EXPECT_EQ(session.query("SELECT count(*) FROM report_batch('{t,t}', " + common +
                            ", '{success,success}', '{0,0}', '{\"\",\"\"}') WHERE refused_sqlstate IS NULL"),
              "2");
  };
  std::vector<std::string> few;
  for (int i = 0; i < 400; ++i) few.push_back("s" + std::to_string(i));
  startedRun("etl", "small", few);
  for (int i = 0; i < 16; i += 2) runPair("small", few[i], few[i + 1]);

  std::vector<std::string> many;
  for (int i = 0; i < 3000; ++i) many.push_back("b" + std::to_string(i));
  const RunKey big = startedRun("etl", "big", many);
  const std::string scanned_sql = taskInstancesCounterSql("seq_tup_read");
  const std::string fetched_sql = taskInstancesCounterSql("idx_tup_fetch");
  session.query("BEGIN");
  const std::string scanned_before = session.query(scanned_sql);
  const std::string fetched_before = session.query(fetched_sql);
  for (int i = 0; i < 20; i += 2) runPair("big", many[i], many[i + 1]);
  const std::string scanned = session.query(scanned_sql);
  const std::string fetched = session.query(fetched_sql);
  session.query("COMMIT");
  EXPECT_EQ(std::stoll(scanned) - std::stoll(scanned_before), 0) << "rows the 20 batches read by scanning the table";
  EXPECT_LE(std::stoll(fetched) - std::stoll(fetched_before), 200)
      << "rows fetched through an index for 20 tasks' moves and reports: a few per task, not the table";
  auto loaded = store().loadRuns(std::vector{big});
  ASSERT_TRUE(loaded.at(0).isOk());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(loaded[0]->tasks.at(i).state, S::kSuccess) << many[i];
  EXPECT_EQ(loaded[0]->tasks.at(20).state, S::kNone);
}

// Many executors reporting at once through one store: their reports are written together (the plugin
// gathers those that arrive while others are being written) and each caller still gets its own answer.
TEST_F(PgStoreTest, ConcurrentReportsEachGetTheirOwnAnswer) {
  constexpr int kTasks = 48;
  std::vector<std::string> tasks;
  for (int i = 0; i < kTasks; ++i) tasks.push_back("t" + std::to_string(i));
  const RunKey key = startedRun("etl", "r1", tasks);
  for (const auto& t : tasks) {
    EXPECT_TRUE(apply(key, t, S::kNone, 1, S::kScheduled, at(1)));
    EXPECT_TRUE(apply(key, t, S::kScheduled, 1, S::kQueued, at(2)));
  }
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  std::vector<Status> claims(kTasks), finishes(kTasks);
  std::vector<std::thread> executors;
  for (int i = 0; i < kTasks; ++i) {
    executors.emplace_back([&, i] {
      {
        std::unique_lock lock(mu);
        ++ready;
        cv.notify_all();
        cv.wait(lock, [&] { return ready == kTasks; });
      }
      // Every third task's claim names a try that is not current: refused, and it finishes nothing.
      const ExecutionRef e{AttemptRef{key, tasks[i], i % 3 == 2 ? 2 : 1}, "host/" + tasks[i]};
      claims[i] = store().reportRunning(e, at(3));
      finishes[i] = store().reportFinished(e, TaskOutcome{i % 2 == 0, i % 2 == 0 ? 0 : 1, ""}, at(4));
    });
  }
  for (auto& t : executors) t.join();
  auto got = store().loadTaskInstances(key, tasks);
  ASSERT_EQ(got.size(), tasks.size());
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(got[i].isOk()) << tasks[i];
    if (i % 3 == 2) {
      EXPECT_EQ(claims[i].code(), StatusCode::kConflict) << tasks[i];
      EXPECT_EQ(finishes[i].code(), StatusCode::kConflict) << tasks[i];
      EXPECT_EQ(got[i]->state, S::kQueued) << tasks[i];
    } else {
      EXPECT_TRUE(claims[i].isOk()) << tasks[i] << ": " << claims[i].toString();
      EXPECT_TRUE(finishes[i].isOk()) << tasks[i] << ": " << finishes[i].toString();
      EXPECT_EQ(got[i]->state, i % 2 == 0 ? S::kSuccess : S::kFailed) << tasks[i];
      EXPECT_EQ(got[i]->execution_id, "host/" + tasks[i]);
    }
  }
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "task_history") + " WHERE source = 'executor'"),
            2 * (kTasks - kTasks / 3));
}

// The move tables every SQL write path checks (migrations/001_schema.sql) mirror the planning core's
// (the plugin may not include core): all 81 task pairs and 16 run pairs agree.
TEST_F(PgStoreTest, TheMoveTablesAreThePlanningCoresTables) {
  const auto task_moves = adminColumn("SELECT from_state || '->' || to_state FROM " + tableOf(kSchema, "task_moves"));
  const std::set<std::string> tasks(task_moves.begin(), task_moves.end());
  for (S from : kAllTaskStates) {
    for (S to : kAllTaskStates) {
      const std::string pair = std::string(toString(from)) + "->" + std::string(toString(to));
      EXPECT_EQ(tasks.count(pair) == 1, planning::canTransition(from, to)) << pair;
    }
  }
  EXPECT_EQ(tasks.size(), 23u) << "the seed's 17 moves and ARCHITECTURE §8.2's 6";
  const auto run_moves = adminColumn("SELECT from_state || '->' || to_state FROM " + tableOf(kSchema, "run_moves"));
  const std::set<std::string> runs(run_moves.begin(), run_moves.end());
  for (auto from : {DagRunState::kQueued, DagRunState::kRunning, DagRunState::kSuccess, DagRunState::kFailed}) {
    for (auto to : {DagRunState::kQueued, DagRunState::kRunning, DagRunState::kSuccess, DagRunState::kFailed}) {
      const std::string pair = std::string(toString(from)) + "->" + std::string(toString(to));
      EXPECT_EQ(runs.count(pair) == 1, planning::canTransitionDagRun(from, to)) << pair;
    }
  }
}

TEST_F(PgStoreTest, DeleteFinishedRunsDeletesOnlyFinishedRunsEndedBeforeTheCutOffWithTheirInstances) {
  // Ended before the cut-off: success and failed (one through the reaper). Ended after it: kept.
  // Never ended (queued, running): kept whatever their age.
  const RunKey old_success = startedRun("etl", "old_success", {"a", "b"});
  ASSERT_TRUE(apply(old_success, "a", S::kNone, 1, S::kScheduled, at(1)));
  ASSERT_TRUE(store().setRunState(term_, old_success, R::kRunning, R::kSuccess, at(10), "").isOk());
  const RunKey old_failed = startedRun("etl", "old_failed", {"a"});
  ASSERT_TRUE(store().reapRun(term_, old_failed, at(20), "orphaned").isOk());
  const RunKey new_success = startedRun("etl", "new_success", {"a"});
  ASSERT_TRUE(store().setRunState(term_, new_success, R::kRunning, R::kSuccess, at(200), "").isOk());
  const RunKey old_running = startedRun("etl", "old_running", {"a"});
  ASSERT_TRUE(apply(old_running, "a", S::kNone, 1, S::kScheduled, at(2)));
  const RunKey old_queued{"etl", "old_queued"};
  ASSERT_TRUE(store().createRun(std::nullopt, NewRun{old_queued, 1, RunTrigger::kManual, kT0, "", kT0}).isOk());
  // Another DAG's old finished run goes too: the cut-off is the only criterion.
  const RunKey other_old = startedRun("other", "old", {"x"});
  ASSERT_TRUE(store().setRunState(term_, other_old, R::kRunning, R::kFailed, at(30), "").isOk());
  const std::string instances = "SELECT count(*) FROM " + tableOf(kSchema, "task_instances");
  const std::string histories = "SELECT count(*) FROM " + tableOf(kSchema, "task_history");
  ASSERT_EQ(countOf(instances), 6);
  const std::string old_success_uid = runUid(old_success);

  auto deleted = store().deleteFinishedRuns(at(100));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  ASSERT_TRUE(deleted->has_value()) << "store-postgres can delete: it must not answer 'unsupported'";
  EXPECT_EQ(**deleted, 3);

  auto loaded = store().loadRuns(std::vector{old_success, old_failed, other_old, new_success, old_running, old_queued});
  ASSERT_EQ(loaded.size(), 6u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(loaded[i].status().code(), StatusCode::kNotFound) << "run " << i << " should be gone";
  }
  for (int i = 3; i < 6; ++i) {
    ASSERT_TRUE(loaded[i].isOk()) << "run " << i << ": " << loaded[i].status().toString();
  }
  EXPECT_EQ(loaded[3]->tasks.size(), 1u);
  EXPECT_EQ(loaded[4]->tasks.size(), 1u);
  EXPECT_EQ(loaded[4]->tasks[0].state, S::kScheduled);
  EXPECT_EQ(countOf(instances), 2) << "the deleted runs' instances went with them";
  EXPECT_EQ(countOf(histories + " WHERE run_uid = " + old_success_uid), 0) << "and their history";
  EXPECT_EQ(countOf(histories), 1) << "old_running's history stays";
  // The deleted runs no longer show anywhere.
  auto listed = store().listRuns(RunFilter{});
  ASSERT_TRUE(listed.isOk());
  EXPECT_EQ(listed->size(), 3u);
  auto found = store().findRuns("old_success");
  ASSERT_TRUE(found.isOk());
  EXPECT_THAT(*found, ::testing::IsEmpty());

  // Again with the same cut-off: nothing left to delete. A run id freed by the deletion can be used
  // again (a new run, not the old one brought back).
  auto again = store().deleteFinishedRuns(at(100));
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ(**again, 0);
  EXPECT_TRUE(store().createRun(std::nullopt, NewRun{old_success, 1, RunTrigger::kManual, at(300), "", at(300)}).isOk());
}

TEST_F(PgStoreTest, DeleteFinishedRunsWithACutOffBeforeEverythingDeletesNothing) {
  const RunKey done = startedRun("etl", "done", {"a"});
  ASSERT_TRUE(store().setRunState(term_, done, R::kRunning, R::kSuccess, at(10), "").isOk());
  auto deleted = store().deleteFinishedRuns(at(10));  // strictly before: ended_at == cut-off stays
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  ASSERT_TRUE(deleted->has_value());
  EXPECT_EQ(**deleted, 0);
  auto loaded = store().loadRuns(std::vector{done});
  EXPECT_TRUE(loaded.at(0).isOk());
}

/// Inserts `n` runs of `dag_id` straight into `schema`'s table, finished (`state`) at `ended`, run ids
/// `<prefix>1`..`<prefix>n`; how many were inserted.
std::int64_t insertFinishedRuns(const std::string& schema, const std::string& dag_id, const std::string& prefix, int n,
                                const std::string& state, Timestamp ended) {
  const auto epoch_s = std::chrono::duration_cast<std::chrono::seconds>(ended.time_since_epoch()).count();
  return countOf("WITH ins AS (INSERT INTO " + tableOf(schema, "runs") +
                 " (dag_id, run_id, dag_version, state, trigger, logical_date, queued_at, started_at, ended_at) "
                 "SELECT '" + dag_id + "', '" + prefix + "' || g, 1, '" + state + "', 'manual', to_timestamp(" +
                 std::to_string(epoch_s) + ") - g * interval '1 minute', to_timestamp(" + std::to_string(epoch_s) +
                 "), to_timestamp(" + std::to_string(epoch_s) + "), to_timestamp(" + std::to_string(epoch_s) +
                 ") FROM generate_series(1, " + std::to_string(n) + ") g RETURNING 1) SELECT count(*) FROM ins");
}

TEST_F(PgStoreTest, CleaningAndDeletingThousandsOfRunsGoInSlicesAndKeepWhatTheyMayNotRemove) {
  // store clean and dags delete remove finished runs 1,000 per statement, each its own transaction
  // (one statement over 100,000 runs outlasts statement_timeout_ms). 2,500 runs ended before the
  // cut-off take three slices; those ended after it and the active ones stay.
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("etl"), dagDef("big")}).isOk());
  const std::string runs = "SELECT count(*) FROM " + tableOf(kSchema, "runs");
  ASSERT_EQ(insertFinishedRuns(kSchema, "etl", "old", 2500, "success", at(10)), 2500);
  ASSERT_EQ(insertFinishedRuns(kSchema, "etl", "new", 10, "failed", at(500)), 10);
  const RunKey active = startedRun("etl", "active", {"a"});
  auto deleted = store().deleteFinishedRuns(at(100));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(deleted->value_or(-1), 2500);
  EXPECT_EQ(countOf(runs + " WHERE dag_id = 'etl'"), 11);

  // A DAG of 2,500 finished runs and one active: refused with every run in place; once the active
  // run is cancelled, removed whole.
  ASSERT_EQ(insertFinishedRuns(kSchema, "big", "r", 2500, "success", at(10)), 2500);
  const RunKey big_active = startedRun("big", "active", {"a"});
  EXPECT_EQ(store().deleteDag("big").code(), StatusCode::kConflict);
  EXPECT_EQ(countOf(runs + " WHERE dag_id = 'big'"), 2501);
  ASSERT_TRUE(store().cancelRun(CancelRunRequest{big_active, "cancelled", at(600)}).isOk());
  ASSERT_TRUE(store().deleteDag("big").isOk());
  EXPECT_EQ(countOf(runs + " WHERE dag_id = 'big'"), 0);
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "dags") + " WHERE dag_id = 'big'"), 0);
  EXPECT_EQ(countOf(runs + " WHERE dag_id = 'etl'"), 11);
  EXPECT_EQ(store().deleteDag("big").code(), StatusCode::kNotFound);
  auto left = store().loadRuns(std::vector{active});
  EXPECT_TRUE(left.at(0).isOk());
}

TEST_F(PgStoreTest, CleaningAndDeletingReachEachSliceByItsRunsKeysWhateverTheStatisticsSay) {
  // The runs table's statistics are from before its runs finished (autovacuum has not analyzed it
  // since), so the planner believes no run is finished. Each slice of 1,000 runs must still be deleted
  // through the primary key, reading those 1,000: reached through the index of finished runs, as it
  // was, each slice read every finished run left (store clean of 100,000 runs: ~17 s instead of ~3).
  constexpr std::int64_t kRuns = 6000;
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("etl"), dagDef("big")}).isOk());
  const std::string runs = tableOf(kSchema, "runs");
  adminQuery("ALTER TABLE " + runs + " SET (autovacuum_enabled = false)");
  ASSERT_EQ(insertFinishedRuns(kSchema, "etl", "old", kRuns, "running", at(10)), kRuns);
  ASSERT_EQ(insertFinishedRuns(kSchema, "big", "r", kRuns, "running", at(10)), kRuns);
  adminQuery("ANALYZE " + runs);
  adminQuery("UPDATE " + runs + " SET state = 'success'");
  const RunKey active = startedRun("etl", "active", {"a"});

  std::int64_t before = runKeyReads();
  auto deleted = store().deleteFinishedRuns(at(100));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(deleted->value_or(-1), 2 * kRuns);
  EXPECT_GE(runKeyReads(before + 2 * kRuns) - before, 2 * kRuns) << "runs cleaned through their primary key";

  ASSERT_EQ(insertFinishedRuns(kSchema, "big", "again", kRuns, "success", at(10)), kRuns);
  before = runKeyReads();
  ASSERT_TRUE(store().deleteDag("big").isOk());
  EXPECT_GE(runKeyReads(before + kRuns) - before, kRuns) << "runs of the deleted DAG removed through their primary key";
  EXPECT_EQ(countOf("SELECT count(*) FROM " + runs), 1);
  EXPECT_TRUE(store().loadRuns(std::vector{active}).at(0).isOk());
}

// --- SDK 3.0: a person's commands, run uids, tenants (migrations/004_sdk3_operations.sql) ------------

TEST_F(PgStoreTest, RunUidsComeFromASequenceThatDeletingADagNeverResets) {
  const RunKey first = startedRun("etl", "r1", {"a"});
  const RunKey second = startedRun("etl", "r2", {"a"});
  auto loaded = store().loadRuns(std::vector{first, second});
  ASSERT_TRUE(loaded.at(0).isOk() && loaded.at(1).isOk());
  const std::int64_t uid1 = loaded[0]->uid;
  const std::int64_t uid2 = loaded[1]->uid;
  EXPECT_GT(uid1, 0);
  EXPECT_GT(uid2, uid1);
  EXPECT_EQ(std::to_string(uid1), runUid(first)) << "RunRecord::uid is the runs row's uid";
  ASSERT_TRUE(apply(first, "a", S::kNone, 1, S::kScheduled, at(1)));

  // Active runs keep the DAG: nothing is removed.
  EXPECT_EQ(store().deleteDag("etl").code(), StatusCode::kConflict);
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "runs") + " WHERE dag_id = 'etl'"), 2);
  for (const RunKey& k : {first, second}) {
    auto cancelled = store().cancelRun(CancelRunRequest{k, "cancelled by alice@host1", at(2)});
    ASSERT_TRUE(cancelled.isOk()) << cancelled.status().toString();
  }
  ASSERT_TRUE(store().deleteDag("etl").isOk());
  EXPECT_EQ(store().deleteDag("etl").code(), StatusCode::kNotFound);
  for (const char* table : {"dags", "dag_versions", "runs"}) {
    EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, table) + " WHERE dag_id = 'etl'"), 0) << table;
  }
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "task_instances")), 0);
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "task_history")), 0);

  // The same DAG and run id again: a new run with a uid never issued before.
  const RunKey again = startedRun("etl", "r1", {"a"});
  auto reloaded = store().loadRuns(std::vector{again});
  ASSERT_TRUE(reloaded.at(0).isOk()) << reloaded[0].status().toString();
  EXPECT_GT(reloaded[0]->uid, uid2);
}

TEST_F(PgStoreTest, APersonsCommandsRecordOperatorHistoryRowsOnTheTryTheyMovedFrom) {
  const RunKey key = startedRun("etl", "r1", {"a", "b", "c"}, /*max_tries=*/1);
  ASSERT_TRUE(apply(key, "a", S::kNone, 1, S::kScheduled, at(1)));
  ASSERT_TRUE(apply(key, "a", S::kScheduled, 1, S::kQueued, at(2)));
  const ExecutionRef a1{AttemptRef{key, "a", 1}, "host-a/1/e1"};
  ASSERT_TRUE(store().reportRunning(a1, at(3)).isOk());
  ASSERT_TRUE(store().reportFinished(a1, TaskOutcome{false, 1, "exit code 1"}, at(4)).isOk());

  auto marked = store().markTask(MarkTaskRequest{key, "b", S::kSkipped, "marked by bob", at(5)});
  ASSERT_TRUE(marked.isOk()) << marked.status().toString();
  auto cleared = store().clearTasks(ClearRequest{key, {{"a", 2}, {"b", 0}}, false, "cleared by alice", at(6)});
  ASSERT_TRUE(cleared.isOk()) << cleared.status().toString();
  EXPECT_THAT(cleared->changed_tasks, ::testing::ElementsAre("a", "b"));
  auto loaded = store().loadRuns(std::vector{key});
  ASSERT_TRUE(loaded.at(0).isOk());
  const TaskInstance& a = loaded[0]->tasks.at(0);
  EXPECT_EQ(a.state, S::kNone);
  EXPECT_EQ(a.try_number, 2) << "a started: a new attempt";
  EXPECT_EQ(a.max_tries, 4) << "old try 1 + retries 2 + 1";
  EXPECT_TRUE(a.execution_id.empty());
  EXPECT_FALSE(a.started_at.has_value());
  const TaskInstance& b = loaded[0]->tasks.at(1);
  EXPECT_EQ(b.try_number, 1) << "b never started: it keeps its try";
  auto cancelled = store().cancelRun(CancelRunRequest{key, "cancelled by alice", at(7)});
  ASSERT_TRUE(cancelled.isOk()) << cancelled.status().toString();
  EXPECT_EQ(cancelled->run_state, R::kFailed);
  EXPECT_THAT(cancelled->changed_tasks, ::testing::ElementsAre("a", "b", "c"));

  EXPECT_THAT(history(key), ::testing::ElementsAre("a 1 none->scheduled scheduler",    //
                                                   "a 1 scheduled->queued scheduler",  //
                                                   "a 1 queued->running executor",     //
                                                   "a 1 running->failed executor",     //
                                                   "b 1 none->skipped operator",       //
                                                   "a 1 failed->none operator",        //
                                                   "b 1 skipped->none operator",       //
                                                   "a 2 none->skipped operator",       //
                                                   "b 1 none->skipped operator",       //
                                                   "c 1 none->skipped operator"));
  EXPECT_EQ(countOf("SELECT count(*) FROM " + tableOf(kSchema, "task_history") + " WHERE source = 'operator' AND "
                    "term IS NULL AND note LIKE '%by %'"),
            6);
}

// A person's command and an executor's report on the same attempt, at once, many times: each either
// lands before the command (and the command sees it) or is refused after it; nothing deadlocks and
// the run ends as the command left it.
TEST_F(PgStoreTest, ACancelRacingAnExecutorsReportsLeavesOneConsistentOutcome) {
  constexpr int kRuns = 20;
  std::vector<RunKey> keys;
  for (int i = 0; i < kRuns; ++i) {
    const RunKey key = startedRun("etl", "r" + std::to_string(i), {"a"});
    EXPECT_TRUE(apply(key, "a", S::kNone, 1, S::kScheduled, at(1)));
    EXPECT_TRUE(apply(key, "a", S::kScheduled, 1, S::kQueued, at(2)));
    keys.push_back(key);
  }
  auto other = openStore(settingsFor(kSchema));
  std::thread reporter([&] {
    for (const RunKey& key : keys) {
      const ExecutionRef e{AttemptRef{key, "a", 1}, "host/1/e"};
      const Status running = other->reportRunning(e, at(3));
      if (running.isOk()) (void)other->reportFinished(e, TaskOutcome{true, 0, ""}, at(4));
    }
  });
  for (const RunKey& key : keys) {
    auto c = store().cancelRun(CancelRunRequest{key, "cancelled by test", at(3)});
    EXPECT_TRUE(c.isOk() || c.status().code() == StatusCode::kConflict) << c.status().toString();
  }
  reporter.join();
  for (auto& loaded : store().loadRuns(keys)) {
    ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
    EXPECT_EQ(loaded->state, R::kFailed);
    const TaskInstance& a = loaded->tasks.at(0);
    EXPECT_TRUE(a.state == S::kFailed || a.state == S::kSuccess) << toString(a.state);
    if (a.state == S::kFailed) {
      EXPECT_EQ(a.note, "cancelled by test");
    }
  }
}

// The scheduler's batch (instances in its own order) racing a person's clear (instances in the run's
// order) on one run: both take the run's row first, so neither deadlocks (which would fail one of
// them as unavailable after the server's deadlock_timeout).
TEST_F(PgStoreTest, AClearRacingTheSchedulersBatchOnTheSameRunNeverDeadlocks) {
  const RunKey key = startedRun("etl", "r1", {"a", "b", "c", "d"});
  auto other = openStore(settingsFor(kSchema));
  constexpr int kRounds = 40;
  std::atomic<int> unavailable{0};
  std::thread scheduler([&] {
    for (int i = 0; i < kRounds; ++i) {
      std::vector<TaskTransitionWrite> writes;
      for (const char* t : {"d", "c", "b", "a"}) writes.push_back(TaskTransitionWrite{t, S::kNone, 1, S::kScheduled, "", false});
      auto r = other->applyTransitions(term_, key, writes, at(1));
      if (!r.isOk()) ++unavailable;
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    auto c = store().clearTasks(ClearRequest{key, {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}}, false, "cleared", at(2)});
    if (!c.isOk()) {
      ++unavailable;
      ADD_FAILURE() << c.status().toString();
    }
  }
  scheduler.join();
  EXPECT_EQ(unavailable.load(), 0);
}

// A database migrated by the plugin before SDK 3.0 (migrations 001-003) is upgraded in place: its runs
// keep their uids and read as tenant "default", and new runs continue the same uid sequence.
TEST(PgMigrations, ASchemaAtMigration3IsUpgradedInPlaceKeepingUidsWithTenantDefault) {
  LEOFLOW_REQUIRE_TEST_PG();
  const std::string schema = "lf_store_upgrade";
  dropSchema(schema);
  const std::string s = "\"" + schema + "\"";
  adminQuery("CREATE SCHEMA " + s + "; CREATE TABLE " + s +
             ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
             "applied_at timestamptz NOT NULL DEFAULT now())");
  for (const auto& m : sp::kMigrations) {
    if (m.version > 3) break;
    std::string sql(m.sql);
    const std::string placeholder = "@CHANNEL@";
    for (std::size_t pos; (pos = sql.find(placeholder)) != std::string::npos;) {
      sql.replace(pos, placeholder.size(), "'" + schema + "_changes'");
    }
    adminQuery("SET search_path TO " + s + "; " + sql + "; INSERT INTO schema_migrations (version, name) VALUES (" +
               std::to_string(m.version) + ", '" + std::string(m.name) + "')");
  }
  // Data written by the 003 functions: a DAG and two runs.
  adminQuery("SET search_path TO " + s +
             "; SELECT * FROM sync_dags('{etl}', '{\"{}\"}', '{\"@daily\"}', '{UTC}', '{NULL}', '{NULL}', '{f}', '{16}');"
             "SELECT create_run(NULL, 'etl', 'old1', 0, 'scheduled', 1000000, '', 1000000);"
             "SELECT create_run(NULL, 'etl', 'old2', 0, 'manual', 2000000, '', 2000000)");
  const std::string old_uid = adminQuery("SELECT uid FROM " + s + ".runs WHERE run_id = 'old2'");

  auto store = openStore(settingsFor(schema));
  EXPECT_EQ(countOf("SELECT max(version) FROM " + s + ".schema_migrations"),
            static_cast<std::int64_t>(sp::kMigrations.size()));
  auto loaded = store->loadRuns(std::vector{RunKey{"etl", "old1"}, RunKey{"etl", "old2"}});
  ASSERT_TRUE(loaded.at(0).isOk() && loaded.at(1).isOk()) << loaded[0].status().toString();
  EXPECT_EQ(std::to_string(loaded[1]->uid), old_uid);
  EXPECT_GT(loaded[1]->uid, loaded[0]->uid);
  EXPECT_EQ(loaded[0]->tenant, "default");
  EXPECT_EQ(loaded[0]->trigger, RunTrigger::kScheduled);
  auto dags = store->listDags();
  ASSERT_TRUE(dags.isOk());
  ASSERT_EQ(dags->size(), 1u);
  EXPECT_EQ(dags->at(0).tenant, "default");

  // New runs continue the sequence and keep their tenant; a scheduled run on a held date is refused.
  NewRun fresh{RunKey{"etl", "new"}, 1, RunTrigger::kManual, at(0), "", at(0)};
  fresh.tenant = "team-a";
  ASSERT_TRUE(store->createRun(std::nullopt, fresh).isOk());
  NewRun held{RunKey{"etl", "scheduled__held"}, 1, RunTrigger::kScheduled, at(0), "", at(0)};
  EXPECT_EQ(store->createRun(std::nullopt, held).code(), StatusCode::kAlreadyExists);
  RunFilter by_tenant;
  by_tenant.tenant = "team-a";
  auto listed = store->listRuns(by_tenant);
  ASSERT_TRUE(listed.isOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->at(0).key.run_id, "new");
  EXPECT_GT(listed->at(0).uid, loaded[1]->uid);
  EXPECT_EQ(listed->at(0).tenant, "team-a");
  // The trigger column takes backfill runs now.
  adminQuery("INSERT INTO " + s + ".runs (dag_id, run_id, dag_version, state, trigger, logical_date) "
             "VALUES ('etl', 'backfill__x', 1, 'success', 'backfill', now())");
}

// --- Time limits ----------------------------------------------------------------------------------------

TEST(PgTimeouts, AStatementBlockedPastStatementTimeoutIsUnavailableAndTheStoreCarriesOn) {
  LEOFLOW_REQUIRE_TEST_PG();
  const std::string schema = "lf_store_timeout";
  dropSchema(schema);
  Settings s = settingsFor(schema);
  s.statement_timeout_ms = 300;
  auto store = openStore(s);
  ASSERT_TRUE(store->syncDags(std::vector{dagDef("etl")}).isOk());
  {
    // Another session holds the term row's table: a claim waits for it, until statement_timeout.
    AdminSession blocker;
    blocker.query("BEGIN; LOCK TABLE " + tableOf(schema, "term") + " IN ACCESS EXCLUSIVE MODE");
    const auto start = SteadyClock::now();
    auto claimed = store->claimTerm("replica-a");
    const long long took = millisSince(start);
    EXPECT_EQ(claimed.status().code(), StatusCode::kUnavailable) << claimed.status().toString();
    EXPECT_GE(took, 250);
    EXPECT_LT(took, 1500) << "statement_timeout_ms is 300";
    std::printf("[ figures  ] a claim blocked by a lock failed after %lld ms (statement_timeout_ms=300): %s\n", took,
                claimed.status().toString().c_str());
    // What the lock does not cover goes on meanwhile.
    EXPECT_TRUE(store->listDags().isOk());
    blocker.query("ROLLBACK");
  }
  auto claimed = store->claimTerm("replica-a");
  ASSERT_TRUE(claimed.isOk()) << claimed.status().toString();
  EXPECT_EQ(*claimed, 1) << "the timed-out claim changed nothing";
}

// --- Installations are independent ----------------------------------------------------------------------

class Collector final : public ChangeSink {
 public:
  void onChange(const Change& change) override {
    std::lock_guard lock(mu_);
    if (change.kind == Change::Kind::kDag) dags_.push_back(change.dag_id);
    cv_.notify_all();
  }
  void onResync() override {}
  bool waitDag(const std::string& id, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return std::find(dags_.begin(), dags_.end(), id) != dags_.end(); });
  }
  std::vector<std::string> dags() {
    std::lock_guard lock(mu_);
    return dags_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> dags_;
};

TEST(PgSchemas, TwoSchemasAreTwoIndependentInstallations) {
  LEOFLOW_REQUIRE_TEST_PG();
  dropSchema("lf_store_iso_a");
  dropSchema("lf_store_iso_b");
  auto a = openStore(settingsFor("lf_store_iso_a"));
  auto b = openStore(settingsFor("lf_store_iso_b"));
  Collector heard_a;
  Collector heard_b;
  ASSERT_TRUE(a->subscribe(heard_a).isOk());
  ASSERT_TRUE(b->subscribe(heard_b).isOk());

  ASSERT_TRUE(a->syncDags(std::vector{dagDef("only_in_a")}).isOk());
  ASSERT_TRUE(b->syncDags(std::vector{dagDef("only_in_b")}).isOk());
  EXPECT_EQ(*a->claimTerm("x"), 1);
  EXPECT_EQ(*a->claimTerm("x"), 2);
  EXPECT_EQ(*b->claimTerm("y"), 1) << "each installation has its own term";
  EXPECT_EQ(b->getDag("only_in_a", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(a->getDag("only_in_b", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(heard_a.waitDag("only_in_a", 5s));
  EXPECT_TRUE(heard_b.waitDag("only_in_b", 5s));
  std::this_thread::sleep_for(200ms);
  EXPECT_THAT(heard_a.dags(), Not(::testing::Contains("only_in_b"))) << "each installation has its own channel";
  EXPECT_THAT(heard_b.dags(), Not(::testing::Contains("only_in_a")));
  a->unsubscribe();
  b->unsubscribe();
}

// --- Leadership details -------------------------------------------------------------------------------

TEST(PgLeader, TheCheckIntervalIsPollMs) {
  LEOFLOW_REQUIRE_TEST_PG();
  Settings s = settingsFor("lf_store_leader", 7'300'000'003);
  s.poll_ms = 123;
  s.lease_ms = 1000;
  auto leader = openLeader(s, "replica-a");
  EXPECT_EQ(leader->checkInterval(), 123ms);
}

TEST(PgLeader, DistinctLockIdsAreDistinctElections) {
  LEOFLOW_REQUIRE_TEST_PG();
  auto one = openLeader(settingsFor("lf_store_leader", 7'300'000'004), "replica-a");
  auto two = openLeader(settingsFor("lf_store_leader", 7'300'000'005), "replica-b");
  auto three = openLeader(settingsFor("lf_store_leader", 7'300'000'004), "replica-c");
  auto r1 = one->tryAcquire();
  auto r2 = two->tryAcquire();
  auto r3 = three->tryAcquire();
  ASSERT_TRUE(r1.isOk() && r2.isOk() && r3.isOk());
  EXPECT_TRUE(*r1);
  EXPECT_TRUE(*r2) << "another lock id is another election";
  EXPECT_FALSE(*r3) << "the same lock id is the same election";
  EXPECT_TRUE(one->release().isOk());
  EXPECT_TRUE(two->release().isOk());
}

TEST(PgLeader, ALeaderWhoseSessionIsKilledLosesTheLockAndTheOtherWins) {
  LEOFLOW_REQUIRE_TEST_PG();
  constexpr std::int64_t kLock = 7'300'000'006;
  Settings s = settingsFor("lf_store_leader", kLock);
  s.lease_ms = 20000;  // nothing here waits out a lease: the session is killed
  s.poll_ms = 500;
  auto first = openLeader(s, "replica-a");
  auto second = openLeader(s, "replica-b");
  ASSERT_TRUE(*first->tryAcquire());
  ASSERT_FALSE(*second->tryAcquire());
  // The advisory lock's key is split over classid (high half) and objid (low half) in pg_locks.
  const std::string holder = "pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                             "((classid::bigint << 32) | objid::bigint) = " + std::to_string(kLock) + ")";
  ASSERT_EQ(terminateBackends(holder), 1) << "exactly one session holds the lock";
  auto checked = first->check();
  EXPECT_FALSE(checked.isOk() && *checked) << "a leader whose lock session died must not claim to lead";
  auto won = second->tryAcquire();
  ASSERT_TRUE(won.isOk()) << won.status().toString();
  EXPECT_TRUE(*won);
  auto back = first->tryAcquire();
  EXPECT_FALSE(back.isOk() && *back) << "the old leader reconnects as a follower";
  EXPECT_TRUE(second->release().isOk());
}

TEST(PgLeader, TheLockSessionEndsWhenIdlePastTheLease) {
  LEOFLOW_REQUIRE_TEST_PG();
  constexpr std::int64_t kLock = 7'300'000'007;
  Settings s = settingsFor("lf_store_leader", kLock);
  s.lease_ms = 600;
  s.poll_ms = 200;
  auto first = openLeader(s, "replica-a");
  ASSERT_TRUE(*first->tryAcquire());
  const std::string held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                           "((classid::bigint << 32) | objid::bigint) = " + std::to_string(kLock);
  EXPECT_EQ(adminQuery(held), "1");
  // Checked within the lease: kept.
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(200ms);
    auto c = first->check();
    ASSERT_TRUE(c.isOk() && *c) << "check " << i;
  }
  // Frozen past the lease: the server ends the session, and the lock goes with it.
  const auto frozen = SteadyClock::now();
  while (adminQuery(held) != "0" && SteadyClock::now() - frozen < 5s) std::this_thread::sleep_for(20ms);
  const long long freed = millisSince(frozen);
  EXPECT_EQ(adminQuery(held), "0");
  EXPECT_LT(freed, 600 + 500) << "the lock must be freed within about one lease";
  std::printf("[ figures  ] a frozen holder's lock was freed %lld ms after its last check (lease 600 ms)\n", freed);
  auto c = first->check();
  EXPECT_FALSE(c.isOk() && *c);
}

}  // namespace
}  // namespace leoflow::testing::pg
