// dispatcher-k8s against the emulated API server (fake_apiserver.h): pods, the watch, reports,
// deletion, logs, adoption, auth and TLS. Every manifest sent is checked against V1Pod afterwards.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "factory.h"
#include "k8s_test_support.h"
#include "names.h"

namespace leoflow::testing::k8s {
namespace {

using nlohmann::json;
namespace dk = leoflow::plugins::dispatcher_k8s;

std::map<std::string, std::string> envOf(const json& pod) {
  std::map<std::string, std::string> out;
  for (const auto& e : pod["spec"]["containers"][0]["env"]) out[e["name"]] = e["value"];
  return out;
}

TEST_F(K8sTest, CreatesOnePodWithNameLabelsCommandEnvAndHints) {
  auto d = make();
  auto a = attemptOf("etl", "manual__1", "Load_Table", 2);
  auto r = requestOf(a, 4711, "echo hello");
  r.task.env = {{"A", "1"}, {"LEOFLOW_DAG_ID", "spoofed"}};
  r.task.execution_timeout_seconds = 60;
  r.task.resources.requests = {{"cpu", "500m"}, {"memory", "256Mi"}};
  r.task.resources.limits = {{"memory", "512Mi"}};
  r.task.execution.node_selector = {{"pool", "batch"}};
  r.task.execution.tolerations = {{"dedicated", "Equal", "batch", "NoSchedule", std::nullopt},
                                  {"flaky", "Exists", "", "NoExecute", 30}};
  r.task.execution.service_account = "runner";
  r.task.execution.image_pull_policy = "IfNotPresent";
  r.conf_json = R"({"x":1})";
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);

