// Checkpoint directory protocol (docs/checkpoints.md): every rank writes into DIR/iter_NNNNNNN.tmp; one rank
// commits by renaming it to DIR/iter_NNNNNNN (an existing directory of that iteration is first moved aside
// to .old and removed only after the new one is in place), then replaces DIR/latest through latest.tmp,
// fsync and rename, and prunes old iterations. A save killed at any point leaves `latest` naming a
// complete directory; resolve_load_dir also accepts the .old copy left by a kill between the two renames.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "io/checkpoint.h"

namespace prores::io {

namespace fs = std::filesystem;

namespace {

// fsync of a file or directory (a directory's fsync makes the renames inside it durable).
void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  PRORES_CHECK(fd >= 0, "cannot open '", path.string(), "' to fsync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  PRORES_CHECK(rc == 0, "fsync of '", path.string(), "' failed: ", std::strerror(err));
}

// The value of a string of 1 to 18 decimal digits, or -1.
int64_t parse_digits(const std::string& text) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), digit)) return -1;
  return std::stoll(text);
}

// The iteration of a directory named iter_<digits> (nothing after the digits), or -1.
int64_t parse_iteration_name(const std::string& name) {
  const std::string prefix = "iter_";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  return parse_digits(name.substr(prefix.size()));
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  PRORES_CHECK(!ec, "cannot rename '", from.string(), "' to '", to.string(), "': ", ec.message());
}

void remove_all_or_throw(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  PRORES_CHECK(!ec, "cannot remove '", path.string(), "': ", ec.message());
}

// Writes DIR/latest as "<iteration>\n" through DIR/latest.tmp, fsync and rename.
void write_latest(const fs::path& dir, int64_t iteration) {
  const fs::path tmp = dir / "latest.tmp";
  {
    std::ofstream os(tmp, std::ios::trunc);
    os << iteration << '\n';
    os.close();
    PRORES_CHECK(os, "cannot write '", tmp.string(), "'");
  }
  fsync_path(tmp, false);
  rename_or_throw(tmp, dir / "latest");
  fsync_path(dir, true);
}

// Removes all but the newest keep_last iteration directories of dir, never `current` nor those in `kept`.
void prune(const fs::path& dir, int64_t current, int64_t keep_last, const std::vector<int64_t>& kept) {
  std::vector<std::pair<int64_t, fs::path>> others;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const int64_t it = parse_iteration_name(e.path().filename().string());
    if (it >= 0 && it != current && e.is_directory() && std::find(kept.begin(), kept.end(), it) == kept.end())
      others.emplace_back(it, e.path());
  }
  std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = static_cast<size_t>(keep_last - 1); i < others.size(); ++i) remove_all_or_throw(others[i].second);
}

}  // namespace

std::string iteration_dir_name(int64_t iteration) {
  PRORES_CHECK(iteration >= 0, "negative checkpoint iteration ", iteration);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "iter_%07lld", static_cast<long long>(iteration));
  return buf;
}

std::string prepare_checkpoint_dir(const std::string& save_dir, int64_t iteration) {
  const fs::path tmp = fs::path(save_dir) / (iteration_dir_name(iteration) + ".tmp");
  std::error_code ec;
  fs::create_directories(save_dir, ec);
  PRORES_CHECK(!ec, "--save: cannot create '", save_dir, "': ", ec.message());
  remove_all_or_throw(tmp);
  fs::create_directory(tmp, ec);
  PRORES_CHECK(!ec, "--save: cannot create '", tmp.string(), "': ", ec.message());
  return tmp.string();
}

void commit_checkpoint(const std::string& save_dir, int64_t iteration, int64_t keep_last,
                       const std::vector<int64_t>& kept) {
  const fs::path dir(save_dir);
  const fs::path final_dir = dir / iteration_dir_name(iteration);
  const fs::path tmp = dir / (iteration_dir_name(iteration) + ".tmp");
  const fs::path old = dir / (iteration_dir_name(iteration) + ".old");
  std::error_code ec;
  PRORES_CHECK(fs::is_directory(tmp, ec), "cannot commit checkpoint: '", tmp.string(), "' does not exist");
  fsync_path(tmp, true);
  if (fs::exists(final_dir, ec)) {
    remove_all_or_throw(old);
    rename_or_throw(final_dir, old);
  }
  rename_or_throw(tmp, final_dir);
  fsync_path(dir, true);
  remove_all_or_throw(old);
  write_latest(dir, iteration);
  if (keep_last > 0) prune(dir, iteration, keep_last, kept);
}

std::vector<int64_t> list_checkpoint_iterations(const std::string& save_dir) {
  std::error_code ec;
  PRORES_CHECK(fs::is_directory(save_dir, ec), "'", save_dir, "' is not a checkpoint directory");
  std::vector<int64_t> iterations;
  for (const fs::directory_entry& e : fs::directory_iterator(save_dir)) {
    const int64_t it = parse_iteration_name(e.path().filename().string());
    if (it >= 0 && e.is_directory()) iterations.push_back(it);
  }
  std::sort(iterations.begin(), iterations.end());
  return iterations;
}

bool holds_latest_checkpoint(const std::string& save_dir) {
  std::error_code ec;
  return fs::exists(fs::path(save_dir) / "latest", ec);
}

std::string resolve_load_dir(const std::string& load) {
  fs::path path = fs::path(load).lexically_normal();
  if (!path.has_filename() && path.has_parent_path()) path = path.parent_path();  // drop a trailing '/'
  std::error_code ec;
  PRORES_CHECK(fs::exists(path, ec), "--load: '", load, "' does not exist");
  const fs::path latest = path / "latest";
  if (fs::is_regular_file(latest, ec)) {
    std::ifstream is(latest);
    std::string text;
    is >> text;
    const int64_t iteration = parse_digits(text);
    PRORES_CHECK(iteration >= 0, "--load: '", latest.string(), "' does not hold an iteration number");
    const fs::path target = path / iteration_dir_name(iteration);
    if (fs::is_directory(target, ec)) return target.string();
    const fs::path old = path / (iteration_dir_name(iteration) + ".old");
    if (fs::is_directory(old, ec)) return old.string();
    PRORES_FAIL("--load: '", latest.string(), "' names iteration ", iteration, " but '", target.string(),
                "' does not exist");
  }
  PRORES_CHECK(fs::is_directory(path, ec) && parse_iteration_name(path.filename().string()) >= 0, "--load: '", load,
               "' holds no checkpoint (no 'latest' file and not an iteration directory)");
  return path.string();
}

}  // namespace prores::io
