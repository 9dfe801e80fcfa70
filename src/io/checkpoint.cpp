// CheckpointWriter and CheckpointReader over the serial HDF5 C API. The writer stores each piece as a 1-D
// f32 dataset (chunked, Fletcher-32) with its placement in attributes, in the 1.10 file format so that
// metadata is checksummed as well. The reader indexes every piece of every *.h5 file of a directory, then
// assembles a requested shard from the runs that checkpoint_geometry.cpp plans, reading through HDF5 so
// that the checksums are verified; a piece whose shard is the requested one is read straight into place.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "io/checkpoint_internal.h"

namespace prores::io {

using detail::Box;
using detail::Handle;
using detail::hdf5_error;
using detail::Run;

namespace {

constexpr int64_t kMaxChunkElements = int64_t{1} << 20;  // 4 MiB of f32 per chunk
constexpr int64_t kMaxOpenFiles = 64;                    // reader's file-handle cache

std::string file_where(const std::string& path) { return "checkpoint file '" + path + "'"; }

std::string dataset_where(const std::string& path, const std::string& name) {
  return file_where(path) + ", dataset '" + name + "'";
}

// Makes path's data durable (after the file is closed): fsync through a fresh descriptor.
void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  PRORES_CHECK(fd >= 0, "cannot reopen '", path, "' to fsync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  PRORES_CHECK(rc == 0, "fsync of '", path, "' failed: ", std::strerror(err));
}

// Integer-array attribute key of obj (a placement attribute); throws naming where and key otherwise.
std::vector<int64_t> int_vector(hid_t obj, const char* key, const std::string& where) {
  const AttributeValue v = detail::read_attribute(obj, key, where);
  const auto* p = std::get_if<std::vector<int64_t>>(&v);
  PRORES_CHECK(p, where, ": attribute '", key, "' is not an integer array");
  return *p;
}

// Integer-scalar attribute key of obj.
int64_t int_scalar(hid_t obj, const char* key, const std::string& where) {
  const AttributeValue v = detail::read_attribute(obj, key, where);
  const auto* p = std::get_if<int64_t>(&v);
  PRORES_CHECK(p, where, ": attribute '", key, "' is not an integer scalar");
  return *p;
}

herr_t collect_link(hid_t, const char* name, const H5L_info_t* info, void* out) {
  if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------- writer

struct CheckpointWriter::Impl {
  std::string path;
  hid_t file = -1;
};

CheckpointWriter::CheckpointWriter(const std::string& path) : impl_(std::make_unique<Impl>()) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  impl_->path = path;
  const Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  PRORES_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_LATEST) >= 0, file_where(path),
               ": cannot select the file format: ", hdf5_error());
  impl_->file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  PRORES_CHECK(impl_->file >= 0, "cannot create ", file_where(path), ": ", hdf5_error());
}

CheckpointWriter::~CheckpointWriter() {
  if (impl_->file >= 0) H5Fclose(impl_->file);
}

void CheckpointWriter::add(const std::string& name, const PiecePlacement& placement, const float* data) {
  const std::string where = dataset_where(impl_->path, name);
  PRORES_CHECK(impl_->file >= 0, where, ": the file is already closed");
  PRORES_CHECK(!name.empty() && name.front() != '/' && name.back() != '/' && name.find("//") == std::string::npos,
               where, ": not a valid dataset name");
  detail::piece_box(placement, where);
  const int64_t n = placement.end - placement.begin;
  PRORES_CHECK(n == 0 || data, where, ": no data for ", n, " elements");

  const hsize_t dims[1] = {static_cast<hsize_t>(n)};
  const hsize_t chunk[1] = {static_cast<hsize_t>(std::clamp<int64_t>(n, 1, kMaxChunkElements))};
  const Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  const Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  PRORES_CHECK(space.valid() && dcpl.valid() && lcpl.valid() && H5Pset_chunk(dcpl.get(), 1, chunk) >= 0 &&
                   H5Pset_fletcher32(dcpl.get()) >= 0 && H5Pset_create_intermediate_group(lcpl.get(), 1) >= 0,
               where, ": cannot set up the dataset: ", hdf5_error());
  const Handle ds(H5Dcreate2(impl_->file, name.c_str(), H5T_IEEE_F32LE, space.get(), lcpl.get(), dcpl.get(),
                             H5P_DEFAULT),
                  H5Dclose);
  PRORES_CHECK(ds.valid(), where, ": cannot create the dataset (a duplicate name?): ", hdf5_error());
  if (n > 0) {
    PRORES_CHECK(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, where,
                 ": cannot write the data: ", hdf5_error());
  }
  detail::write_attribute(ds.get(), "global_shape", placement.global_shape, where);
  detail::write_attribute(ds.get(), "shard_axis", int64_t{placement.shard_axis}, where);
  detail::write_attribute(ds.get(), "shard_offset", placement.shard_offset, where);
  detail::write_attribute(ds.get(), "shard_shape", placement.shard_shape, where);
  detail::write_attribute(ds.get(), "begin", placement.begin, where);
  detail::write_attribute(ds.get(), "end", placement.end, where);
}

