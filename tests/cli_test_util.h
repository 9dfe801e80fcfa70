// Helpers for tests that run the `prores` executable: a per-process temporary directory, a corpus made of
// the project's own sources (no data package needed), running a command line with captured output, and
// reading numbers back from metrics.jsonl lines.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace prores::test {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The per-process scratch directory of these tests.
inline const TempDir& work_dir() {
  static const TempDir dir("prores_cli");
  return dir;
}

// A corpus of a few hundred KB: the project's own headers and sources.
inline std::string corpus() {
  const fs::path path = work_dir().path() / "corpus.txt";
  if (!fs::exists(path)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(fs::path(PRORES_SOURCE_DIR) / "src"))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::ofstream out(path);
    for (const auto& f : files) out << read_file(f);
  }
  return path.string();
}

// Runs a shell command line, capturing stdout and stderr.
inline RunResult run_shell(const std::string& command) {
  const fs::path out = work_dir().path() / "stdout.txt", err = work_dir().path() / "stderr.txt";
  const std::string cmd = command + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// Runs the prores executable with args.
inline RunResult run(const std::string& args) { return run_shell(std::string(PRORES_BINARY) + " " + args); }

// The number after "key": in a JSON line.
inline double number_after(const std::string& line, const std::string& key) {
  const size_t pos = line.find("\"" + key + "\":");
  EXPECT_NE(pos, std::string::npos) << key << " missing in " << line;
  return pos == std::string::npos ? 0 : std::stod(line.substr(pos + key.size() + 3));
}

}  // namespace prores::test
