// Helpers for tests that run the `prores` executable: a per-process temporary directory, a generated corpus
// (no data package needed), running a command line (alone or under mpiexec) with captured output, and
// reading numbers back from metrics.jsonl lines.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
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

// A corpus of 1 MiB of pseudo-text, the same at every commit and on every machine (the tests' tolerances must
// not move with the source tree, as they did when this was the project's own source): lines of 3 to 12 words
// from a fixed lexicon of 600 random words of 2 to 9 letters, skewed towards its first words (the smaller of
// two uniform draws), from raw mt19937 outputs (no library distribution, whose algorithm may differ).
inline std::string corpus() {
  const fs::path path = work_dir().path() / "corpus.txt";
  if (!fs::exists(path)) {
    std::mt19937 rng(20261127);
    std::vector<std::string> lexicon(600);
    for (std::string& word : lexicon)
      for (uint32_t i = 0, letters = 2 + rng() % 8; i < letters; ++i) word += static_cast<char>('a' + rng() % 26);
    std::string text;
    while (text.size() < (size_t{1} << 20)) {
      for (uint32_t i = 0, words = 3 + rng() % 10; i < words; ++i) {
        const uint32_t a = rng() % 600, b = rng() % 600;
        text += (i == 0 ? "" : " ") + lexicon[std::min(a, b)];
      }
      text += ".\n";
    }
    std::ofstream(path) << text;
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

#if defined(PRORES_MPIEXEC)
// The command line that starts `ranks` prores processes (one thread each) under mpiexec; append the arguments.
inline std::string mpirun(int ranks) {
  return std::string(PRORES_MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none -np " +
         std::to_string(ranks) + " -x OMP_NUM_THREADS=1 " + PRORES_BINARY;
}
#endif

// The number after "key": in a JSON line.
inline double number_after(const std::string& line, const std::string& key) {
  const size_t pos = line.find("\"" + key + "\":");
  EXPECT_NE(pos, std::string::npos) << key << " missing in " << line;
  return pos == std::string::npos ? 0 : std::stod(line.substr(pos + key.size() + 3));
}

// The numbers of the JSON array after "key": in a JSON line.
inline std::vector<double> array_after(const std::string& line, const std::string& key) {
  const size_t pos = line.find("\"" + key + "\":[");
  EXPECT_NE(pos, std::string::npos) << key << " missing in " << line;
  std::vector<double> out;
  if (pos == std::string::npos) return out;
  const size_t begin = pos + key.size() + 4;
  std::istringstream items(line.substr(begin, line.find(']', begin) - begin));
  for (std::string item; std::getline(items, item, ',');) out.push_back(std::stod(item));
  return out;
}

}  // namespace prores::test