  const std::string name = podOf(r);
  EXPECT_TRUE(dk::isDns1123Label(name)) << name;
  EXPECT_EQ(name.rfind("lf-load-table-4711-2-", 0), 0u) << name;
  const auto pod = server_->pod(kNs, name);
  ASSERT_TRUE(pod.has_value());
  const json& labels = (*pod)["metadata"]["labels"];
  EXPECT_EQ(labels["leoflow.io/installation"], "test");
  EXPECT_EQ(labels["leoflow.io/dag"], "etl");
  EXPECT_EQ(labels["leoflow.io/run"], "manual__1");
  EXPECT_EQ(labels["leoflow.io/task"], "Load_Table");
  EXPECT_EQ(labels["leoflow.io/try"], "2");
  EXPECT_EQ(labels["leoflow.io/tenant"], "team-a");
  EXPECT_EQ((*pod)["metadata"]["annotations"]["leoflow.io/run-id"], "manual__1");
  const json& spec = (*pod)["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_EQ(spec["activeDeadlineSeconds"], 60 + 300 + 7);
  EXPECT_EQ(spec["terminationGracePeriodSeconds"], 7);
  EXPECT_EQ(spec["serviceAccountName"], "runner");
  EXPECT_EQ(spec["nodeSelector"]["pool"], "batch");
  EXPECT_EQ(spec["tolerations"][1]["tolerationSeconds"], 30);
  const json& c = spec["containers"][0];
  EXPECT_EQ(c["image"], "busybox:1.36");
  EXPECT_EQ(c["command"], json::array({"bash", "-c", "echo hello"}));
  EXPECT_EQ(c["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(c["resources"]["requests"]["cpu"], "500m");
  EXPECT_EQ(c["resources"]["limits"]["memory"], "512Mi");
  const auto env = envOf(*pod);
  EXPECT_EQ(env.at("A"), "1");
  EXPECT_EQ(env.at("LEOFLOW_DAG_ID"), "etl");
  EXPECT_EQ(env.at("LEOFLOW_RUN_ID"), "manual__1");
  EXPECT_EQ(env.at("LEOFLOW_TASK_ID"), "Load_Table");
  EXPECT_EQ(env.at("LEOFLOW_TRY_NUMBER"), "2");
  EXPECT_EQ(env.at("LEOFLOW_TENANT"), "team-a");
  EXPECT_EQ(env.at("LEOFLOW_CONF"), R"({"x":1})");
  EXPECT_EQ(env.at("LEOFLOW_LOGICAL_DATE"), "2024-10-04T00:00:00Z");

  // The claim: the execution id is the pod's UID.
  ASSERT_TRUE(events_.waitCount(Kind::kRunning, a, 1));
  EXPECT_EQ(events_.claimOf(a), (*pod)["metadata"]["uid"]);
  EXPECT_EQ(d->heldAttempts(), std::vector<AttemptRef>{a});
}

TEST_F(K8sTest, PythonTasksAndTaskImagesAndRefusals) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "py"), 1, "pkg.mod:main", "python");
  r.task.image = "python:3.12";
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  const auto pod = server_->pod(kNs, podOf(r));
  ASSERT_TRUE(pod);
  const json& c = (*pod)["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "python:3.12");
  EXPECT_EQ(c["command"][0], "python3");
  EXPECT_EQ(c["command"][3], "pkg.mod");
  EXPECT_EQ(c["command"][4], "main");
  EXPECT_EQ(envOf(*pod).at("PYTHONUNBUFFERED"), "1");

  auto script = requestOf(attemptOf("d", "r", "script"), 1, "jobs/run.py", "python");
  EXPECT_EQ(dispatch(*d, script), DispatchOutcome::kStarted);
  EXPECT_EQ((*server_->pod(kNs, podOf(script)))["spec"]["containers"][0]["command"], json::array({"python3", "jobs/run.py"}));

  auto http = requestOf(attemptOf("d", "r", "h"), 1, "x", "http_api");
  events_.makeCurrent(http.attempt);
  EXPECT_EQ(d->dispatch(http).status().code(), StatusCode::kInvalidArgument);
  auto d2 = make({{"image", std::string("")}});
  auto noimage = requestOf(attemptOf("d", "r", "noimage"), 1);
  events_.makeCurrent(noimage.attempt);
  auto out = d2->dispatch(noimage);
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("image"), std::string::npos);
}

TEST_F(K8sTest, SecondDispatchMeets409AndIsAlreadyRunning) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 9);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kAlreadyRunning);  // known locally
  // Another scheduler (of another installation, so it has not seen the pod through its watch)
  // meets 409 at the API server and adopts the attempt's pod.
  auto other = make({{"installation", std::string("other")}});
  EXPECT_EQ(dispatch(*other, r), DispatchOutcome::kAlreadyRunning);
  EXPECT_EQ(server_->podNames(kNs).size(), 1u);
  EXPECT_EQ(server_->count("POST", "create"), 2);
  ASSERT_TRUE(events_.waitCount(Kind::kRunning, r.attempt, 2));  // both claim with the same uid: accepted
  const auto reports = events_.reports();
  for (const auto& rep : reports) EXPECT_TRUE(rep.answer.isOk()) << rep.answer.toString();
}

TEST_F(K8sTest, RetriesOn429And5xx) {
  auto d = make();
  server_->failNext({429, 503, 500});
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  EXPECT_TRUE(server_->pod(kNs, podOf(r)).has_value());
  server_->failNext(std::vector<int>(10, 503));
  auto r2 = requestOf(attemptOf("d", "r", "t2"), 1);
  events_.makeCurrent(r2.attempt);
  auto out = d->dispatch(r2);
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable) << "gives up after its tries";
  EXPECT_NE(out.status().message().find("503"), std::string::npos) << out.status().message();
}

