// The plugin's configuration and codecs: what an operator sees when a key is wrong, and the stored
// forms of ids and records (README.md "Key layout"). Only the tests that connect need a server.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "factories.h"
#include "id_codec.h"
#include "records.h"
#include "redis_test_env.h"
#include "redis_url.h"
#include "settings.h"

namespace leoflow::plugins::store_redis {
namespace {

namespace redis = leoflow::testing::redis;
using ::testing::HasSubstr;

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// A loopback port nothing listens on: bound, then released.
int closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(RedisUrl, ReadsHostPortDbAndCredentials) {
  Endpoint e = parseRedisUrl("redis://127.0.0.1:6390/4", "url");
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 6390);
  EXPECT_EQ(e.db, 4);
  EXPECT_EQ(e.password, "");

  e = parseRedisUrl("redis://:s3cret@redis.internal:6379/0", "url");
  EXPECT_EQ(e.host, "redis.internal");
  EXPECT_EQ(e.username, "");
  EXPECT_EQ(e.password, "s3cret");
  EXPECT_EQ(e.redacted, "redis://:***@redis.internal:6379/0");

  e = parseRedisUrl("redis://scheduler:p%40ss@10.0.0.5:7000/2", "url");
  EXPECT_EQ(e.username, "scheduler");
  EXPECT_EQ(e.password, "p@ss");
  EXPECT_EQ(e.redacted, "redis://scheduler:***@10.0.0.5:7000/2");

  e = parseRedisUrl("redis://localhost", "url");
  EXPECT_EQ(e.port, 6379) << "the port defaults to Redis's";
  EXPECT_EQ(e.db, 0) << "the database defaults to 0";

  e = parseRedisUrl("redis://[::1]:6380/1", "url");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.db, 1);
}

TEST(RedisUrl, ReadsAUnixSocketWithItsDbAndCredentials) {
  Endpoint e = parseRedisUrl("unix:///run/redis/redis.sock", "url");
  EXPECT_EQ(e.socket_path, "/run/redis/redis.sock");
  EXPECT_EQ(e.db, 0);
  EXPECT_EQ(e.redacted, "unix:///run/redis/redis.sock");
  e = parseRedisUrl("unix://scheduler:p%40ss@/var/run/redis.sock?db=7", "url");
  EXPECT_EQ(e.socket_path, "/var/run/redis.sock");
  EXPECT_EQ(e.db, 7);
  EXPECT_EQ(e.username, "scheduler");
  EXPECT_EQ(e.password, "p@ss");
  EXPECT_EQ(e.redacted, "unix://scheduler:***@/var/run/redis.sock?db=7");
  const std::string where = "key \"url\" in [store.config]";
  for (const std::string bad : {"unix://", "unix://redis.sock", "unix:///r.sock?timeout=1", "unix:///r.sock?db=x",
                                "unix:///r.sock?db=-1", "unix://:hunter2@relative.sock"}) {
    const std::string msg = errorOf([&] { parseRedisUrl(bad, where); });
    EXPECT_THAT(msg, HasSubstr(where)) << bad;
    EXPECT_THAT(msg, HasSubstr("unix://[:password@]/path/to/redis.sock?db=N")) << bad;
    EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
  }
}

TEST(RedisUrl, ErrorsNameTheKeyAndWhatIsExpectedButNeverThePassword) {
  const std::string where = "key \"url\" in [store.config]";
  for (const std::string bad : {"http://127.0.0.1:6379/0", "127.0.0.1:6379", "redis://", "redis://:6379/0",
                                "redis://host:port/0", "redis://host:70000/0", "redis://host:6379/x",
                                "redis://host:6379/0?timeout=1", "rediss://host:6379/0", "redis://[::1/0"}) {
    const std::string msg = errorOf([&] { parseRedisUrl(bad, where); });
    EXPECT_THAT(msg, HasSubstr(where)) << bad;
    EXPECT_THAT(msg, HasSubstr("expected redis://[:password@]host:port/db")) << bad;
  }
  EXPECT_THAT(errorOf([] { parseRedisUrl("redis://host:99999/0", "url"); }), HasSubstr("out of range"));
  const std::string leak = errorOf([] { parseRedisUrl("redis://:hunter2@host:bad/0", "url"); });
  EXPECT_THAT(leak, HasSubstr("bad port"));
  EXPECT_EQ(leak.find("hunter2"), std::string::npos) << leak;
  const std::string scheme = errorOf([] { parseRedisUrl("http://:hunter2@host/0", "url"); });
  EXPECT_EQ(scheme.find("hunter2"), std::string::npos) << scheme;
}

