// HDF5 helpers of the checkpoint code: the error-stack text that goes into prores::Error messages, and
// attributes as AttributeValue (int64 / double scalars and arrays, UTF-8 variable-length strings, which
// h5py reads back as str). Scalars use a scalar dataspace, arrays a 1-D one (a null one when empty), so
// that the value kind survives the round trip.
#include <type_traits>

#include "core/check.h"
#include "io/checkpoint_internal.h"

namespace prores::io::detail {

namespace {

herr_t innermost_description(unsigned n, const H5E_error2_t* err, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (n == 0 || text->empty()) *text = err->desc ? err->desc : "";
  return 0;
}

herr_t collect_attribute(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

// Creates attribute key of obj with the given file type and dataspace and writes buf (unless empty).
void create_and_write(hid_t obj, const std::string& key, hid_t file_type, hid_t mem_type, hid_t space,
                      const void* buf, bool has_data, const std::string& where) {
  PRORES_CHECK(space >= 0, where, ": cannot create the dataspace of attribute '", key, "': ", hdf5_error());
  if (H5Aexists(obj, key.c_str()) > 0) {
    PRORES_CHECK(H5Adelete(obj, key.c_str()) >= 0, where, ": cannot replace attribute '", key, "': ",
                 hdf5_error());
  }
  const Handle attr(H5Acreate2(obj, key.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  PRORES_CHECK(attr.valid(), where, ": cannot create attribute '", key, "': ", hdf5_error());
  if (has_data) {
    PRORES_CHECK(H5Awrite(attr.get(), mem_type, buf) >= 0, where, ": cannot write attribute '", key, "': ",
                 hdf5_error());
  }
}

template <typename T>
void write_numeric(hid_t obj, const std::string& key, const T* values, int64_t n, bool scalar,
                   const std::string& where) {
  const hid_t file_type = std::is_same_v<T, double> ? H5T_IEEE_F64LE : H5T_STD_I64LE;
  const hid_t mem_type = std::is_same_v<T, double> ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
  const hsize_t dims[1] = {static_cast<hsize_t>(n)};
  const Handle space(scalar ? H5Screate(H5S_SCALAR) : n == 0 ? H5Screate(H5S_NULL) : H5Screate_simple(1, dims, nullptr),
                     H5Sclose);
  create_and_write(obj, key, file_type, mem_type, space.get(), values, n > 0, where);
}

template <typename T>
AttributeValue read_numeric(hid_t attr, hid_t mem_type, bool scalar, int64_t n, const std::string& key,
                            const std::string& where) {
  std::vector<T> values(static_cast<size_t>(n));
  if (n > 0) {
    PRORES_CHECK(H5Aread(attr, mem_type, values.data()) >= 0, where, ": cannot read attribute '", key, "': ",
                 hdf5_error());
  }
  if (scalar) return values.at(0);
  return values;
}

std::string read_string(hid_t attr, hid_t type, const std::string& key, const std::string& where) {
  const Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(mem.get(), H5Tget_cset(type));
  if (H5Tis_variable_str(type) > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    char* value = nullptr;
    PRORES_CHECK(H5Aread(attr, mem.get(), &value) >= 0, where, ": cannot read attribute '", key, "': ",
                 hdf5_error());
    std::string out = value ? value : "";
    H5free_memory(value);
    return out;
  }
  const size_t size = H5Tget_size(type);
  H5Tset_size(mem.get(), size + 1);
  H5Tset_strpad(mem.get(), H5T_STR_NULLTERM);
  std::string buf(size + 1, '\0');
  PRORES_CHECK(H5Aread(attr, mem.get(), buf.data()) >= 0, where, ": cannot read attribute '", key, "': ",
               hdf5_error());
  return std::string(buf.c_str());
}

}  // namespace

std::string hdf5_error() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_description, &text);
  return text.empty() ? "unknown HDF5 error" : text;
}

void write_attribute(hid_t obj, const std::string& key, const AttributeValue& value, const std::string& where) {
  if (const auto* i = std::get_if<int64_t>(&value)) {
    write_numeric(obj, key, i, 1, true, where);
  } else if (const auto* f = std::get_if<double>(&value)) {
    write_numeric(obj, key, f, 1, true, where);
  } else if (const auto* iv = std::get_if<std::vector<int64_t>>(&value)) {
    write_numeric(obj, key, iv->data(), static_cast<int64_t>(iv->size()), false, where);
  } else if (const auto* fv = std::get_if<std::vector<double>>(&value)) {
    write_numeric(obj, key, fv->data(), static_cast<int64_t>(fv->size()), false, where);
  } else {
    const std::string& s = std::get<std::string>(value);
    const Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    const Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    const char* ptr = s.c_str();
    create_and_write(obj, key, type.get(), type.get(), space.get(), &ptr, true, where);
  }
}

AttributeValue read_attribute(hid_t obj, const std::string& key, const std::string& where) {
  PRORES_CHECK(H5Aexists(obj, key.c_str()) > 0, where, ": no attribute '", key, "'");
  const Handle attr(H5Aopen(obj, key.c_str(), H5P_DEFAULT), H5Aclose);
  PRORES_CHECK(attr.valid(), where, ": cannot open attribute '", key, "': ", hdf5_error());
  const Handle type(H5Aget_type(attr.get()), H5Tclose);
  const Handle space(H5Aget_space(attr.get()), H5Sclose);
  PRORES_CHECK(type.valid() && space.valid(), where, ": cannot inspect attribute '", key, "': ", hdf5_error());
  const H5T_class_t cls = H5Tget_class(type.get());
  const bool scalar = H5Sget_simple_extent_type(space.get()) == H5S_SCALAR;
  const int64_t n = H5Sget_simple_extent_npoints(space.get());
  PRORES_CHECK(n >= 0, where, ": cannot size attribute '", key, "': ", hdf5_error());
  if (cls == H5T_INTEGER) return read_numeric<int64_t>(attr.get(), H5T_NATIVE_INT64, scalar, n, key, where);
  if (cls == H5T_FLOAT) return read_numeric<double>(attr.get(), H5T_NATIVE_DOUBLE, scalar, n, key, where);
  PRORES_CHECK(cls == H5T_STRING && scalar, where, ": attribute '", key,
               "' is neither numeric nor a single string");
  return read_string(attr.get(), type.get(), key, where);
}

std::vector<std::string> attribute_names(hid_t obj, const std::string& where) {
  std::vector<std::string> names;
  PRORES_CHECK(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute, &names) >= 0, where,
               ": cannot list attributes: ", hdf5_error());
  return names;
}

}  // namespace prores::io::detail