TEST_F(K8sTest, PhaseChangesAreReportedAndFinishedPodsDeletedAfterTheirLogIsSaved) {
  auto d = make({{"delete_finished_after_s", std::int64_t{1}}});
  auto ok = requestOf(attemptOf("d", "r", "ok"), 3);
  auto bad = requestOf(attemptOf("d", "r", "bad"), 3);
  EXPECT_EQ(dispatch(*d, ok), DispatchOutcome::kStarted);
  EXPECT_EQ(dispatch(*d, bad), DispatchOutcome::kStarted);
  server_->setPhase(kNs, podOf(ok), "Running");
  server_->setPhase(kNs, podOf(bad), "Running");
  ASSERT_TRUE(events_.waitCount(Kind::kHeartbeat, ok.attempt, 2)) << "Running pods are heartbeated";
  server_->setLog(kNs, podOf(ok), "line 1\nline 2\n");
  server_->setPhase(kNs, podOf(ok), "Succeeded", 0);
  server_->setLog(kNs, podOf(bad), "boom\n");
  server_->setPhase(kNs, podOf(bad), "Failed", 3);
  auto f1 = events_.waitFinished(ok.attempt);
  auto f2 = events_.waitFinished(bad.attempt);
  ASSERT_TRUE(f1 && f2);
  EXPECT_TRUE(f1->outcome.success);
  EXPECT_TRUE(f1->answer.isOk());
  EXPECT_FALSE(f2->outcome.success);
  EXPECT_EQ(f2->outcome.exit_code, 3);
  EXPECT_EQ(f2->outcome.message, "exit code 3");
  EXPECT_TRUE(server_->waitPod(kNs, podOf(ok), false, 5000)) << "deleted after delete_finished_after_s";
  EXPECT_TRUE(server_->waitPod(kNs, podOf(bad), false, 5000));
  const std::string saved = readText(dk::attemptLogPath(scratch_ / "logs", ok.attempt, 3));
  EXPECT_NE(saved.find("leoflow: ==== attempt d/r/ok try 1"), std::string::npos) << saved;
  EXPECT_NE(saved.find("line 1\nline 2\n"), std::string::npos) << saved;
  EXPECT_NE(saved.find("leoflow: outcome success"), std::string::npos) << saved;
  const std::string saved_bad = readText(dk::attemptLogPath(scratch_ / "logs", bad.attempt, 3));
  EXPECT_NE(saved_bad.find("leoflow: exit code 3"), std::string::npos) << saved_bad;
  EXPECT_TRUE(waitUntil([&] { return d->freeCapacity() == 64; }));
  EXPECT_TRUE(d->heldAttempts().empty());
}

// The attempt log's layout is the one dispatcher-local and inline-http write (plugins/attempt-log): an
// id whose encoding is over 180 bytes is cut at 160 and ends in "%%" and its FNV-1a hash, so a
// person finds a long task's log under the same name whichever plugin ran it.
TEST_F(K8sTest, AnOverLongTaskIdsLogIsSavedUnderTheNameEveryPluginGivesIt) {
  auto d = make({{"delete_finished_after_s", std::int64_t{1}}});
  auto r = requestOf(attemptOf("d", "r", std::string(200, 'a')), 3);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  server_->setLog(kNs, podOf(r), "long\n");
  server_->setPhase(kNs, podOf(r), "Succeeded", 0);
  ASSERT_TRUE(events_.waitFinished(r.attempt));
  ASSERT_TRUE(server_->waitPod(kNs, podOf(r), false, 5000)) << "deleted once its log is saved";
  const auto path = scratch_ / "logs" / "d" / "r" / "3" / (std::string(160, 'a') + "%%96245ce14f7a5b0d") / "1.log";
  const std::string saved = readText(path);
  EXPECT_NE(saved.find("long\n"), std::string::npos) << path;
}

TEST_F(K8sTest, WatchResumesFromItsResourceVersionAndListsAgainOn410) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  ASSERT_TRUE(waitUntil([&] { return server_->count("GET", "watch") >= 1; }));
  server_->setPhase(kNs, podOf(r), "Running");
  ASSERT_TRUE(events_.waitCount(Kind::kHeartbeat, r.attempt, 1));
  const int lists = server_->count("GET", "list");
  // A dropped watch resumes from the last version it saw, without listing again.
  server_->dropWatches();
  ASSERT_TRUE(waitUntil([&] { return server_->count("GET", "watch") >= 2; }));
  const auto versions = server_->watchVersions();
  EXPECT_NE(versions.back(), "");
  EXPECT_GT(std::stoll(versions.back()), std::stoll(versions.front()));
  EXPECT_EQ(server_->count("GET", "list"), lists);
  // Compacted: the watch meets 410 and the dispatcher lists again, then sees the change.
  server_->compact();
  server_->dropWatches();
  ASSERT_TRUE(waitUntil([&] { return server_->count("GET", "list") > lists; }));
  server_->setPhase(kNs, podOf(r), "Succeeded", 0);
  auto f = events_.waitFinished(r.attempt);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->outcome.success);
}

