// dispatcher-k8s authentication against the emulated API server: client certificates (files and
// -data forms) with a server that asks for them as kube-apiserver does and with one that requires
// them in the TLS handshake, and the exec credential plugin's token cache (status.expirationTimestamp,
// a fetch again after a 401), counted by the plugin script itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "factory.h"
#include "k8s_test_support.h"
#include "kube_client.h"
#include "kubeconfig.h"

namespace leoflow::testing::k8s {
namespace {

namespace dk = leoflow::plugins::dispatcher_k8s;

int countOf(const std::vector<std::string>& v, const std::string& what) {
  return static_cast<int>(std::count(v.begin(), v.end(), what));
}

/// make()'s error (a configuration error, not a retryable UnavailableError), or "" when it worked.
std::string createError(const std::function<std::unique_ptr<Dispatcher>()>& create) {
  try {
    create();
  } catch (const UnavailableError& e) {
    return std::string("UnavailableError (retryable): ") + e.what();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

/// createError() of a TLS 1.3 handshake the server refuses. The refusal comes after the client's
/// side of the handshake is done, as an alert followed by the server closing the connection. Should the
/// close overtake the alert (a reset: "getpeername() failed ... not connected", a retryable connection
/// failure — the emulated server drains the connection after its alert so that it does not), the host
/// would retry, as against a real API server, and the next try reads the alert. So does this.
std::string handshakeRefusal(const std::function<std::unique_ptr<Dispatcher>()>& create) {
  std::string what;
  for (int attempt = 0; attempt < 5; ++attempt) {
    what = createError(create);
    if (what.find("retryable") == std::string::npos || what.find("not connected") == std::string::npos) break;
  }
  return what;
}

class K8sClientCertTest : public K8sTest {
 protected:
  /// A kubeconfig whose user has no token, only `user_fields`.
  void writeCertKubeconfig(const std::map<std::string, std::string>& user_fields) {
    writeKubeconfig(kubeconfig_, {server_->url(), testPki().ca_crt.string(), "", "", kNs}, user_fields);
  }
  std::map<std::string, std::string> files(const std::filesystem::path& crt, const std::filesystem::path& key) {
    return {{"client-certificate", crt.string()}, {"client-key", key.string()}};
  }
  void expectPodCreated() {
    auto d = make();
    auto r = requestOf(attemptOf("d", "r", "t"), 1);
    EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
    EXPECT_TRUE(server_->pod(kNs, podOf(r)).has_value());
    ASSERT_TRUE(events_.waitCount(Kind::kRunning, r.attempt, 1));
    d->shutdown();
    const auto auths = server_->authentications();
    ASSERT_FALSE(auths.empty());
    EXPECT_EQ(countOf(auths, "x509:leoflow-scheduler"), static_cast<int>(auths.size()))
        << "every request authenticated by the client certificate";
  }
};

TEST_F(K8sClientCertTest, AClientCertificateFromFilesAuthenticates) {
  useClientCertificates(ClientCerts::kRequest);
  // Relative paths are the kubeconfig's directory's, as kubectl reads them.
  std::filesystem::create_directories(scratch_ / "pki");
  std::filesystem::copy_file(testPki().client_crt, scratch_ / "pki" / "me.crt");
  std::filesystem::copy_file(testPki().client_key, scratch_ / "pki" / "me.key");
  writeCertKubeconfig({{"client-certificate", "pki/me.crt"}, {"client-key", "pki/me.key"}});
  expectPodCreated();
}

TEST_F(K8sClientCertTest, AClientCertificateFromDataAuthenticates) {
  useClientCertificates(ClientCerts::kRequest);
  writeCertKubeconfig({{"client-certificate-data", base64(readText(testPki().client_crt))},
                       {"client-key-data", base64(readText(testPki().client_key))}});
  expectPodCreated();
}

TEST_F(K8sClientCertTest, AServerRequiringTheCertificateInTheHandshakeAcceptsIt) {
  useClientCertificates(ClientCerts::kRequire);
  writeCertKubeconfig(files(testPki().client_crt, testPki().client_key));
  expectPodCreated();
}

TEST_F(K8sClientCertTest, WithoutACertificateTheApiServerAnswers401NamingTheCause) {
  useClientCertificates(ClientCerts::kRequest);
  writeCertKubeconfig({});
  const std::string what = createError([&] { return make(); });
  EXPECT_NE(what.find("401 Unauthorized"), std::string::npos) << what;
  EXPECT_NE(what.find("no credentials were sent"), std::string::npos) << what;
  EXPECT_NE(what.find(kubeconfig_.string()), std::string::npos) << what;
  EXPECT_EQ(what.find("retryable"), std::string::npos) << what;
  ASSERT_FALSE(server_->authentications().empty());
  EXPECT_EQ(server_->authentications()[0], "refused: no client certificate");
  EXPECT_EQ(server_->count("GET", "list"), 0);
}

TEST_F(K8sClientCertTest, ACertificateFromAnotherCaIsRefusedWith401NamingTheCertificate) {
  useClientCertificates(ClientCerts::kRequest);
  writeCertKubeconfig(files(testPki().other_client_crt, testPki().other_client_key));
  const std::string what = createError([&] { return make(); });
  EXPECT_NE(what.find("401 Unauthorized"), std::string::npos) << what;
  EXPECT_NE(what.find("refused the client certificate " + testPki().other_client_crt.string()), std::string::npos)
      << what;
  EXPECT_EQ(what.find("retryable"), std::string::npos) << what;
  ASSERT_FALSE(server_->authentications().empty());
  EXPECT_EQ(server_->authentications()[0].rfind("refused: client certificate: unable to get local issuer", 0), 0u)
      << server_->authentications()[0];
  EXPECT_EQ(server_->count("GET", "list"), 0);
}

TEST_F(K8sClientCertTest, ACertificateFromAnotherCaWithAGoodTokenIsAuthenticatedByTheToken) {
  // kube-apiserver's union authenticator: a certificate that fails to verify is not fatal.
  useClientCertificates(ClientCerts::kRequest);
  writeKubeconfig(kubeconfig_, {server_->url(), testPki().ca_crt.string(), "", kToken, kNs},
                  files(testPki().other_client_crt, testPki().other_client_key));
  auto d = make();
  const auto auths = server_->authentications();
  ASSERT_FALSE(auths.empty());
  EXPECT_EQ(auths[0], "token");
}

TEST_F(K8sClientCertTest, TheHandshakeRefusingNoCertificateOrAnotherCasIsAClearError) {
  useClientCertificates(ClientCerts::kRequire);
  writeCertKubeconfig({});
  std::string what = handshakeRefusal([&] { return make(); });
  EXPECT_NE(what.find("requires a client certificate and none was sent"), std::string::npos) << what;
  EXPECT_NE(what.find(kubeconfig_.string()), std::string::npos) << what;
  EXPECT_EQ(what.find("retryable"), std::string::npos) << what;

  writeCertKubeconfig(files(testPki().other_client_crt, testPki().other_client_key));
  what = handshakeRefusal([&] { return make(); });
  EXPECT_NE(what.find("refused the client certificate " + testPki().other_client_crt.string() + " in the TLS handshake"),
            std::string::npos)
      << what;
  EXPECT_EQ(what.find("retryable"), std::string::npos) << what;
  EXPECT_TRUE(server_->authentications().empty()) << "no request got through the handshake";
  EXPECT_EQ(server_->count("GET", "list"), 0);
}

TEST_F(K8sClientCertTest, AMismatchedOrMissingKeyIsAConfigurationError) {
  useClientCertificates(ClientCerts::kRequest);
  writeCertKubeconfig(files(testPki().client_crt, testPki().other_client_key));
  std::string what = createError([&] { return make(); });
  EXPECT_NE(what.find("the client certificate or key could not be used (" + testPki().client_crt.string()), std::string::npos)
      << what;
  EXPECT_EQ(what.find("retryable"), std::string::npos) << what;

  writeCertKubeconfig({{"client-certificate", testPki().client_crt.string()}});
  what = createError([&] { return make(); });
  EXPECT_NE(what.find("client-certificate without client-key"), std::string::npos) << what;
}

// ---------------------------------------------------------------------------------------------
// The exec credential plugin's token cache.

class K8sExecTest : public K8sTest {
 protected:
  void SetUp() override {
    K8sTest::SetUp();
    // Counts its runs (a line each in exec-count); prints the token of exec-token-<run> if that
    // file exists, else exec-token's; and exec-expiry's expirationTimestamp when it is not empty.
    const auto plugin = scratch_ / "counting-plugin.sh";
    std::ofstream(plugin)
        << "#!/bin/sh\n"
           "d=\"$(dirname \"$0\")\"\n"
           "echo run >> \"$d/exec-count\"\n"
           "n=$(wc -l < \"$d/exec-count\")\n"
           "tok=$(cat \"$d/exec-token\")\n"
           "[ -f \"$d/exec-token-$n\" ] && tok=$(cat \"$d/exec-token-$n\")\n"
           "exp=$(cat \"$d/exec-expiry\" 2>/dev/null)\n"
           "if [ -n \"$exp\" ]; then exp=\",\\\"expirationTimestamp\\\":\\\"$exp\\\"\"; fi\n"
           "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
           "\"status\":{\"token\":\"%s\"%s}}' \"$tok\" \"$exp\"\n";
    std::filesystem::permissions(plugin, std::filesystem::perms::owner_all);
    std::ofstream(scratch_ / "exec-token") << kToken;
    std::ofstream(kubeconfig_) << "apiVersion: v1\nkind: Config\ncurrent-context: eks\nclusters:\n- name: c\n  cluster:\n"
                               << "    server: " << server_->url() << "\n    certificate-authority: " << testPki().ca_crt.string()
                               << "\ncontexts:\n- name: eks\n  context: {cluster: c, user: u, namespace: " << kNs << "}\n"
                               << "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                               << "      command: " << plugin.string() << "\n";
    base_ = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    now_ = base_;
  }
  int runs() const {
    std::ifstream in(scratch_ / "exec-count");
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }
  void expiry(const std::string& rfc3339) { std::ofstream(scratch_ / "exec-expiry") << rfc3339; }
  /// A client on the test's clock (now_), through the kubeconfig.
  std::unique_ptr<dk::KubeClient> client() {
    return std::make_unique<dk::KubeClient>(dk::loadKubeconfig(kubeconfig_, ""), 1000.0, 1000, 10, context_->logger(),
                                            [this] { return now_.load(); });
  }
  /// One request at `at` (seconds after base_); its HTTP status.
  long requestAt(dk::KubeClient& c, int at) {
    now_ = base_ + std::chrono::seconds(at);
    auto r = c.call("GET", dk::podsPath(kNs));
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? r->status : 0;
  }

  std::chrono::system_clock::time_point base_;
  std::atomic<std::chrono::system_clock::time_point> now_;
};

TEST_F(K8sExecTest, ATokenIsReusedUntil30sBeforeItsExpirationTimestamp) {
  expiry(FakeApiServer::rfc3339(base_ + std::chrono::hours(1)));
  auto c = client();
  EXPECT_EQ(requestAt(*c, 0), 200);
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(requestAt(*c, 61), 200);  // past the minute a token without an expiry is kept
  EXPECT_EQ(requestAt(*c, 1800), 200);
  EXPECT_EQ(requestAt(*c, 3600 - 31), 200);
  EXPECT_EQ(runs(), 1) << "the token is valid for an hour: no fetch before 30 s ahead of its expiry";
  expiry(FakeApiServer::rfc3339(base_ + std::chrono::hours(2)));
  EXPECT_EQ(requestAt(*c, 3600 - 30), 200);
  EXPECT_EQ(runs(), 2);
  EXPECT_EQ(requestAt(*c, 3600 + 600), 200);
  EXPECT_EQ(runs(), 2) << "the new token is reused until 30 s before its own expiry";
}

TEST_F(K8sExecTest, FractionalSecondsAndOffsetsAreRead) {
  // 2 minutes from base_, written with an offset of +02:00 and fractional seconds.
  const auto at = base_ + std::chrono::minutes(2) + std::chrono::hours(2);
  std::string text = FakeApiServer::rfc3339(at);  // "...Z"
  text = text.substr(0, text.size() - 1) + ".250+02:00";
  expiry(text);
  auto c = client();
  EXPECT_EQ(requestAt(*c, 0), 200);
  EXPECT_EQ(requestAt(*c, 89), 200);
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(requestAt(*c, 91), 200);  // 120.25 - 30 = 90.25
  EXPECT_EQ(runs(), 2);
}

TEST_F(K8sExecTest, WithoutAnExpiryTheTokenIsFetchedAgainEveryMinute) {
  auto c = client();
  EXPECT_EQ(requestAt(*c, 0), 200);
  EXPECT_EQ(requestAt(*c, 59), 200);
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(requestAt(*c, 60), 200);
  EXPECT_EQ(runs(), 2);
  // An expiry that is not RFC 3339 counts as none (with a warning).
  expiry("tomorrow");
  EXPECT_EQ(requestAt(*c, 120), 200);
  EXPECT_EQ(runs(), 3);
  EXPECT_EQ(requestAt(*c, 179), 200);
  EXPECT_EQ(runs(), 3);
}

TEST_F(K8sExecTest, AShortLivedTokenIsKeptForHalfItsLifetimeAndAnExpiredOneForOneRequest) {
  expiry(FakeApiServer::rfc3339(base_ + std::chrono::seconds(10)));
  auto c = client();
  EXPECT_EQ(requestAt(*c, 0), 200);
  EXPECT_EQ(requestAt(*c, 4), 200);
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(requestAt(*c, 5), 200);  // 10 s to live: the margin is half of it
  EXPECT_EQ(runs(), 2);
  // Now the plugin answers with a token that has already expired (at 10 s): each request fetches.
  EXPECT_EQ(requestAt(*c, 11), 200);
  EXPECT_EQ(runs(), 3);
  EXPECT_EQ(requestAt(*c, 12), 200);
  EXPECT_EQ(runs(), 4);
}

TEST_F(K8sExecTest, A401FetchesTheTokenAgainDespiteItsExpiry) {
  expiry(FakeApiServer::rfc3339(base_ + std::chrono::hours(1)));
  std::ofstream(scratch_ / "exec-token-1") << "revoked-token";
  auto c = client();
  EXPECT_EQ(requestAt(*c, 0), 200) << "the 401 fetched a token again and the request was repeated";
  EXPECT_EQ(runs(), 2);
  EXPECT_EQ(requestAt(*c, 1), 200);
  EXPECT_EQ(runs(), 2);
  const auto auths = server_->authentications();
  ASSERT_EQ(auths.size(), 3u);
  EXPECT_EQ(auths[0], "refused: a wrong token");
  EXPECT_EQ(auths[1], "token");
}

TEST_F(K8sExecTest, TheDispatcherFetchesOnceForALongLivedToken) {
  expiry(FakeApiServer::rfc3339(base_ + std::chrono::hours(1)));
  std::ofstream(scratch_ / "exec-token-1") << "revoked-token";
  auto d = make();
  for (int i = 0; i < 5; ++i) {
    auto r = requestOf(attemptOf("d", "r", "t" + std::to_string(i)), 1);
    EXPECT_EQ(dispatch(*d, r), DispatchOutcome::kStarted);
  }
  EXPECT_EQ(server_->podNames(kNs).size(), 5u);
  d->shutdown();
  EXPECT_EQ(runs(), 2) << "one fetch, one more after the first token's 401; then the cached token";
}

}  // namespace
}  // namespace leoflow::testing::k8s