void CheckpointWriter::set_attribute(const std::string& key, const AttributeValue& value) {
  PRORES_CHECK(impl_->file >= 0, file_where(impl_->path), ": the file is already closed");
  detail::write_attribute(impl_->file, key, value, file_where(impl_->path));
}

void CheckpointWriter::close() {
  if (impl_->file < 0) return;
  const hid_t file = impl_->file;
  impl_->file = -1;
  PRORES_CHECK(H5Fclose(file) >= 0, "cannot close ", file_where(impl_->path), ": ", hdf5_error());
  fsync_file(impl_->path);
}

// ---------------------------------------------------------------------------------------------- reader

namespace {

struct Piece {
  int64_t file = 0;
  std::string dataset;
  PiecePlacement placement;
  Box box;
};

struct TensorIndex {
  std::vector<int64_t> global_shape;
  std::vector<Piece> pieces;
};

struct FileSlot {
  std::string path;
  hid_t id = -1;
  uint64_t last_use = 0;
};

}  // namespace

struct CheckpointReader::Impl {
  std::string directory;
  std::vector<FileSlot> files;  // sorted by path
  std::map<std::string, TensorIndex> tensors;
  std::vector<float> scratch;  // staging for pieces that scatter into the requested shard
  uint64_t clock = 0;
  int64_t open_files = 0;

  ~Impl() {
    for (const FileSlot& f : files)
      if (f.id >= 0) H5Fclose(f.id);
  }