TEST_F(K8sTest, ReportsOnlyForTheAttemptThePodBelongsTo) {
  auto d = make();
  auto try1 = requestOf(attemptOf("d", "r", "t", 1), 5);
  auto try2 = requestOf(attemptOf("d", "r", "t", 2), 5);
  EXPECT_EQ(dispatch(*d, try1), DispatchOutcome::kStarted);
  server_->setPhase(kNs, podOf(try1), "Running");
  ASSERT_TRUE(events_.waitCount(Kind::kRunning, try1.attempt, 1));
  EXPECT_EQ(dispatch(*d, try2), DispatchOutcome::kStarted);  // the retry supersedes try 1
  EXPECT_NE(podOf(try1), podOf(try2));
  // Try 1's pod is no longer current: its heartbeat is refused and the pod deleted.
  EXPECT_TRUE(server_->waitPod(kNs, podOf(try1), false, 5000));
  server_->setPhase(kNs, podOf(try2), "Failed", 2);
  auto f = events_.waitFinished(try2.attempt);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->outcome.exit_code, 2);
  EXPECT_EQ(f->execution_id, (*server_->pod(kNs, podOf(try2)))["metadata"]["uid"]);
  EXPECT_EQ(events_.count(Kind::kFinished, try1.attempt, false), 0) << "nothing about try 1's end";
  for (const auto& rep : events_.reports()) {
    if (rep.kind == Kind::kFinished) {
      EXPECT_EQ(rep.attempt, try2.attempt);
    }
  }
}

TEST_F(K8sTest, OutOfBandDeletionFailsTheAttempt) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  server_->setPhase(kNs, podOf(r), "Running");
  ASSERT_TRUE(events_.waitCount(Kind::kRunning, r.attempt, 1));
  ASSERT_TRUE(server_->deleteOutOfBand(kNs, podOf(r)));
  auto f = events_.waitFinished(r.attempt);
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->outcome.success);
  EXPECT_NE(f->outcome.message.find("deleted out of band"), std::string::npos) << f->outcome.message;
  EXPECT_TRUE(waitUntil([&] { return d->heldAttempts().empty(); }));
}

TEST_F(K8sTest, PendingPastTheTimeoutIsDeletedAndFailed) {
  auto d = make({{"pending_timeout_s", std::int64_t{1}}});
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  server_->setPhase(kNs, podOf(r), "Pending", std::nullopt, "ImagePullBackOff");
  auto f = events_.waitFinished(r.attempt, 10000);
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->outcome.success);
  EXPECT_NE(f->outcome.message.find("Pending for more than 1 s"), std::string::npos) << f->outcome.message;
  EXPECT_NE(f->outcome.message.find("ImagePullBackOff"), std::string::npos) << f->outcome.message;
  EXPECT_TRUE(server_->waitPod(kNs, podOf(r), false, 5000));
}

TEST_F(K8sTest, ExecutionTimeoutCountsFromTheContainersStart) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  r.task.execution_timeout_seconds = 1;
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // pulling the image: not counted
  EXPECT_EQ(events_.count(Kind::kFinished, r.attempt, false), 0);
  server_->setPhase(kNs, podOf(r), "Running");
  auto f = events_.waitFinished(r.attempt, 10000);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->outcome.message, "timed out after 1 s");
  EXPECT_TRUE(server_->waitPod(kNs, podOf(r), false, 5000));
}

TEST_F(K8sTest, ExecutionTimeoutAfterALongPendingCountsTheWholeTimeoutFromStartedAt) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  r.task.execution_timeout_seconds = 3;
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  server_->setPhase(kNs, podOf(r), "Pending", std::nullopt, "ErrImagePull");
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));  // longer than the whole timeout
  EXPECT_EQ(events_.count(Kind::kFinished, r.attempt, false), 0);
  const auto started = std::chrono::steady_clock::now();
  server_->setPhase(kNs, podOf(r), "Running");  // startedAt: now (whole seconds, as a kubelet writes it)
  const auto pod = server_->pod(kNs, podOf(r));
  ASSERT_TRUE(pod);
  EXPECT_TRUE((*pod)["status"]["containerStatuses"][0]["state"]["running"].contains("startedAt"));
  auto f = events_.waitFinished(r.attempt, 10000);
  ASSERT_TRUE(f);
  const auto ran = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(f->outcome.message, "timed out after 3 s");
  // startedAt has whole seconds: at most 1 s of the timeout may look spent already.
  EXPECT_GE(ran, std::chrono::milliseconds(1900)) << "the Pending time was not counted";
  EXPECT_LT(ran, std::chrono::milliseconds(6000));
  EXPECT_TRUE(server_->waitPod(kNs, podOf(r), false, 5000));
}

