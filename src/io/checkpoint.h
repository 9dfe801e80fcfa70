// Sharded HDF5 checkpoints (docs/checkpoints.md): one file per model-parallel rank (TP × PP coordinate) and,
// under ZeRO-1, per DP rank for the optimizer state. Every dataset is a piece of one global tensor,
// named by the tensor's global name and tagged with everything needed to place it: the global shape, the
// tensor-parallel shard it belongs to (axis, offset, shape) and the element range of that shard it holds
// (ZeRO-1 slices of the flat buffer cut shards anywhere). A reader can therefore assemble any shard of any
// tensor, for any layout, from metadata alone. Fletcher-32 on every dataset; run state in attributes.
// A checkpoint directory is written as DIR/iter_NNNNNNN.tmp by all ranks, then committed by one rank:
// renamed to DIR/iter_NNNNNNN and recorded in DIR/latest (itself replaced atomically).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace prores::io {

// Where a piece sits in its global tensor.
struct PiecePlacement {
  std::vector<int64_t> global_shape;
  int shard_axis = -1;               // -1: the shard is the whole tensor; 0: rows; 1: columns
  int64_t shard_offset = 0;          // first global index of the shard along shard_axis
  std::vector<int64_t> shard_shape;  // the TP shard's shape
  int64_t begin = 0, end = 0;        // element range [begin, end) of the row-major shard held here
};

using AttributeValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

class CheckpointWriter {
 public:
  // Creates (truncates) path. Throws prores::Error naming the file on failure.
  explicit CheckpointWriter(const std::string& path);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  // Writes dataset `name` (f32, end − begin values, chunked with Fletcher-32) with its placement as
  // attributes. Names may contain '/' (groups are created), e.g. "optimizer/exp_avg/lm_head.weight".
  // Across all files of a checkpoint every element of a tensor must be stored exactly once (the reader
  // rejects overlaps): a tensor replicated over TP (norm weights) is written by TP rank 0 only.
  void add(const std::string& name, const PiecePlacement& placement, const float* data);
  // Root-group attribute (run state: config, layout, iteration, consumed samples, seeds, ...).
  void set_attribute(const std::string& key, const AttributeValue& value);
  // Flushes, closes and fsyncs the file; throws naming the file on any error. The destructor closes
  // silently (without fsync).
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads every *.h5 file of one checkpoint directory (an iteration directory), indexing the pieces.
// Not thread-safe (serial HDF5; the reader caches open file handles and a staging buffer).
class CheckpointReader {
 public:
  // Throws prores::Error naming the directory or file when it is missing, unreadable, truncated or its
  // metadata is inconsistent (pieces of one tensor disagreeing on the global shape, overlapping ranges).
  explicit CheckpointReader(const std::string& iteration_dir);
  ~CheckpointReader();
  const std::string& directory() const;
  bool has_tensor(const std::string& name) const;
  std::vector<std::string> tensor_names() const;  // sorted
  std::vector<int64_t> global_shape(const std::string& name) const;
  // out (=) the shard (axis, offset, shape as in PiecePlacement) of global tensor `name`, assembled from
  // the pieces of every file (any TP / PP / DP layout). Throws naming the tensor (and the file of a piece
  // whose checksum fails) when the pieces do not cover the shard.
  void read_shard(const std::string& name, int shard_axis, int64_t shard_offset,
                  const std::vector<int64_t>& shard_shape, float* out) const;
  // The whole global tensor (row-major).
  std::vector<float> read_full(const std::string& name) const;
  // Root attributes of the file whose name is `file` (e.g. "model_tp00_pp000.h5"); attributes() of the
  // first file in sorted order when file is empty (run state is the same in every file).
  std::map<std::string, AttributeValue> attributes(const std::string& file = "") const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "iter_0000100".
std::string iteration_dir_name(int64_t iteration);
// DIR/iter_NNNNNNN.tmp: created (emptied first when a previous save died there) by rank 0 before the
// others write into it.
std::string prepare_checkpoint_dir(const std::string& save_dir, int64_t iteration);
// Renames the .tmp directory into place (an existing directory of the same iteration goes to .old first
// and is removed after), replaces DIR/latest (write to a temporary file, fsync, rename), then removes all
// but the newest keep_last iteration directories, never the one just written nor those listed in `kept`
// (keep_last <= 0: keep all).
void commit_checkpoint(const std::string& save_dir, int64_t iteration, int64_t keep_last,
                       const std::vector<int64_t>& kept = {});
// The iterations of the committed iteration directories of save_dir (iter_NNNNNNN), ascending. Throws naming
// the path when save_dir is not a directory.
std::vector<int64_t> list_checkpoint_iterations(const std::string& save_dir);
// Whether save_dir holds a `latest` file, i.e. a run saved there (what a resumed job loads by default).
bool holds_latest_checkpoint(const std::string& save_dir);
// The iteration directory to load from --load: DIR/latest's iteration when DIR holds a `latest` file
// (its .old copy when a re-save died between the two renames), or DIR itself when it is an iteration
// directory. Throws naming the path otherwise.
std::string resolve_load_dir(const std::string& load);

}  // namespace prores::io
