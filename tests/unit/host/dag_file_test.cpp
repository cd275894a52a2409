// DAG files (ARCHITECTURE §6): defaults, canonical form, and every validation error naming the
// file and the task.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "host/dag_file.h"
#include "schedule/iso_time.h"

namespace leoflow::host {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::optional<ParsedDag> parse(const std::string& text, DagLoad& load) { return parseDagText(text, "etl.json", load); }

std::string errorsOf(const std::string& text) {
  DagLoad load;
  EXPECT_FALSE(parse(text, load).has_value()) << text;
  std::string all;
  for (const auto& e : load.errors) all += e + "\n";
  return all;
}

const char* kGood = R"({
  "dag_id": "etl", "schedule": "0 6 * * *", "schedule_timezone": "Europe/Paris",
  "start_date": "2026-01-01", "catchup": true, "max_active_runs": 2,
  "default_args": {"retries": 2, "retry_delay_seconds": 30, "execution_timeout_seconds": 600},
  "tasks": [
    {"task_id": "extract", "type": "bash", "entrypoint": "echo hi", "env": {"A": "1"}},
    {"task_id": "transform", "type": "python", "entrypoint": "etl.jobs:transform", "depends_on": ["extract"],
     "retries": 0, "resources": {"requests": {"cpu": "500m", "memory": 512}},
     "execution": {"node_selector": {"disk": "ssd"}, "service_account": "etl",
                   "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]}},
    {"task_id": "notify", "type": "http_api", "depends_on": ["transform"], "trigger_rule": "all_done",
     "http_request": {"method": "post", "url": "https://hooks.example/x", "body": {"ok": true},
                      "success_status_codes": [200, 202]}}
  ]})";

TEST(DagFile, ReadsADagWithDefaultsApplied) {
  DagLoad load;
  auto dag = parse(kGood, load);
  ASSERT_TRUE(dag) << ::testing::PrintToString(load.errors);
  const DagSpec& d = dag->spec;
  EXPECT_EQ(d.dag_id, "etl");
  EXPECT_EQ(d.schedule, "0 6 * * *");
  EXPECT_EQ(d.schedule_timezone, "Europe/Paris");
  EXPECT_EQ(d.start_date, schedule::parseIsoTime("2026-01-01T00:00:00Z"));
  EXPECT_TRUE(d.catchup);
  EXPECT_EQ(d.max_active_runs, 2);
  ASSERT_EQ(d.tasks.size(), 3u);
  // default_args fill what a task does not set itself (BEHAVIOUR §1.4: the seed ignored them)
  EXPECT_EQ(d.tasks[0].retries, 2);
  EXPECT_EQ(d.tasks[0].retry_delay_seconds, 30);
  EXPECT_EQ(d.tasks[0].execution_timeout_seconds, 600);
  EXPECT_EQ(d.tasks[1].retries, 0);
  EXPECT_EQ(d.tasks[1].resources.requests.at("memory"), "512");
  EXPECT_EQ(d.tasks[1].execution.tolerations.size(), 1u);
  EXPECT_EQ(d.tasks[2].execution_mode, ExecutionMode::kInline);  // http_api runs inline by default
  EXPECT_EQ(d.tasks[0].execution_mode, ExecutionMode::kPod);
  EXPECT_EQ(d.tasks[2].trigger_rule, TriggerRule::kAllDone);
  EXPECT_EQ(d.tasks[2].http_request->method, "POST");
  EXPECT_EQ(d.tasks[2].http_request->body_json, R"({"ok":true})");
  EXPECT_THAT(load.warnings, IsEmpty());
}

TEST(DagFile, CatchupDefaultsToFalseAndMaxActiveRunsTo16) {
  DagLoad load;
  auto dag = parse(R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"true"}]})", load);
  ASSERT_TRUE(dag);
  EXPECT_FALSE(dag->spec.catchup);
  EXPECT_EQ(dag->spec.max_active_runs, 16);
  EXPECT_TRUE(dag->spec.schedule.empty());
}

TEST(DagFile, CanonicalJsonRoundTripsAndIgnoresFormatting) {
  DagLoad load;
  auto a = parse(kGood, load);
  ASSERT_TRUE(a);
  std::string spaced = std::string(kGood);
  spaced.insert(1, "\n\n   ");
  auto b = parse(spaced, load);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->canonical_json, b->canonical_json);
  auto decoded = decodeCanonicalDag(a->canonical_json);
  ASSERT_TRUE(decoded.isOk()) << decoded.status().message();
  EXPECT_EQ(canonicalDagJson(*decoded), a->canonical_json);
  EXPECT_EQ(decoded->tasks[0].retries, 2);
}

TEST(DagFile, AChangedDagHasADifferentCanonicalForm) {
  DagLoad load;
  auto a = parse(R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"true"}]})", load);
  auto b = parse(R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"false"}]})", load);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->canonical_json, b->canonical_json);
}