  // The open handle of file i, opening it (and closing the least recently used one past the cap).
  hid_t file(int64_t i) {
    FileSlot& slot = files[static_cast<size_t>(i)];
    slot.last_use = ++clock;
    if (slot.id >= 0) return slot.id;
    if (open_files >= kMaxOpenFiles) {
      FileSlot* lru = nullptr;
      for (FileSlot& f : files)
        if (f.id >= 0 && (!lru || f.last_use < lru->last_use)) lru = &f;
      H5Fclose(lru->id);
      lru->id = -1;
      --open_files;
    }
    slot.id = H5Fopen(slot.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    PRORES_CHECK(slot.id >= 0, "cannot open ", file_where(slot.path), " (missing, truncated or not HDF5): ",
                 hdf5_error());
    ++open_files;
    return slot.id;
  }

  const TensorIndex& tensor(const std::string& name) const {
    const auto it = tensors.find(name);
    PRORES_CHECK(it != tensors.end(), "checkpoint '", directory, "' has no tensor '", name, "'");
    return it->second;
  }

  std::vector<std::string> piece_files(const TensorIndex& t) const {
    std::vector<std::string> out;
    for (const Piece& p : t.pieces) out.push_back(files[static_cast<size_t>(p.file)].path);
    return out;
  }

  void index_file(int64_t i);
  Piece read_piece_metadata(int64_t i, hid_t file, const std::string& name) const;
  void read_runs(const Piece& piece, const std::vector<Run>& runs, float* out);
};

Piece CheckpointReader::Impl::read_piece_metadata(int64_t i, hid_t file, const std::string& name) const {
  const std::string where = dataset_where(files[static_cast<size_t>(i)].path, name);
  const Handle ds(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  PRORES_CHECK(ds.valid(), where, ": cannot open the dataset: ", hdf5_error());
  Piece piece;
  piece.file = i;
  piece.dataset = name;
  const auto vector_attr = [&](const char* key) { return int_vector(ds.get(), key, where); };
  const auto scalar_attr = [&](const char* key) { return int_scalar(ds.get(), key, where); };
  PiecePlacement& p = piece.placement;
  p.global_shape = vector_attr("global_shape");
  const int64_t axis = scalar_attr("shard_axis");
  PRORES_CHECK(axis >= -1 && axis <= 64, where, ": shard axis ", axis, " out of range");
  p.shard_axis = static_cast<int>(axis);
  p.shard_offset = scalar_attr("shard_offset");
  p.shard_shape = vector_attr("shard_shape");
  p.begin = scalar_attr("begin");
  p.end = scalar_attr("end");
  piece.box = detail::piece_box(p, where);

  const Handle type(H5Dget_type(ds.get()), H5Tclose);
  const Handle space(H5Dget_space(ds.get()), H5Sclose);
  PRORES_CHECK(H5Tget_class(type.get()) == H5T_FLOAT, where, ": the data is not floating point");
  hsize_t length = 0;
  PRORES_CHECK(H5Sget_simple_extent_ndims(space.get()) == 1 &&
                   H5Sget_simple_extent_dims(space.get(), &length, nullptr) == 1,
               where, ": the data is not 1-D");
  PRORES_CHECK(static_cast<int64_t>(length) == p.end - p.begin, where, ": ", length,
               " elements stored for the range [", p.begin, ", ", p.end, ")");
  return piece;
}

void CheckpointReader::Impl::index_file(int64_t i) {
  const hid_t f = file(i);
  const std::string& path = files[static_cast<size_t>(i)].path;
  std::vector<std::string> links;
  PRORES_CHECK(H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, collect_link, &links) >= 0, file_where(path),
               ": cannot walk the groups: ", hdf5_error());
  for (const std::string& name : links) {
    const Handle obj(H5Oopen(f, name.c_str(), H5P_DEFAULT), H5Oclose);
    PRORES_CHECK(obj.valid(), dataset_where(path, name), ": cannot open the object: ", hdf5_error());
    if (H5Iget_type(obj.get()) != H5I_DATASET) continue;
    Piece piece = read_piece_metadata(i, f, name);
    TensorIndex& t = tensors[name];
    if (t.pieces.empty()) t.global_shape = piece.placement.global_shape;
    PRORES_CHECK(t.global_shape == piece.placement.global_shape, "checkpoint tensor '", name,
                 "': pieces disagree on the global shape (in '", files[static_cast<size_t>(t.pieces[0].file)].path,
                 "' and '", path, "')");
    t.pieces.push_back(std::move(piece));
  }
}

void CheckpointReader::Impl::read_runs(const Piece& piece, const std::vector<Run>& runs, float* out) {
  const std::string& path = files[static_cast<size_t>(piece.file)].path;
  const std::string where = dataset_where(path, piece.dataset);
  int64_t lo = runs.front().src, hi = lo;
  for (const Run& r : runs) {
    lo = std::min(lo, r.src);
    hi = std::max(hi, r.src + r.len);
  }
  const Handle ds(H5Dopen2(file(piece.file), piece.dataset.c_str(), H5P_DEFAULT), H5Dclose);
  PRORES_CHECK(ds.valid(), where, ": cannot open the dataset: ", hdf5_error());
  const Handle file_space(H5Dget_space(ds.get()), H5Sclose);
  const hsize_t start[1] = {static_cast<hsize_t>(lo)}, count[1] = {static_cast<hsize_t>(hi - lo)};
  const Handle mem_space(H5Screate_simple(1, count, nullptr), H5Sclose);
  PRORES_CHECK(file_space.valid() && mem_space.valid() &&
                   H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) >= 0,
               where, ": cannot select elements [", lo, ", ", hi, "): ", hdf5_error());
  const bool direct = runs.size() == 1;  // one contiguous run: straight into place
  if (!direct) scratch.resize(static_cast<size_t>(hi - lo));
  float* target = direct ? out + runs.front().dst : scratch.data();
  PRORES_CHECK(H5Dread(ds.get(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(), H5P_DEFAULT, target) >= 0,
               where, ": cannot read the data: ", hdf5_error());
  if (direct) return;
  for (const Run& r : runs)
    std::memcpy(out + r.dst, scratch.data() + (r.src - lo), static_cast<size_t>(r.len) * sizeof(float));
}

CheckpointReader::CheckpointReader(const std::string& iteration_dir) : impl_(std::make_unique<Impl>()) {
  namespace fs = std::filesystem;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  impl_->directory = iteration_dir;
  std::error_code ec;
  PRORES_CHECK(fs::is_directory(iteration_dir, ec), "checkpoint directory '", iteration_dir,
               "' does not exist or is not a directory");
  std::vector<std::string> paths;
  for (const fs::directory_entry& e : fs::directory_iterator(iteration_dir))
    if (e.is_regular_file() && e.path().extension() == ".h5") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  PRORES_CHECK(!paths.empty(), "checkpoint directory '", iteration_dir, "' holds no *.h5 file");
  for (const std::string& p : paths) impl_->files.push_back(FileSlot{p});
  for (int64_t i = 0; i < static_cast<int64_t>(paths.size()); ++i) impl_->index_file(i);

  for (const auto& [name, t] : impl_->tensors) {  // overlapping pieces are an error even when never read
    const Box whole{std::vector<int64_t>(t.global_shape.size(), 0), t.global_shape};
    std::vector<Run> runs;
    for (size_t k = 0; k < t.pieces.size(); ++k) {
      const Piece& p = t.pieces[k];
      detail::plan_runs(p.box, p.placement.begin, p.placement.end, whole, static_cast<int64_t>(k), runs);
    }
    detail::check_coverage(runs, whole, name, impl_->piece_files(t), false);
  }
}

CheckpointReader::~CheckpointReader() = default;

const std::string& CheckpointReader::directory() const { return impl_->directory; }

bool CheckpointReader::has_tensor(const std::string& name) const { return impl_->tensors.count(name) > 0; }

std::vector<std::string> CheckpointReader::tensor_names() const {
  std::vector<std::string> names;
  for (const auto& entry : impl_->tensors) names.push_back(entry.first);
  return names;
}

std::vector<int64_t> CheckpointReader::global_shape(const std::string& name) const {
  return impl_->tensor(name).global_shape;
}

void CheckpointReader::read_shard(const std::string& name, int shard_axis, int64_t shard_offset,
                                  const std::vector<int64_t>& shard_shape, float* out) const {
  const TensorIndex& t = impl_->tensor(name);
  const Box requested = detail::shard_box(t.global_shape, shard_axis, shard_offset, shard_shape,
                                          "checkpoint tensor '" + name + "' (requested shard)");
  std::vector<Run> runs;
  for (size_t k = 0; k < t.pieces.size(); ++k) {
    const Piece& p = t.pieces[k];
    detail::plan_runs(p.box, p.placement.begin, p.placement.end, requested, static_cast<int64_t>(k), runs);
  }
  detail::check_coverage(runs, requested, name, impl_->piece_files(t), true);
  std::vector<std::vector<Run>> by_piece(t.pieces.size());
  for (const Run& r : runs) by_piece[static_cast<size_t>(r.piece)].push_back(r);
  for (size_t k = 0; k < t.pieces.size(); ++k)
    if (!by_piece[k].empty()) impl_->read_runs(t.pieces[k], by_piece[k], out);
}

std::vector<float> CheckpointReader::read_full(const std::string& name) const {
  const std::vector<int64_t> shape = global_shape(name);
  int64_t n = 1;
  for (const int64_t s : shape) n *= s;
  std::vector<float> out(static_cast<size_t>(n));
  read_shard(name, -1, 0, shape, out.data());
  return out;
}

std::map<std::string, AttributeValue> CheckpointReader::attributes(const std::string& file) const {
  int64_t index = 0;
  if (!file.empty()) {
    const auto& files = impl_->files;
    const auto it = std::find_if(files.begin(), files.end(), [&](const FileSlot& f) {
      return std::filesystem::path(f.path).filename() == file;
    });
    PRORES_CHECK(it != files.end(), "checkpoint '", impl_->directory, "' has no file '", file, "'");
    index = it - files.begin();
  }
  const hid_t f = impl_->file(index);
  const std::string where = file_where(impl_->files[static_cast<size_t>(index)].path);
  std::map<std::string, AttributeValue> out;
  for (const std::string& key : detail::attribute_names(f, where)) out[key] = detail::read_attribute(f, key, where);
  return out;
}

}  // namespace prores::io