TEST_F(K8sTest, ExecutionTimeoutFallsBackToFirstSeenRunningWithoutStartedAt) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  r.task.execution_timeout_seconds = 1;
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto started = std::chrono::steady_clock::now();
  server_->setRunning(kNs, podOf(r), std::nullopt);
  auto f = events_.waitFinished(r.attempt, 10000);
  ASSERT_TRUE(f);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(950));
  EXPECT_EQ(f->outcome.message, "timed out after 1 s");
}

TEST_F(K8sTest, AfterAnAdoptionTheExecutionTimeoutStillCountsFromTheContainersStart) {
  constexpr int kTimeout = 6;
  constexpr int kBefore = 3;  // the container ran this long before the next scheduler adopted it
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  r.task.execution_timeout_seconds = kTimeout;
  const auto container_start = std::chrono::system_clock::now() - std::chrono::seconds(kBefore);
  {
    auto d = make();
    EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
    server_->setRunning(kNs, podOf(r), container_start);
    ASSERT_TRUE(events_.waitCount(Kind::kRunning, r.attempt, 1));
    d->shutdown();
  }
  const auto adopted = std::chrono::steady_clock::now();
  auto d = make();  // the next scheduler
  auto f = events_.waitFinished(r.attempt, 15000);
  ASSERT_TRUE(f);
  const auto after = std::chrono::steady_clock::now() - adopted;
  EXPECT_EQ(f->outcome.message, "timed out after 6 s");
  // A count restarted at the adoption would end at >= kTimeout s; from startedAt, kTimeout - kBefore.
  EXPECT_GE(after, std::chrono::milliseconds((kTimeout - kBefore - 1) * 1000 - 500));
  EXPECT_LT(after, std::chrono::milliseconds((kTimeout - kBefore) * 1000 + 1500))
      << "the timeout restarted at the adoption";
  EXPECT_TRUE(server_->waitPod(kNs, podOf(r), false, 5000));
}

TEST_F(K8sTest, StopDeletesThePodWithTheGraceAndReportsNothingMore) {
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  server_->setPhase(kNs, podOf(r), "Running");
  ASSERT_TRUE(events_.waitCount(Kind::kRunning, r.attempt, 1));
  EXPECT_TRUE(d->stop(attemptOf("d", "r", "unknown")).isOk());
  EXPECT_TRUE(d->stop(r.attempt).isOk());
  EXPECT_TRUE(d->heldAttempts().empty());
  ASSERT_TRUE(server_->waitPod(kNs, podOf(r), false, 5000));
  const auto dels = server_->deletions();
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].grace_seconds, 7);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(events_.count(Kind::kFinished, r.attempt, false), 0);
}