TEST(DagFile, EveryErrorNamesTheFileAndTheTask) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"x"},{"task_id":"a","type":"bash","entrypoint":"y"}]})",
       "etl.json: task \"a\": duplicate task id"},
      {R"({"dag_id":"d","tasks":[{"task_id":"x","type":"bash","entrypoint":"x","depends_on":["nowhere"]}]})",
       "etl.json: task \"x\": depends on unknown task \"nowhere\""},
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"x","depends_on":["b"]},{"task_id":"b","type":"bash","entrypoint":"x","depends_on":["a"]}]})",
       "etl.json: cycle a -> b -> a"},
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"perl","entrypoint":"x"}]})",
       "etl.json: task \"a\": unknown type \"perl\""},
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"x","trigger_rule":"dummy"}]})",
       "etl.json: task \"a\": unknown trigger rule \"dummy\""},
      {R"({"dag_id":"d","schedule":"*/3 * * *","tasks":[{"task_id":"a","type":"bash","entrypoint":"x"}]})",
       "etl.json: bad schedule \"*/3 * * *\""},
      {R"({"dag_id":"d","schedule":"0 0 30 2 *","tasks":[{"task_id":"a","type":"bash","entrypoint":"x"}]})",
       "never"},
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"x","retries":-1}]})",
       "etl.json: task \"a\": retries must not be negative"},
      {R"({"dag_id":"d","max_active_runs":-2,"tasks":[]})", "etl.json: max_active_runs must not be negative"},
      {R"({"dag_id":"d","default_args":{"retry_delay_seconds":-5},"tasks":[]})",
       "default_args: retry_delay_seconds must not be negative"},
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash"}]})", "task \"a\": entrypoint is missing"},
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"http_api"}]})", "task \"a\": http_request is missing"},
      {R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"x","execution_mode":"inline"}]})",
       "only for http_api"},
      {R"({"tasks":[]})", "etl.json: dag_id is missing"},
      {R"({"dag_id":"my dag","tasks":[]})", "dag_id \"my dag\" must use only"},
      {R"({"dag_id":"d"})", "etl.json: tasks is missing"},
      {R"({"dag_id":"d","start_date":"yesterday","tasks":[]})", "start_date must be an ISO-8601 time"},
      {R"({"dag_id":"d","schedule_timezone":"Mars/Olympus","schedule":"@daily","tasks":[]})",
       "etl.json: schedule_timezone \"Mars/Olympus\": unknown time zone"},
      {R"({"dag_id":"d","tasks":[)", "etl.json: malformed JSON"},
      {R"([1,2])", "etl.json: a DAG file holds one JSON object"},
  };
  for (const Case& c : cases) EXPECT_THAT(errorsOf(c.text), HasSubstr(c.message)) << c.text;
}

TEST(DagFile, ABadTimeZoneIsReportedUnderItsOwnField) {
  // Not as a "bad schedule": the schedule is fine, the zone is not — with or without a schedule.
  const std::string with = errorsOf(R"({"dag_id":"d","schedule":"0 6 * * *","schedule_timezone":"Europe/Pariss","tasks":[]})");
  EXPECT_THAT(with, HasSubstr("etl.json: schedule_timezone \"Europe/Pariss\": unknown time zone"));
  EXPECT_THAT(with, ::testing::Not(HasSubstr("bad schedule"))) << with;
  const std::string manual = errorsOf(R"({"dag_id":"d","schedule_timezone":"Nowhere/Land","tasks":[]})");
  EXPECT_THAT(manual, HasSubstr("schedule_timezone \"Nowhere/Land\""));
  // Both wrong: each under its own name.
  const std::string both = errorsOf(R"({"dag_id":"d","schedule":"* * *","schedule_timezone":"Nowhere/Land","tasks":[]})");
  EXPECT_THAT(both, HasSubstr("schedule_timezone \"Nowhere/Land\""));
  EXPECT_THAT(both, HasSubstr("bad schedule \"* * *\""));
}

TEST(DagFile, AnEndDateBeforeTheStartDateShowsBothDates) {
  const std::string e =
      errorsOf(R"({"dag_id":"d","start_date":"2026-03-01","end_date":"2026-01-15T06:30:00Z","tasks":[]})");
  EXPECT_THAT(e, HasSubstr("etl.json: end_date 2026-01-15T06:30:00Z is before start_date 2026-03-01T00:00:00Z"));
}

TEST(DagFile, ADuplicateKeyIsAnErrorNamingTheFileTheKeyAndWhere) {
  // JSON parsers keep the last of two equal keys silently: "retries": 3 would quietly become 0.
  const std::string top = errorsOf(R"({"dag_id":"d","schedule":"@daily","schedule":"@hourly","tasks":[]})");
  EXPECT_THAT(top, HasSubstr("etl.json: duplicate key \"schedule\""));
  const std::string task = errorsOf(
      R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"x"},)"
      R"({"task_id":"b","type":"bash","entrypoint":"x","retries":3,"retries":0}]})");
  EXPECT_THAT(task, HasSubstr("etl.json: duplicate key \"retries\" in tasks[1]"));
  const std::string nested = errorsOf(
      R"({"dag_id":"d","tasks":[{"task_id":"a","type":"http_api",)"
      R"("http_request":{"url":"https://x","headers":{"A":"1","A":"2"}}}]})");
  EXPECT_THAT(nested, HasSubstr("duplicate key \"A\" in tasks[0].http_request.headers"));
  // The same key in different objects is fine.
  DagLoad load;
  EXPECT_TRUE(parse(R"({"dag_id":"d","tasks":[{"task_id":"a","type":"bash","entrypoint":"x","env":{"task_id":"1"}},)"
                    R"({"task_id":"b","type":"bash","entrypoint":"x"}]})",
                    load))
      << ::testing::PrintToString(load.errors);
}