TEST(RedisSettings, BothFactoriesDeclareTheSameKeysWithDefaults) {
  // ARCHITECTURE §8.6: without [leader] the Leader is made with the store's table.
  const auto store_keys = RedisStoreFactory().configKeys();
  const auto leader_keys = RedisLeaderFactory().configKeys();
  std::set<std::string> store_names;
  std::set<std::string> leader_names;
  for (const ConfigKey& k : store_keys) {
    store_names.insert(k.name);
    EXPECT_FALSE(k.required) << k.name << " has a default";
    EXPECT_TRUE(k.default_value.has_value()) << k.name;
    EXPECT_FALSE(k.help.empty()) << k.name;
  }
  for (const ConfigKey& k : leader_keys) leader_names.insert(k.name);
  EXPECT_EQ(store_names, (std::set<std::string>{"url", "connect_timeout_ms", "command_timeout_ms", "key_prefix",
                                                "lease_ms"}));
  EXPECT_EQ(store_names, leader_names);
  for (const ConfigKey& k : store_keys) {
    if (k.name == "url") {
      EXPECT_EQ(std::get<std::string>(*k.default_value), "redis://127.0.0.1:6379/0");
    } else if (k.name == "lease_ms") {
      EXPECT_EQ(std::get<std::int64_t>(*k.default_value), 3000);
    } else if (k.name == "key_prefix") {
      EXPECT_EQ(std::get<std::string>(*k.default_value), "leoflow");
    }
  }
}

TEST(RedisSettings, BadValuesNameTheSectionAndKey) {
  auto config = [](std::map<std::string, ConfigValue> overrides) {
    std::map<std::string, ConfigValue> v{{"url", std::string("redis://127.0.0.1:6379/0")},
                                         {"connect_timeout_ms", std::int64_t{2000}},
                                         {"command_timeout_ms", std::int64_t{2000}},
                                         {"key_prefix", std::string("leoflow")},
                                         {"lease_ms", std::int64_t{3000}}};
    for (auto& [k, val] : overrides) v[k] = val;
    return ConfigView("leader.config", v);
  };
  EXPECT_THAT(errorOf([&] { readSettings(config({{"command_timeout_ms", std::int64_t{0}}})); }),
              HasSubstr("key \"command_timeout_ms\" in [leader.config]"));
  EXPECT_THAT(errorOf([&] { readSettings(config({{"connect_timeout_ms", std::int64_t{-5}}})); }),
              HasSubstr("key \"connect_timeout_ms\" in [leader.config]"));
  EXPECT_THAT(errorOf([&] { readSettings(config({{"lease_ms", std::int64_t{2}}})); }),
              HasSubstr("key \"lease_ms\" in [leader.config]"));
  EXPECT_THAT(errorOf([&] { readSettings(config({{"key_prefix", std::string("")}})); }),
              HasSubstr("key \"key_prefix\" in [leader.config]"));
  EXPECT_THAT(errorOf([&] { readSettings(config({{"key_prefix", std::string("a b")}})); }),
              HasSubstr("key \"key_prefix\""));
  EXPECT_THAT(errorOf([&] { readSettings(config({{"url", std::string("tcp://x")}})); }),
              HasSubstr("key \"url\" in [leader.config]"));
  const Settings s = readSettings(config({}));
  EXPECT_EQ(s.lease.count(), 3000);
  EXPECT_EQ(s.endpoint.port, 6379);
}

