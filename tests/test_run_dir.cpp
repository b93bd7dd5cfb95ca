// Run directories, CSV tables, Ctrl-C handling and gnuplot figures (apps/run_dir.h, interrupt.h, plots.h).
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "apps/interrupt.h"
#include "apps/plots.h"
#include "apps/run_dir.h"
#include "engine/io/directory_lock.h"
#include "kernels/check.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::apps;
using stgs::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("run directory: unique names, log, JSON round trip, resume checks", "[app]") {
  TempDir tmp("rundir");
  const std::string root = (tmp.dir / "runs").string();
  const RunDir a = RunDir::create(root, "search");
  const RunDir b = RunDir::create(root, "search");  // same second: a suffix keeps them apart
  CHECK(a.path() != b.path());
  CHECK(fs::path(a.path()).filename().string().rfind("search-", 0) == 0);
  RunDir quiet = a;
  quiet.set_quiet(true);
  quiet.log("first line");
  quiet.log("second line");
  const std::string log = slurp(a.file("log.txt"));
  CHECK(log.find("] first line\n") != std::string::npos);
  CHECK(log.find("] second line\n") != std::string::npos);
  CHECK(log[0] == '[');

  REQUIRE_THROWS_WITH(RunDir::open(a.path()), Catch::Contains("has no config.json"));
  a.write_json("config.json", {{"lambda", 10}, {"name", "x"}});
  const RunDir reopened = RunDir::open(a.path());
  CHECK(reopened.read_json("config.json")["lambda"] == 10);
  REQUIRE_THROWS_WITH(RunDir::open((tmp.dir / "nope").string()), Catch::Contains("no such run directory"));
  a.write_text("config.json", "{\"a\": 1, \"a\": 2}");
  REQUIRE_THROWS_WITH(a.read_json("config.json"), Catch::Contains("duplicate key"));
}

TEST_CASE("directory lock: one holder at a time, released with its holder", "[app]") {
  testing::TempDir tmp("dirlock");
  {
    const DirectoryLock first(tmp.dir.string(), "stgs search");
    CHECK_THROWS_WITH(DirectoryLock(tmp.dir.string(), "stgs eval"),
                      Catch::Contains("stgs eval: '" + tmp.dir.string() + "' is in use by another stgs process (pid " +
                                      std::to_string(getpid()) + ")"));
  }
  CHECK_NOTHROW(DirectoryLock(tmp.dir.string(), "stgs search"));  // released when the first went away
  CHECK_THROWS_WITH(DirectoryLock((tmp.dir / "missing").string(), "stgs search"),
                    Catch::Contains("cannot create the lock file"));
}

TEST_CASE("CSV table: quoting, numbers, truncate, load errors", "[app]") {
  TempDir tmp("csv");
  CsvTable t({"epoch", "note", "loss"});
  t.add({"1", "plain", CsvTable::number(0.5)});
  t.add({"2", "with, comma and \"quote\"", CsvTable::number(1.0 / 3)});
  t.add_numbers({3, 4, NAN});
  const std::string path = (tmp.dir / "m.csv").string();
  t.save(path);
  CHECK(slurp(path) ==
        "epoch,note,loss\n1,plain,0.5\n2,\"with, comma and \"\"quote\"\"\",0.333333333\n3,4,nan\n");
  CsvTable back = CsvTable::load(path, {"epoch", "note", "loss"});
  REQUIRE(back.rows() == 3);
  CHECK(back.row(1)[1] == "with, comma and \"quote\"");
  back.truncate(1);
  CHECK(back.rows() == 1);
  REQUIRE_THROWS_WITH(CsvTable::load(path, {"epoch", "loss"}), Catch::Contains(path + ":1: unexpected header"));
  std::ofstream(path, std::ios::app) << "5,6\n";
  REQUIRE_THROWS_WITH(CsvTable::load(path, {"epoch", "note", "loss"}), Catch::Contains(path + ":5: 2 fields"));
  REQUIRE_THROWS_WITH(t.add({"1"}), Catch::Contains("1 fields for 3 columns"));
}

TEST_CASE("interrupts: the first signal sets the flag, the second kills", "[app]") {
  {
    InterruptGuard guard;
    CHECK_FALSE(interrupt_requested());
    std::raise(SIGINT);  // handled: the process goes on
    CHECK(interrupt_requested());
  }
  // A second signal takes the default action; checked in a child process.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    InterruptGuard guard;
    std::raise(SIGINT);
    if (!interrupt_requested()) _exit(3);
    std::raise(SIGINT);
    _exit(0);  // not reached when the second signal killed the child
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
}

TEST_CASE("plots: gnuplot renders a PNG from CSV columns; errors name the file", "[app]") {
  if (!gnuplot_available()) {
    WARN("SKIPPED: gnuplot with pngcairo is not installed (make deps installs gnuplot-nox)");
    return;
  }
  TempDir tmp("plots");
  CsvTable t({"epoch", "train_loss", "val_loss"});
  for (int e = 1; e <= 5; ++e) t.add_numbers({double(e), 1.0 / e, 1.2 / e});
  const std::string csv = (tmp.dir / "metrics.csv").string(), png = (tmp.dir / "loss.png").string();
  t.save(csv);
  REQUIRE(plot_lines(png, {{csv, "epoch", "train_loss", "train"}, {csv, "epoch", "val_loss", "val"}},
                     {.title = "loss", .xlabel = "epoch", .ylabel = "cross-entropy"}));
  const std::string bytes = slurp(png);
  REQUIRE(bytes.size() > 1000);
  CHECK(bytes.compare(1, 3, "PNG") == 0);
  CHECK_FALSE(fs::exists(png + ".tmp.gp"));
  REQUIRE_THROWS_WITH(plot_lines((tmp.dir / "bad.png").string(), {{csv, "epoch", "no_such_column", "x"}}, {}),
                      Catch::Contains("bad.png: gnuplot failed"));
  CHECK_FALSE(fs::exists(tmp.dir / "bad.png"));
}