TEST(DagFile, ACycleThroughTwentyThousandTasksIsNamedInAShortLine) {
  std::string text = R"({"dag_id":"big","tasks":[{"task_id":"t0","type":"bash","entrypoint":"x","depends_on":["t19999"]})";
  for (int i = 1; i < 20000; ++i) {
    text += R"(,{"task_id":"t)" + std::to_string(i) + R"(","type":"bash","entrypoint":"x","depends_on":["t)" +
            std::to_string(i - 1) + "\"]}";
  }
  text += "]}";
  const std::string e = errorsOf(text);
  EXPECT_THAT(e, HasSubstr("etl.json: cycle of 20000 tasks t0 -> t1 -> t2 -> t3 -> t4 -> ... (19990 more) -> "
                           "t19995 -> t19996 -> t19997 -> t19998 -> t19999 -> t0"));
  EXPECT_LT(e.size(), 300u) << "the whole loop spelled out is ~190 KB";
}

TEST(DagFile, ReportsEveryErrorNotJustTheFirst) {
  const std::string all = errorsOf(
      R"({"dag_id":"d","tasks":[{"task_id":"a","type":"perl","entrypoint":"x"},{"task_id":"b","type":"bash","entrypoint":"x","retries":-1}]})");
  EXPECT_THAT(all, HasSubstr("task \"a\": unknown type"));
  EXPECT_THAT(all, HasSubstr("task \"b\": retries must not be negative"));
}

TEST(DagFile, UnknownKeysAreWarningsNotErrors) {
  DagLoad load;
  auto dag = parse(R"({"dag_id":"d","owner":"me","tasks":[{"task_id":"a","type":"bash","entrypoint":"x","pool":"p"}]})",
                   load);
  ASSERT_TRUE(dag);
  ASSERT_EQ(load.warnings.size(), 2u);
  EXPECT_THAT(load.warnings[0], HasSubstr("unknown key \"owner\""));
  EXPECT_THAT(load.warnings[1], HasSubstr("task \"a\": unknown key \"pool\""));
}

TEST(DagFile, LoadsFoldersAndRefusesADagDefinedTwice) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("leoflow-dags-" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text; };
  write(dir / "a.json", R"({"dag_id":"a","tasks":[{"task_id":"t","type":"bash","entrypoint":"true"}]})");
  write(dir / "sub" / "b.json", R"({"dag_id":"b","tasks":[{"task_id":"t","type":"bash","entrypoint":"true"}]})");
  write(dir / "notes.txt", "not a dag");
  DagLoad load = loadDagFiles({dir.string()});
  EXPECT_THAT(load.errors, IsEmpty());
  ASSERT_EQ(load.dags.size(), 2u);
  EXPECT_EQ(load.dags[0].spec.dag_id, "a");
  EXPECT_EQ(load.dags[1].spec.dag_id, "b");

  write(dir / "sub" / "again.json", R"({"dag_id":"a","tasks":[{"task_id":"t","type":"bash","entrypoint":"true"}]})");
  load = loadDagFiles({dir.string()});
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_THAT(load.errors[0], HasSubstr("dag \"a\" is also defined in"));

  load = loadDagFiles({(dir / "missing.json").string()});
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_THAT(load.errors[0], HasSubstr("no such file or folder"));
  fs::remove_all(dir);
}

TEST(DagFile, AFileReachedTwiceIsReadOnce) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("leoflow-dags-twice-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "a.json") << R"({"dag_id":"a","tasks":[{"task_id":"t","type":"bash","entrypoint":"true"}]})";
  std::ofstream(dir / "sub" / "b.json") << R"({"dag_id":"b","tasks":[{"task_id":"t","type":"bash","entrypoint":"true"}]})";
  const std::string a = (dir / "a.json").string();
  // Named twice, by another spelling, through its folder, and through a link: one DAG, no "also
  // defined in" error about the file and itself.
  fs::create_symlink(dir / "a.json", dir / "link-to-a.json");
  DagLoad load = loadDagFiles({a, a, (dir / "sub" / ".." / "a.json").string(), dir.string(), (dir / "sub").string()});
  EXPECT_THAT(load.errors, IsEmpty());
  ASSERT_EQ(load.dags.size(), 2u);
  EXPECT_EQ(load.dags[0].spec.dag_id, "a");
  EXPECT_EQ(load.dags[0].file, a) << "the first mention names it";
  EXPECT_EQ(load.dags[1].spec.dag_id, "b");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace leoflow::host