TEST_F(K8sTest, LogsAreReadThroughTheApiThenFromTheSavedCopy) {
  auto d = make({{"delete_finished_after_s", std::int64_t{1}}});
  auto reader = makeReader();
  auto r = requestOf(attemptOf("d", "r", "t"), 77);
  LogQuery q{r.attempt, 77, "", 0, 1 << 20};
  EXPECT_EQ(reader->read(q).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  server_->setPhase(kNs, podOf(r), "Running");
  server_->setLog(kNs, podOf(r), "working\n");
  auto live = reader->read(q);
  ASSERT_TRUE(live.isOk()) << live.status().toString();
  EXPECT_NE(live->text.find("working\n"), std::string::npos);
  EXPECT_FALSE(live->complete);
  server_->setLog(kNs, podOf(r), "working\ndone\n");
  server_->setPhase(kNs, podOf(r), "Succeeded", 0);
  ASSERT_TRUE(events_.waitFinished(r.attempt));
  ASSERT_TRUE(server_->waitPod(kNs, podOf(r), false, 5000));
  auto saved = reader->read(q);
  ASSERT_TRUE(saved.isOk()) << saved.status().toString();
  EXPECT_NE(saved->text.find("working\ndone\n"), std::string::npos);
  EXPECT_NE(saved->text.find("leoflow: ==== end of execution"), std::string::npos);
  EXPECT_TRUE(saved->complete);
  LogQuery tail = q;
  tail.offset = saved->next_offset - 10;
  auto end = reader->read(tail);
  ASSERT_TRUE(end.isOk());
  EXPECT_EQ(end->text.size(), 10u);
  EXPECT_TRUE(end->complete);
}

TEST_F(K8sTest, AdoptsTheInstallationsPodsAfterARestart) {
  auto running = requestOf(attemptOf("d", "r", "running"), 2);
  auto finished = requestOf(attemptOf("d", "r", "finished"), 2);
  std::string uid;
  {
    auto d = make();
    EXPECT_EQ(dispatch(*d, running), DispatchOutcome::kStarted);
    EXPECT_EQ(dispatch(*d, finished), DispatchOutcome::kStarted);
    server_->setPhase(kNs, podOf(running), "Running");
    ASSERT_TRUE(events_.waitCount(Kind::kRunning, running.attempt, 1));
    ASSERT_TRUE(events_.waitCount(Kind::kRunning, finished.attempt, 1));
    uid = events_.claimOf(running.attempt);
    d->shutdown();
  }
  server_->setPhase(kNs, podOf(finished), "Succeeded", 0);  // while no scheduler watched
  auto d = make();  // the next scheduler
  auto f = events_.waitFinished(finished.attempt);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->answer.isOk());
  EXPECT_TRUE(f->outcome.success);
  const int beats = events_.count(Kind::kHeartbeat, running.attempt);
  ASSERT_TRUE(events_.waitCount(Kind::kHeartbeat, running.attempt, beats + 2)) << "the running pod is heartbeated";
  EXPECT_EQ(events_.claimOf(running.attempt), uid);
  EXPECT_EQ(d->dispatch(running).value(), DispatchOutcome::kAlreadyRunning);
  EXPECT_EQ(server_->count("POST", "create"), 2) << "nothing created twice";
  EXPECT_EQ(d->heldAttempts(), std::vector<AttemptRef>{running.attempt});
}

TEST_F(K8sTest, LongIdsAreHashedIntoValidNamesAndLabels) {
  auto d = make({{"installation", std::string("An Installation/With Spaces")}});
  const std::string long_task(200, 'T');
  auto a = attemptOf("dag." + std::string(90, 'd'), "scheduled__2026-01-01T00:00:00+00:00", long_task, 12);
  auto r = requestOf(a, 922337203685477580, "true");
  r.tenant = "tenant-" + std::string(60, 'x');
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  const std::string name = podOf(r);
  EXPECT_LE(name.size(), 63u);
  EXPECT_TRUE(dk::isDns1123Label(name)) << name;
  const auto pod = server_->pod(kNs, name);
  ASSERT_TRUE(pod);
  for (const auto& [k, v] : (*pod)["metadata"]["labels"].items()) {
    EXPECT_TRUE(dk::isValidLabelValue(v.get<std::string>())) << k << "=" << v;
  }
  EXPECT_EQ((*pod)["metadata"]["annotations"]["leoflow.io/task-id"], long_task);
  EXPECT_EQ((*pod)["metadata"]["annotations"]["leoflow.io/run-id"], a.run.run_id);
  // Distinct ids give distinct names and labels.
  EXPECT_NE(dk::podName(attemptOf("d", "r", long_task), 1), dk::podName(attemptOf("d", "r", long_task + "U"), 1));
  EXPECT_NE(dk::podName(attemptOf("d", "r1", "t"), 0), dk::podName(attemptOf("d", "r2", "t"), 0));
  EXPECT_EQ(dk::podName(attemptOf("d", "r1", "t"), 0), dk::podName(attemptOf("d", "r1", "t"), 0));
  EXPECT_NE(dk::labelValue(std::string(70, 'a')), dk::labelValue(std::string(71, 'a')));
  ASSERT_TRUE(events_.waitCount(Kind::kRunning, a, 1)) << "found again through the hashed installation label";
}

