// Checkpoint throughput: the parameters of one model (default: the paper's 71M width, 12 layers, d = 512,
// ffn 1368, byte vocabulary, ~152 MB of f32) written as TP = 2 HDF5 files through the full save protocol
// (prepare, one CheckpointWriter per TP rank, close with fsync, commit), then read back with read_shard in
// the same layout (from the page cache, and cold after posix_fadvise(DONTNEED) drops the files' pages)
// and reassembled as TP = 1 (read_full). MB/s = 10^6 bytes of f32 payload per second, median of --repeats.
//   ./build/bench_checkpoint [--dir /tmp/x] [--repeats 3] [--tp 2] [--vocab-size 256] [--num-layers 12]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/config.h"
#include "io/checkpoint.h"
#include "model/param_table.h"

using namespace prores;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string dir = (fs::temp_directory_path() / ("prores_bench_checkpoint_" + std::to_string(::getpid()))).string();
  int repeats = 3;
  int64_t tp = 2, vocab = 256, layers = 12;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--dir" && has_value) {
      o.dir = argv[++i];
    } else if (arg == "--repeats" && has_value) {
      o.repeats = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--tp" && has_value) {
      o.tp = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--vocab-size" && has_value) {
      o.vocab = std::atoll(argv[++i]);
    } else if (arg == "--num-layers" && has_value) {
      o.layers = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: bench_checkpoint [--dir DIR] [--repeats 3] [--tp 2] [--vocab-size 256] [--num-layers 12]\n");
      std::exit(2);
    }
  }
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double seconds_of(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Drops the page-cache pages of every file under dir (the files were fsynced, so they are clean).
void drop_cached_pages(const std::string& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

io::PiecePlacement placement_of(const ParamEntry& e) {
  return {e.global_shape, e.shard_axis, e.shard_offset, e.shape, 0, e.numel};
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  ModelConfig config;
  config.num_layers = o.layers;
  config.hidden_size = 512;
  config.ffn_hidden_size = 1368;
  config.num_attention_heads = 8;
  config.vocab_size = o.vocab;
  std::vector<ParamTable> tables;
  std::vector<std::vector<float>> params;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
  for (int64_t r = 0; r < o.tp; ++r) {
    ModelShard shard;
    shard.tp_size = o.tp;
    shard.tp_rank = r;
    tables.emplace_back(config, shard);
    params.emplace_back(static_cast<size_t>(tables.back().total_numel()));
    for (float& x : params.back()) x = dist(rng);
  }
  int64_t elements = 0, datasets = 0;  // as written: replicated tensors once
  for (size_t r = 0; r < tables.size(); ++r) {
    for (const ParamEntry& e : tables[r].entries()) {
      if (r > 0 && e.tp_replicated()) {
        std::copy_n(params[0].begin() + tables[0].find(e.name).offset, e.numel, params[r].begin() + e.offset);
        continue;
      }
      elements += e.numel;
      ++datasets;
    }
  }
  const double mb = static_cast<double>(elements) * 4 / 1e6;
  std::printf("%lld layers, d 512, ffn 1368, vocab %lld, TP %lld: %.1f MB of f32 in %lld datasets, %lld files\n",
              static_cast<long long>(o.layers), static_cast<long long>(o.vocab), static_cast<long long>(o.tp), mb,
              static_cast<long long>(datasets), static_cast<long long>(o.tp));
  std::printf("directory %s, median of %d\n", o.dir.c_str(), o.repeats);

  std::vector<double> write, read_warm, read_cold, read_tp1;
  std::vector<std::vector<float>> back(params.size());
  for (size_t r = 0; r < params.size(); ++r) back[r].resize(params[r].size());
  for (int rep = 0; rep < o.repeats; ++rep) {
    const int64_t iteration = rep + 1;
    write.push_back(seconds_of([&] {
      const std::string tmp = io::prepare_checkpoint_dir(o.dir, iteration);
      for (size_t r = 0; r < tables.size(); ++r) {
        io::CheckpointWriter w(tmp + "/model_tp" + std::to_string(100 + r).substr(1) + "_pp000.h5");
        for (const ParamEntry& e : tables[r].entries())  // replicated norms: TP rank 0 only
          if (r == 0 || !e.tp_replicated()) w.add(e.name, placement_of(e), params[r].data() + e.offset);
        w.set_attribute("iteration", iteration);
        w.close();
      }
      io::commit_checkpoint(o.dir, iteration, 1);
    }));
    const std::string load = io::resolve_load_dir(o.dir);
    const auto read_same_layout = [&] {
      const io::CheckpointReader reader(load);
      for (size_t r = 0; r < tables.size(); ++r)
        for (const ParamEntry& e : tables[r].entries())
          reader.read_shard(e.name, e.shard_axis, e.shard_offset, e.shape, back[r].data() + e.offset);
    };
    read_warm.push_back(seconds_of(read_same_layout));
    drop_cached_pages(load);
    read_cold.push_back(seconds_of(read_same_layout));
    read_tp1.push_back(seconds_of([&] {
      const io::CheckpointReader reader(load);
      for (const std::string& name : reader.tensor_names()) reader.read_full(name);
    }));
    for (size_t r = 0; r < params.size(); ++r) {
      if (back[r] != params[r]) {
        std::printf("MISMATCH after reading back TP rank %zu\n", r);
        return 1;
      }
    }
  }
  fs::remove_all(o.dir);

  const auto report = [&](const char* what, const std::vector<double>& s) {
    std::printf("%-44s %8.3f s %9.1f MB/s   (runs:", what, median(s), mb / median(s));
    for (const double x : s) std::printf(" %.3f", x);
    std::printf(")\n");
  };
  report("write (prepare, add, close+fsync, commit)", write);
  report("read_shard, same layout, page cache", read_warm);
  report("read_shard, same layout, cold (fadvise)", read_cold);
  report("read_full, reassembled as TP=1", read_tp1);
  return 0;
}
