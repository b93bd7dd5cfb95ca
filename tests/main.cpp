// Test runner: Catch2 v2 with one addition. Cases tagged [cuda] need a GPU, cases tagged [mpi] need mpirun
// (and a build with MPI); where that is missing they are not run, each is listed as skipped, and the closing
// line counts them:
//   N passed, N failed, N skipped
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include "engine/distributed/mpi_communicator.h"
#include "engine/storage.h"

namespace {

Catch::Totals g_totals;

class CountingListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;
  void testRunEnded(Catch::TestRunStats const& stats) override { g_totals = stats.totals; }
};

bool has_tag(const Catch::TestCaseInfo& info, const std::string& tag) {
  for (const std::string& t : info.tags)
    if (t == tag) return true;
  return false;
}

}  // namespace

CATCH_REGISTER_LISTENER(CountingListener)

int main(int argc, char** argv) {
  Catch::Session session;
  if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;

  // What each tag needs, and whether this machine has it.
  struct Requirement {
    const char* tag;
    bool present;
    const char* missing;
  };
  const Requirement requirements[] = {
      {"cuda", stgs::cuda_available(), "no CUDA device"},
      {"mpi", stgs::dist::mpi_built() && std::system("command -v mpirun >/dev/null 2>&1") == 0,
       "no MPI build or no mpirun"},
  };
  size_t skipped = 0;
  for (const Requirement& req : requirements) {
    if (req.present) continue;
    // Count the cases this run would have selected, then exclude them from every OR-group of the filter.
    const Catch::TestSpec& spec = session.config().testSpec();
    const bool filtered = session.config().hasTestFilters();
    for (const Catch::TestCase& tc : Catch::getRegistryHub().getTestCaseRegistry().getAllTests()) {
      if (!has_tag(tc, req.tag) || (filtered && !spec.matches(tc))) continue;
      if (!filtered && tc.isHidden()) continue;
      std::printf("SKIPPED (%s): %s\n", req.missing, tc.name.c_str());
      ++skipped;
    }
    const std::string exclude = std::string("~[") + req.tag + "]";
    Catch::ConfigData data = session.configData();
    // An OR-group ends at each ',' whether it came as its own argument or inside one ("[a],[b]"); a comma
    // escaped with a backslash belongs to a test name.
    std::vector<std::string> specs;
    for (const std::string& s : data.testsOrTags) {
      std::string group;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',' && (i == 0 || s[i - 1] != '\\')) {
          if (!group.empty()) specs.push_back(group);
          specs.push_back(exclude);
          specs.push_back(",");
          group.clear();
        } else {
          group += s[i];
        }
      }
      if (!group.empty()) specs.push_back(group);
    }
    specs.push_back(exclude);
    data.testsOrTags = specs;
    session.useConfigData(data);
  }

  const int failed_cases = session.run();
  std::printf("%llu passed, %llu failed, %zu skipped\n", (unsigned long long)g_totals.testCases.passed,
              (unsigned long long)g_totals.testCases.failed, skipped);
  return failed_cases == 0 ? 0 : 1;
}