TEST_F(K8sTest, CapacityCountsLivePods) {
  auto d = make({{"max_parallel", std::int64_t{2}}});
  EXPECT_EQ(d->freeCapacity(), 2u);
  auto r1 = requestOf(attemptOf("d", "r", "a"), 1);
  auto r2 = requestOf(attemptOf("d", "r", "b"), 1);
  auto r3 = requestOf(attemptOf("d", "r", "c"), 1);
  EXPECT_EQ(dispatch(*d, r1), DispatchOutcome::kStarted);
  EXPECT_EQ(d->freeCapacity(), 1u);
  EXPECT_EQ(dispatch(*d, r2), DispatchOutcome::kStarted);
  EXPECT_EQ(d->freeCapacity(), 0u);
  EXPECT_EQ(dispatch(*d, r3), DispatchOutcome::kAtCapacity);
  server_->setPhase(kNs, podOf(r1), "Succeeded", 0);
  ASSERT_TRUE(waitUntil([&] { return d->freeCapacity() == 1; }));
  d->shutdown();
  EXPECT_EQ(d->freeCapacity(), 0u);
  EXPECT_EQ(dispatch(*d, r3), DispatchOutcome::kAtCapacity);
}

TEST_F(K8sTest, AWrongTokenIsAClearError) {
  writeKubeconfig(kubeconfig_, {server_->url(), testPki().ca_crt.string(), "", "wrong-token", kNs});
  try {
    make();
    FAIL() << "create() accepted a wrong token";
  } catch (const UnavailableError& e) {
    FAIL() << "not retryable: " << e.what();
  } catch (const std::exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("401 Unauthorized"), std::string::npos) << what;
    EXPECT_NE(what.find("token"), std::string::npos) << what;
    EXPECT_NE(what.find(kubeconfig_.string()), std::string::npos) << what;
  }
}

TEST_F(K8sTest, AnUntrustedCertificateIsRefused) {
  writeKubeconfig(kubeconfig_, {server_->url(), testPki().other_ca_crt.string(), "", kToken, kNs});
  try {
    make();
    FAIL() << "create() trusted a certificate its CA did not sign";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("certificate"), std::string::npos) << what;
  }
  EXPECT_EQ(server_->count("GET", "list"), 0);
}

TEST_F(K8sTest, CertificateAuthorityDataAndTheContextsNamespace) {
  writeKubeconfig(kubeconfig_, {server_->url(), "", readText(testPki().ca_crt), kToken, "from-context"});
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  EXPECT_TRUE(server_->pod("from-context", podOf(r)).has_value());
}

TEST_F(K8sTest, InClusterServiceAccount) {
  const auto sa = scratch_ / "sa";
  std::filesystem::create_directories(sa);
  std::ofstream(sa / "token") << kToken << "\n";
  std::filesystem::copy_file(testPki().ca_crt, sa / "ca.crt");
  std::ofstream(sa / "namespace") << "in-cluster-ns";
  ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", std::to_string(server_->port()).c_str(), 1);
  auto config = baseConfig();
  config.erase("kubeconfig");
  config["service_account_dir"] = sa.string();
  plugins::dispatcher_k8s::K8sDispatcherFactory factory;
  auto d = factory.create(ConfigView("dispatcher.config", config), *context_);
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  EXPECT_TRUE(server_->pod("in-cluster-ns", podOf(r)).has_value());
}

}  // namespace
}  // namespace leoflow::testing::k8s