TEST(RedisSettings, CreateThrowsNamingTheUrlWhenRedisCannotBeReached) {
  const std::string url = "redis://127.0.0.1:" + std::to_string(closedPort()) + "/0";
  const auto start = std::chrono::steady_clock::now();
  const std::string store_error =
      errorOf([&] { RedisStoreFactory().create(redis::storeConfig(url), redis::makeContext()); });
  EXPECT_THAT(store_error, HasSubstr(url));
  EXPECT_THAT(store_error, HasSubstr("key \"url\" in [store.config]"));
  const std::string leader_error =
      errorOf([&] { RedisLeaderFactory().create(redis::storeConfig(url), redis::makeContext()); });
  EXPECT_THAT(leader_error, HasSubstr(url));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "a refused connection is not a wait";

  EXPECT_THAT(errorOf([&] { RedisStoreFactory().create(redis::storeConfig("redis://:pw@127.0.0.1:1:2/0"), redis::makeContext()); }),
              HasSubstr("key \"url\""));
}

TEST(RedisSettings, AnUnreachableServerIsUnavailableErrorAndABadUrlIsNot) {
  // ARCHITECTURE §8.6: the host retries UnavailableError (scheduler) or exits 3 (one-shot command);
  // anything else from create() is a configuration error, exit 2.
  const std::string url = "redis://127.0.0.1:" + std::to_string(closedPort()) + "/0";
  EXPECT_THROW(RedisStoreFactory().create(redis::storeConfig(url), redis::makeContext()), UnavailableError);
  EXPECT_THROW(RedisLeaderFactory().create(redis::storeConfig(url), redis::makeContext()), UnavailableError);
  try {
    RedisStoreFactory().create(redis::storeConfig("tcp://127.0.0.1:6379/0"), redis::makeContext());
    ADD_FAILURE() << "a bad url was accepted";
  } catch (const UnavailableError& e) {
    ADD_FAILURE() << "a bad url is not an outage: " << e.what();
  } catch (const std::exception&) {
  }
}

TEST(RedisSettings, AWrongPasswordIsAStartUpErrorThatHidesThePassword) {
  LEOFLOW_REQUIRE_TEST_REDIS();
  // The test server has no password: AUTH fails, and the message must not echo the secret.
  std::string url = redis::urlForDb(5);
  url.insert(std::string("redis://").size(), ":hunter2@");
  const std::string error = errorOf([&] { RedisStoreFactory().create(redis::storeConfig(url), redis::makeContext()); });
  EXPECT_THAT(error, HasSubstr("AUTH"));
  EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
  // The server answered and refused: retrying will not help, so it is not UnavailableError (exit 2).
  try {
    RedisStoreFactory().create(redis::storeConfig(url), redis::makeContext());
  } catch (const UnavailableError& e) {
    ADD_FAILURE() << "a refused login is a configuration error, not an outage: " << e.what();
  } catch (const std::exception&) {
  }
}

TEST(IdCodec, EncodedIdsNeverContainTheSeparatorAndDecodeBack) {
  for (const std::string id : {"plain", "a:b", "100%", "%3A", "with space", "new\nline", "t|x", "ünïcode", ""}) {
    const std::string enc = encodeId(id);
    EXPECT_EQ(enc.find(':'), std::string::npos) << id;
    auto back = decodeId(enc);
    ASSERT_TRUE(back.has_value()) << id;
    EXPECT_EQ(*back, id);
  }
  EXPECT_EQ(encodeId("a:b%c"), "a%3Ab%25c");
  EXPECT_FALSE(decodeId("%4").has_value());
  EXPECT_FALSE(decodeId("%zz").has_value());
}

TEST(IdCodec, RunRefsParseBackToRunKeys) {
  auto key = parseRunRef(encodeId("etl:v2") + ":" + encodeId("100%:done?"));
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, (RunKey{"etl:v2", "100%:done?"}));
  for (const char* bad : {"", "etl", "a:b:c", "etl:%zz"}) EXPECT_FALSE(parseRunRef(bad).has_value()) << bad;
}

