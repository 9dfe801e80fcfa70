// Hdf5Reader implementation over the HDF5 C API. Every handle is owned by a small RAII wrapper, so an
// exception thrown half-way through a read leaks nothing; HDF5 does the type conversion to the
// requested memory type (integer and float datasets both read as f64 or i32).
#include "hdf5_reader.h"

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/check.h"
#include "io/hdf5_handle.h"

namespace prores {

static_assert(std::is_same_v<hid_t, int64_t>, "Hdf5Reader stores hid_t as int64_t (HDF5 >= 1.10)");

namespace {

using io::Handle;

// True iff every component of the slash-separated path exists as a link below loc.
bool links_exist(hid_t loc, const std::string& path) {
  if (path.empty()) return false;
  size_t pos = path[0] == '/' ? 1 : 0;
  while (pos <= path.size()) {
    const size_t next = std::min(path.find('/', pos), path.size());
    if (H5Lexists(loc, path.substr(0, next).c_str(), H5P_DEFAULT) <= 0) return false;
    pos = next + 1;
  }
  return true;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

std::vector<int64_t> dataspace_shape(hid_t space, const std::string& where) {
  const int ndims = H5Sget_simple_extent_ndims(space);
  PRORES_CHECK(ndims >= 0, where, ": cannot read the dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(ndims));
  if (ndims > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

}  // namespace

Hdf5Reader::Hdf5Reader(const std::string& path) : path_(path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  PRORES_CHECK(file_ >= 0, "cannot open HDF5 file '", path, "'");
}

Hdf5Reader::~Hdf5Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool Hdf5Reader::has(const std::string& dataset) const {
  if (!links_exist(file_, dataset)) return false;
  const Handle ds(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  return ds.valid();
}

std::vector<std::string> Hdf5Reader::list(const std::string& group) const {
  PRORES_CHECK(group == "/" || links_exist(file_, group), path_, ": no group '", group, "'");
  Handle g(H5Gopen2(file_, group.c_str(), H5P_DEFAULT), H5Gclose);
  PRORES_CHECK(g.valid(), path_, ": '", group, "' is not a group");
  std::vector<std::string> names;
  const herr_t rc = H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, collect_name, &names);
  PRORES_CHECK(rc >= 0, path_, ": cannot list group '", group, "'");
  std::sort(names.begin(), names.end());
  return names;
}

template <typename T>
std::vector<T> Hdf5Reader::read_numeric(const std::string& name, int64_t mem_type,
                                        std::vector<int64_t>* shape) const {
  PRORES_CHECK(has(name), path_, ": no dataset '", name, "'");
  Handle ds(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
  PRORES_CHECK(ds.valid(), path_, ": cannot open dataset '", name, "'");
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  PRORES_CHECK(cls == H5T_INTEGER || cls == H5T_FLOAT, path_, ": dataset '", name, "' is not numeric");
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const std::vector<int64_t> dims = dataspace_shape(space.get(), path_ + ": '" + name + "'");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  PRORES_CHECK(n >= 0, path_, ": cannot size dataset '", name, "'");
  std::vector<T> out(static_cast<size_t>(n));
  if (n > 0) {
    const herr_t rc = H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
    PRORES_CHECK(rc >= 0, path_, ": cannot read dataset '", name, "'");
  }
  if (shape) *shape = dims;
  return out;
}

std::vector<double> Hdf5Reader::read_f64(const std::string& name, std::vector<int64_t>* shape) const {
  return read_numeric<double>(name, H5T_NATIVE_DOUBLE, shape);
}

std::vector<int32_t> Hdf5Reader::read_i32(const std::string& name, std::vector<int64_t>* shape) const {
  PRORES_CHECK(has(name), path_, ": no dataset '", name, "'");
  {
    const Handle ds(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
    const Handle type(H5Dget_type(ds.get()), H5Tclose);
    PRORES_CHECK(H5Tget_class(type.get()) == H5T_INTEGER, path_, ": dataset '", name,
                 "' is not an integer dataset");
  }
  const std::vector<int64_t> wide = read_numeric<int64_t>(name, H5T_NATIVE_INT64, shape);
  std::vector<int32_t> out(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    PRORES_CHECK(wide[i] >= INT32_MIN && wide[i] <= INT32_MAX, path_, ": dataset '", name, "' element ", i,
                 " = ", wide[i], " does not fit in int32");
    out[i] = static_cast<int32_t>(wide[i]);
  }
  return out;
}

template <typename T>
T Hdf5Reader::read_attr_scalar(const std::string& attr, int64_t mem_type) const {
  PRORES_CHECK(H5Aexists(file_, attr.c_str()) > 0, path_, ": no attribute '", attr, "'");
  Handle a(H5Aopen(file_, attr.c_str(), H5P_DEFAULT), H5Aclose);
  PRORES_CHECK(a.valid(), path_, ": cannot open attribute '", attr, "'");
  Handle type(H5Aget_type(a.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  PRORES_CHECK(cls == H5T_INTEGER || cls == H5T_FLOAT, path_, ": attribute '", attr, "' is not numeric");
  Handle space(H5Aget_space(a.get()), H5Sclose);
  PRORES_CHECK(H5Sget_simple_extent_npoints(space.get()) == 1, path_, ": attribute '", attr,
               "' is not a scalar");
  T value{};
  PRORES_CHECK(H5Aread(a.get(), mem_type, &value) >= 0, path_, ": cannot read attribute '", attr, "'");
  return value;
}

double Hdf5Reader::attr_f64(const std::string& attr) const {
  return read_attr_scalar<double>(attr, H5T_NATIVE_DOUBLE);
}

int64_t Hdf5Reader::attr_i64(const std::string& attr) const {
  return read_attr_scalar<int64_t>(attr, H5T_NATIVE_INT64);
}

std::string Hdf5Reader::attr_string(const std::string& attr) const {
  PRORES_CHECK(H5Aexists(file_, attr.c_str()) > 0, path_, ": no attribute '", attr, "'");
  Handle a(H5Aopen(file_, attr.c_str(), H5P_DEFAULT), H5Aclose);
  PRORES_CHECK(a.valid(), path_, ": cannot open attribute '", attr, "'");
  Handle type(H5Aget_type(a.get()), H5Tclose);
  PRORES_CHECK(H5Tget_class(type.get()) == H5T_STRING, path_, ": attribute '", attr, "' is not a string");
  Handle space(H5Aget_space(a.get()), H5Sclose);
  PRORES_CHECK(H5Sget_simple_extent_npoints(space.get()) == 1, path_, ": attribute '", attr,
               "' is not a single string");
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    char* value = nullptr;
    PRORES_CHECK(H5Aread(a.get(), mem.get(), &value) >= 0, path_, ": cannot read attribute '", attr, "'");
    std::string out = value ? value : "";
    H5free_memory(value);
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  H5Tset_size(mem.get(), size + 1);
  H5Tset_strpad(mem.get(), H5T_STR_NULLTERM);
  std::string buf(size + 1, '\0');
  PRORES_CHECK(H5Aread(a.get(), mem.get(), buf.data()) >= 0, path_, ": cannot read attribute '", attr, "'");
  return std::string(buf.c_str());
}

}  // namespace prores