namespace leoflow::testing::k8s {
namespace {

using nlohmann::json;

std::map<std::string, std::string> templateEnvOf(const json& pod) {
  std::map<std::string, std::string> out;
  for (const auto& e : pod["spec"]["containers"][0]["env"]) out[e["name"]] = e["value"];
  return out;
}

TEST_F(K8sTest, APodTemplateIsMergedUnderTheGeneratedPod) {
  const auto tmpl = scratch_ / "pod-template.yaml";
  std::ofstream(tmpl) << R"(apiVersion: v1
kind: Pod
metadata:
  labels:
    team: data
  annotations:
    note: "from the template"
spec:
  restartPolicy: Always
  imagePullSecrets:
    - name: registry
  securityContext:
    runAsUser: 1000
    runAsNonRoot: true
  volumes:
    - name: scratch
      emptyDir: {}
  containers:
    - name: task
      image: ignored:latest
      envFrom:
        - secretRef:
            name: task-secrets
      env:
        - name: FROM_TEMPLATE
          value: "yes"
        - name: A
          value: "template"
      volumeMounts:
        - name: scratch
          mountPath: /scratch
    - name: sidecar
      image: envoy:1
)";
  auto d = make({{"pod_template_file", tmpl.string()}});
  auto r = requestOf(attemptOf("d", "r", "t"), 1, "echo x");
  r.task.env = {{"A", "task"}};
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  const auto pod = server_->pod(kNs, podOf(r));
  ASSERT_TRUE(pod);
  const json& spec = (*pod)["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Never") << "the generated value wins";
  EXPECT_EQ(spec["securityContext"]["runAsUser"], 1000);
  EXPECT_EQ(spec["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(spec["imagePullSecrets"][0]["name"], "registry");
  ASSERT_EQ(spec["containers"].size(), 2u);
  const json& c = spec["containers"][0];
  EXPECT_EQ(c["image"], "busybox:1.36");
  EXPECT_EQ(c["envFrom"][0]["secretRef"]["name"], "task-secrets");
  EXPECT_EQ(c["volumeMounts"][0]["mountPath"], "/scratch");
  const auto env = templateEnvOf(*pod);
  EXPECT_EQ(env.at("FROM_TEMPLATE"), "yes");
  EXPECT_EQ(env.at("A"), "task");
  EXPECT_EQ(spec["containers"][1]["name"], "sidecar");
  EXPECT_EQ((*pod)["metadata"]["labels"]["team"], "data");
  EXPECT_EQ((*pod)["metadata"]["labels"]["leoflow.io/installation"], "test");
  EXPECT_EQ((*pod)["metadata"]["annotations"]["note"], "from the template");
  EXPECT_EQ((*pod)["metadata"]["name"], podOf(r));
  ASSERT_TRUE(events_.waitCount(Kind::kRunning, r.attempt, 1));

  std::ofstream(scratch_ / "not-a-pod.yaml") << "kind: Deployment\n";
  EXPECT_THROW(make({{"pod_template_file", (scratch_ / "missing.yaml").string()}}), std::invalid_argument);
  EXPECT_THROW(make({{"pod_template_file", (scratch_ / "not-a-pod.yaml").string()}}), std::invalid_argument);
}

}  // namespace
}  // namespace leoflow::testing::k8s

namespace leoflow::testing::k8s {
namespace {

TEST_F(K8sTest, AnExecCredentialPluginProvidesTheToken) {
  const auto plugin = scratch_ / "credential-plugin.sh";
  std::ofstream(plugin) << "#!/bin/sh\n"
                           "echo \"$1 $LEOFLOW_EXEC_CHECK\" > \"$(dirname \"$0\")/exec-ran\"\n"
                           "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
                           "\"status\":{\"token\":\"%s\"}}' " << kToken << "\n";
  std::filesystem::permissions(plugin, std::filesystem::perms::owner_all);
  std::ofstream(kubeconfig_) << "apiVersion: v1\nkind: Config\ncurrent-context: eks\nclusters:\n- name: c\n  cluster:\n"
                             << "    server: " << server_->url() << "\n    certificate-authority: " << testPki().ca_crt.string()
                             << "\ncontexts:\n- name: eks\n  context: {cluster: c, user: u, namespace: " << kNs << "}\n"
                             << "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                             << "      command: " << plugin.string() << "\n      args: [\"get-token\"]\n"
                             << "      env:\n      - name: LEOFLOW_EXEC_CHECK\n        value: \"from-kubeconfig\"\n";
  auto d = make();
  auto r = requestOf(attemptOf("d", "r", "t"), 1);
  EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  EXPECT_TRUE(server_->pod(kNs, podOf(r)).has_value());
  EXPECT_EQ(readText(scratch_ / "exec-ran"), "get-token from-kubeconfig\n");
}

}  // namespace
}  // namespace leoflow::testing::k8s