TEST(IdCodec, ChangeMessagesParseBackToChanges) {
  auto t = parseChangeMessage("t:" + encodeId("etl:v2") + ":" + encodeId("manual__2026-01-01T00:00:00.123456Z") + ":x");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->kind, Change::Kind::kTask);
  EXPECT_EQ(t->run, (RunKey{"etl:v2", "manual__2026-01-01T00:00:00.123456Z"}));
  EXPECT_EQ(t->task_id, "x");
  EXPECT_EQ(t->leader_term, 0) << "a report's or a person's change names no term";
  auto moved = parseChangeMessage("t:etl:r1:" + encodeId("a:b") + ":42");
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->task_id, "a:b");
  EXPECT_EQ(moved->leader_term, 42) << "a transition's change names the term that wrote it";
  auto report = parseChangeMessage("x:etl:r1:a:" + encodeId("host:a/1/e%1"));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->kind, Change::Kind::kTask);
  EXPECT_EQ(report->task_id, "a");
  EXPECT_EQ(report->execution_id, "host:a/1/e%1") << "an executor's report names its execution";
  EXPECT_EQ(report->leader_term, 0);
  EXPECT_EQ(t->execution_id, "") << "nobody else's change names one";
  for (const char* bad : {"x:etl:r1:a", "x:etl:r1:a:", "x:etl:r1:a:e:f"}) {
    EXPECT_FALSE(parseChangeMessage(bad).has_value()) << bad;
  }
  auto r = parseChangeMessage("r:etl:r1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->kind, Change::Kind::kRun);
  EXPECT_EQ(r->leader_term, 0) << "a run's creation or a person's command names no term";
  auto started = parseChangeMessage("r:etl:" + encodeId("r:1") + ":42");
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->kind, Change::Kind::kRun);
  EXPECT_EQ(started->run, (RunKey{"etl", "r:1"}));
  EXPECT_EQ(started->leader_term, 42) << "the leader's run start or move names the term that wrote it";
  auto d = parseChangeMessage("d:etl");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->dag_id, "etl");
  for (const char* bad : {"", "x:etl", "t:etl:r1", "r:etl", "d:a:b", "d:%zz", "tt:a:b:c", "t:a:b:c:x", "t:a:b:c:0",
                          "t:a:b:c:-1", "t:a:b:c:1:2", "r:a:b:x", "r:a:b:0", "r:a:b:1:2"}) {
    EXPECT_FALSE(parseChangeMessage(bad).has_value()) << bad;
  }
  EXPECT_EQ(changeChannel("leoflow", 3), "leoflow:3:changes");
  EXPECT_EQ(runChangeChannel("leoflow", 3), "leoflow:3:changes:runs");
}

TEST(TiRecordCodec, RoundTripsEveryFieldToTheMicrosecond) {
  TiRecord r;
  r.seq = 7;
  r.ti.task_id = "load";
  r.ti.state = TaskState::kUpForRetry;
  r.ti.try_number = 3;
  r.ti.max_tries = 5;
  const Timestamp t{std::chrono::microseconds(1'780'000'000'123'456)};
  r.ti.scheduled_at = t;
  r.ti.queued_at = t + std::chrono::microseconds(1);
  r.ti.ended_at = t + std::chrono::seconds(9);
  r.ti.exit_code = -9;
  r.ti.note = "a note | with bars";
  const std::string text = encodeTiRecord(r);
  EXPECT_EQ(text, "7|up_for_retry|3|5|1780000000123456|1780000000123457||1780000009123456||-9|a note | with bars");
  auto back = decodeTiRecord("load", text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->seq, 7);
  EXPECT_EQ(encodeTiRecord(*back), text);
  EXPECT_FALSE(back->ti.started_at.has_value());
  EXPECT_FALSE(decodeTiRecord("x", "1|bogus|1|1||||||||").has_value());
  EXPECT_FALSE(decodeTiRecord("x", "1|none|1|1").has_value());
}

}  // namespace
}  // namespace leoflow::plugins::store_redis
