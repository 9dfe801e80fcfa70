// Hdf5Reader: read-only access to one HDF5 file (serial libhdf5): numeric datasets converted to f64 or
// i32 with their shapes, scalar and string attributes of the root group, and group listings.
// A test helper (built in tests/CMakeLists.txt): the golden tests read their fixtures with it and the
// checkpoint tests inspect written files from the outside; the checkpoint loader has its own reader
// (src/io/checkpoint*). Every failure throws prores::Error naming the file and the dataset or attribute
// involved. HDF5's automatic error printing is switched off.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace prores {

class Hdf5Reader {
 public:
  // Opens path read-only; throws prores::Error naming the file if it cannot be opened.
  explicit Hdf5Reader(const std::string& path);
  ~Hdf5Reader();
  Hdf5Reader(const Hdf5Reader&) = delete;
  Hdf5Reader& operator=(const Hdf5Reader&) = delete;

  const std::string& path() const { return path_; }

  // True iff dataset (a path such as "param/lm_head.weight") exists and is a dataset.
  bool has(const std::string& dataset) const;
  // Names (not full paths) of the links directly inside group ("/" for the root), sorted.
  std::vector<std::string> list(const std::string& group) const;

  // The whole dataset, converted from any integer or floating type; shape (if given) receives its
  // dimensions (empty for a scalar dataset).
  std::vector<double> read_f64(const std::string& name, std::vector<int64_t>* shape = nullptr) const;
  // An integer dataset of any width; throws if an element does not fit in int32.
  std::vector<int32_t> read_i32(const std::string& name, std::vector<int64_t>* shape = nullptr) const;

  // Scalar numeric attributes of the root group (converted from any numeric type).
  double attr_f64(const std::string& attr) const;
  int64_t attr_i64(const std::string& attr) const;
  // A string attribute of the root group, fixed-length or variable-length.
  std::string attr_string(const std::string& attr) const;

 private:
  template <typename T>
  std::vector<T> read_numeric(const std::string& name, int64_t mem_type, std::vector<int64_t>* shape) const;
  template <typename T>
  T read_attr_scalar(const std::string& attr, int64_t mem_type) const;

  std::string path_;
  int64_t file_ = -1;  // hid_t
};

}  // namespace prores
