// `leoflow plan` as a user drives it: RunState JSON in, transitions and verdict out (ARCHITECTURE
// §5, §8.3), with errors that name the field and exit 2.
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "host/plan_command.h"

namespace leoflow::host {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

struct Outcome {
  int code;
  json out;
  std::string err;
};

Outcome plan(const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out, err;
  const int code = runPlan(in, out, err);
  Outcome o{code, json(), err.str()};
  if (code == 0) o.out = json::parse(out.str());
  return o;
}

json moves(std::initializer_list<std::pair<const char*, const char*>> list) {
  json a = json::array();
  for (auto [id, to] : list) a.push_back({{"task_id", id}, {"to", to}});
  return a;
}

const char* kLinear = R"("tasks":[{"task_id":"a","depends_on":[]},{"task_id":"b","depends_on":["a"]}])";

TEST(PlanCommand, SchedulesTheRootOfAFreshRun) {
  auto o = plan(std::string("{") + kLinear + R"(,"states":{"a":"none","b":"none"}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"a", "scheduled"}}));
  EXPECT_EQ(o.out["finalize"], (json{{"done", false}, {"state", nullptr}}));
}

TEST(PlanCommand, AbsentStatesAreNoneAndAbsentTriesMeanNoRetry) {
  auto o = plan(std::string("{") + kLinear + R"(,"states":{"a":"failed"}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"b", "upstream_failed"}}));
}

TEST(PlanCommand, RetriesWithBudgetThenHonoursTheDelay) {
  auto o = plan(std::string("{") + kLinear +
                R"(,"states":{"a":"failed"},"tries":{"a":1},"max_tries":{"a":3}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"a", "up_for_retry"}}));

  const std::string waiting = std::string("{") + kLinear +
                              R"(,"states":{"a":"up_for_retry"},"tries":{"a":1},"max_tries":{"a":3},)"
                              R"("ended_at":{"a":"2026-05-31T12:00:00Z"},"retry_delay_seconds":{"a":60},)";
  o = plan(waiting + R"("now":"2026-05-31T12:00:10Z"})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], json::array());
  // offsets and fractions are understood: 14:01:00.5+02:00 is 12:01:00.5Z, past the delay
  o = plan(waiting + R"("now":"2026-05-31T14:01:00.5+02:00"})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"a", "none"}}));
}

TEST(PlanCommand, FinalizesOnTheInputSnapshot) {
  auto o = plan(std::string("{") + kLinear + R"(,"states":{"a":"success","b":"upstream_failed"}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["finalize"], (json{{"done", true}, {"state", "failed"}}));
  o = plan(R"({"tasks":[],"states":{}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["finalize"], (json{{"done", true}, {"state", "success"}}));
}

TEST(PlanCommand, UsesTheTriggerRules) {
  auto o = plan(R"({"tasks":[{"task_id":"a"},{"task_id":"b"},
      {"task_id":"c","depends_on":["a","b"],"trigger_rule":"one_success"},
      {"task_id":"d","depends_on":["a","b"],"trigger_rule":"none_failed_min_one_success"}],
      "states":{"a":"success","b":"running"}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"c", "scheduled"}}));
}

TEST(PlanCommand, OutputOrderIsRetryPassThenStartPass) {
  auto o = plan(R"({"tasks":[{"task_id":"x"},{"task_id":"y"},{"task_id":"z"}],
      "states":{"x":"scheduled","y":"none","z":"failed"},"tries":{"z":1},"max_tries":{"z":2}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"z", "up_for_retry"}, {"x", "queued"}, {"y", "scheduled"}}));
}

TEST(PlanCommand, UnknownKeysAreIgnored) {
  auto o = plan(std::string("{") + kLinear +
                R"(,"run_id":"r1","dag_id":"d","state":"running","colour":"blue","states":{"zz":"success"}})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"a", "scheduled"}}));
}

struct BadInput {
  const char* input;
  const char* field;
};

TEST(PlanCommand, BadInputExitsTwoNamingTheField) {
  const BadInput cases[] = {
      {R"({"tasks":[)", "malformed JSON"},
      {R"([])", "expected a JSON object"},
      {R"({"tasks":[{"task_id":"a"}],"states":{"a":"deferred"}})", "states.a: unknown state \"deferred\""},
      {R"({"tasks":[{"task_id":"a"}],"states":{"a":""}})", "states.a: unknown state \"\""},
      {R"({"tasks":[{"task_id":"a","trigger_rule":"dummy"}]})", "tasks[0].trigger_rule: unknown trigger rule \"dummy\""},
      {R"({"tasks":[{"task_id":"a","depends_on":["nowhere"]}]})", "tasks[0].depends_on: \"nowhere\" is not a task"},
      {R"({"tasks":[{"task_id":"a"},{"task_id":"a"}]})", "tasks[1].task_id: duplicate task id \"a\""},
      {R"({"tasks":[{"task_id":"a","depends_on":["b"]},{"task_id":"b","depends_on":["a"]}]})", "cycle"},
      {R"({"tasks":[{"depends_on":[]}]})", "tasks[0].task_id: missing"},
      {R"({"tasks":{"a":1}})", "tasks: expected an array"},
      {R"({"tasks":[{"task_id":"a"}],"tries":{"a":"two"}})", "tries.a: expected an integer"},
      {R"({"tasks":[{"task_id":"a"}],"max_tries":{"a":1.5}})", "max_tries.a: expected an integer"},
      {R"({"tasks":[{"task_id":"a"}],"ended_at":{"a":"yesterday"}})", "ended_at.a: expected an ISO-8601 time"},
      {R"({"tasks":[{"task_id":"a"}],"now":"2026-05-31T12:00:00"})", "now: expected an ISO-8601 time"},
      {R"({"tasks":[{"task_id":"a"}],"states":["a"]})", "states: expected an object"},
      {R"({"tasks":[],"state":"paused"})", "state: unknown run state \"paused\""},
  };
  for (const BadInput& c : cases) {
    auto o = plan(c.input);
    EXPECT_EQ(o.code, 2) << c.input;
    EXPECT_THAT(o.err, HasSubstr(c.field)) << c.input;
  }
}

TEST(PlanCommand, RejectsTriesBelowOneAndNegativeDelaysNamingTheEntry) {
  // §8.5: try numbers start at 1; a plan computed from tries -3 would be nonsense.
  const BadInput cases[] = {
      {R"({"tasks":[{"task_id":"a"}],"states":{"a":"failed"},"tries":{"a":-3},"max_tries":{"a":2}})",
       "tries.a: expected a try number (the first attempt is 1) of at least 1, got -3"},
      {R"({"tasks":[{"task_id":"a"}],"tries":{"a":0}})", "tries.a: expected a try number"},
      {R"({"tasks":[{"task_id":"a"}],"max_tries":{"a":-1}})", "max_tries.a: expected a number of tries"},
      {R"({"tasks":[{"task_id":"a"}],"max_tries":{"a":0}})", "got 0"},
      {R"({"tasks":[{"task_id":"a"}],"retry_delay_seconds":{"a":-5}})",
       "retry_delay_seconds.a: expected a delay in seconds of at least 0, got -5"},
  };
  for (const BadInput& c : cases) {
    auto o = plan(c.input);
    EXPECT_EQ(o.code, 2) << c.input;
    EXPECT_THAT(o.err, HasSubstr(c.field)) << c.input;
  }
  // The smallest legal values still plan.
  auto ok = plan(R"({"tasks":[{"task_id":"a"}],"states":{"a":"failed"},"tries":{"a":1},"max_tries":{"a":1},)"
                 R"("retry_delay_seconds":{"a":0}})");
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST(PlanCommand, ACycleThroughTwentyThousandTasksIsNamedInAShortLine) {
  std::string input = R"({"tasks":[{"task_id":"t0","depends_on":["t19999"]})";
  for (int i = 1; i < 20000; ++i) {
    input += R"(,{"task_id":"t)" + std::to_string(i) + R"(","depends_on":["t)" + std::to_string(i - 1) + "\"]}";
  }
  input += "]}";
  auto o = plan(input);
  EXPECT_EQ(o.code, 2);
  EXPECT_THAT(o.err, HasSubstr("cycle of 20000 tasks t0 -> t1 -> t2 -> t3 -> t4 -> ... (19990 more) -> t19995"));
  EXPECT_THAT(o.err, HasSubstr("t19999 -> t0"));
  EXPECT_LT(o.err.size(), 300u) << "the whole loop would be ~190 KB";
}

TEST(PlanCommand, PlansATwentyThousandTaskChain) {
  std::string input = R"({"tasks":[{"task_id":"t0"})";
  for (int i = 1; i < 20000; ++i) {
    input += R"(,{"task_id":"t)" + std::to_string(i) + R"(","depends_on":["t)" + std::to_string(i - 1) + "\"]}";
  }
  input += R"(],"states":{"t0":"success","t1":"success"}})";
  auto o = plan(input);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out["transitions"], moves({{"t2", "scheduled"}}));
}

}  // namespace
}  // namespace leoflow::host
