// safetensors reader/writer (see safetensors.h); the header is read and written with nlohmann-json.
// The reader trusts nothing in the file: every length, offset and shape is range- and overflow-checked
// before it is used, so a corrupt file throws prores::Error rather than reading out of bounds.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "core/check.h"
#include "core/json_input.h"

namespace prores::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using Json = nlohmann::ordered_json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

struct DtypeInfo {
  const char* name;
  uint64_t size;
};
constexpr DtypeInfo kReadable[] = {{"F32", 4}, {"BF16", 2}, {"F16", 2}};

// One header entry, validated except for how it sits among the others.
struct Entry {
  std::string name;
  DtypeInfo dtype;
  std::vector<int64_t> shape;
  int64_t numel;
  uint64_t begin, end;
};

// Product of shape; throws (with `at`) on a negative dimension or an int64 overflow.
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& at) {
  for (int64_t d : shape) PRORES_CHECK(d >= 0, at, ": negative dimension ", d, " in shape");
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) {
    PRORES_CHECK(n <= std::numeric_limits<int64_t>::max() / d, at, ": shape has too many elements");
    n *= d;
  }
  return n;
}

// s as a JSON string literal, for messages (a byte that is not UTF-8 shows as U+FFFD).
std::string quoted(const std::string& s) { return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace); }

std::vector<int64_t> int_array(const Json* v, const std::string& at, const char* field) {
  PRORES_CHECK(v != nullptr, at, ": missing \"", field, "\"");
  PRORES_CHECK(v->is_array(), at, ": \"", field, "\" must be an array, got ", json_kind_name(*v));
  std::vector<int64_t> out;
  for (const Json& item : *v) {
    PRORES_CHECK(json_is_int64(item) && item.get<int64_t>() >= 0, at, ": \"", field,
                 "\" must hold non-negative integers");
    out.push_back(item.get<int64_t>());
  }
  return out;
}

Entry parse_entry(const std::string& name, const Json& v, const std::string& where, uint64_t buffer_size) {
  const std::string at = where + ": tensor " + quoted(name);
  PRORES_CHECK(v.is_object(), at, ": expected an object, got ", json_kind_name(v));
  for (const auto& [k, unused] : v.items()) {
    PRORES_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", at, ": unknown field ", quoted(k));
  }
  const Json* dtype = json_member(v, "dtype");
  PRORES_CHECK(dtype != nullptr && dtype->is_string(), at, ": \"dtype\" must be a string");
  const std::string& dtype_name = dtype->get_ref<const std::string&>();
  const DtypeInfo* info = nullptr;
  for (const DtypeInfo& d : kReadable) {
    if (dtype_name == d.name) info = &d;
  }
  PRORES_CHECK(info != nullptr, at, ": dtype ", quoted(dtype_name), " is not supported (F32, BF16, F16)");
  Entry e{name, *info, int_array(json_member(v, "shape"), at, "shape"), 0, 0, 0};
  e.numel = checked_numel(e.shape, at);
  const std::vector<int64_t> offsets = int_array(json_member(v, "data_offsets"), at, "data_offsets");
  PRORES_CHECK(offsets.size() == 2, at, ": \"data_offsets\" must be [begin, end]");
  e.begin = static_cast<uint64_t>(offsets[0]);
  e.end = static_cast<uint64_t>(offsets[1]);
  PRORES_CHECK(e.begin <= e.end, at, ": data_offsets [", e.begin, ", ", e.end, "] run backwards");
  PRORES_CHECK(e.end <= buffer_size, at, ": data_offsets [", e.begin, ", ", e.end,
               "] run past the end of the data buffer (", buffer_size, " bytes)");
  const uint64_t numel = static_cast<uint64_t>(e.numel);
  PRORES_CHECK(numel <= buffer_size / info->size && numel * info->size == e.end - e.begin, at, ": ",
               e.end - e.begin, " data bytes, but shape holds ", e.numel, " elements of ", info->size, " bytes (",
               info->name, ")");
  return e;
}

// The tensors must tile [0, buffer_size) exactly: sorted by offset, each starts where the last ended.
void check_tiling(std::vector<const Entry*> sorted, uint64_t buffer_size, const std::string& where) {
  std::sort(sorted.begin(), sorted.end(),
            [](const Entry* a, const Entry* b) { return std::pair(a->begin, a->end) < std::pair(b->begin, b->end); });
  uint64_t covered = 0;
  const Entry* last = nullptr;
  for (const Entry* e : sorted) {
    PRORES_CHECK(e->begin >= covered, where, ": tensor ", quoted(e->name), " [", e->begin, ", ", e->end,
                 ") overlaps tensor ", quoted(last ? last->name : ""), " [", last ? last->begin : 0, ", ", covered,
                 ")");
    PRORES_CHECK(e->begin == covered, where, ": data bytes [", covered, ", ", e->begin,
                 ") belong to no tensor (before tensor ", quoted(e->name), ")");
    if (e->end > covered) last = e;
    covered = e->end;
  }
  PRORES_CHECK(covered == buffer_size, where, ": data bytes [", covered, ", ", buffer_size,
               ") after the last tensor belong to no tensor");
}

}  // namespace

float f16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  const uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa · 2^-24, exact in f32
    const float f = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -f : f;
  }
  const uint32_t out = exponent == 0x1F ? sign | 0x7F800000u | (mantissa << 13)
                                        : sign | ((exponent + 112) << 23) | (mantissa << 13);
  return std::bit_cast<float>(out);
}

void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata, SafeDtype dtype) {
  const std::string where = "safetensors file '" + path + "'";
  const uint64_t elem = dtype == SafeDtype::F32 ? 4 : 2;
  std::map<std::string, std::string> meta = metadata;
  meta.try_emplace("format", "pt");
  Json header_json = {{"__metadata__", meta}};
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const SafeTensor& t : tensors) {
    const std::string at = where + ": tensor " + quoted(t.name);
    PRORES_CHECK(!t.name.empty() && t.name != "__metadata__", at, ": reserved or empty name");
    PRORES_CHECK(names.insert(t.name).second, at, ": name repeated");
    const int64_t numel = checked_numel(t.shape, at);
    PRORES_CHECK(static_cast<size_t>(numel) == t.data.size(), at, ": shape holds ", numel, " elements but data has ",
                 t.data.size());
    const uint64_t end = offset + static_cast<uint64_t>(numel) * elem;
    header_json.emplace(t.name, Json{{"dtype", dtype == SafeDtype::F32 ? "F32" : "BF16"},
                                     {"shape", t.shape},
                                     {"data_offsets", {offset, end}}});
    offset = end;
  }
  std::string header;
  try {
    header = header_json.dump();  // compact, as the reference implementation writes it
  } catch (const Json::type_error& e) {  // 316: a string that is not valid UTF-8
    PRORES_FAIL(where, ": a tensor name or metadata string is not valid UTF-8 (", e.what(), ")");
  }
  header.append((8 - header.size() % 8) % 8, ' ');

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    PRORES_CHECK(out.good(), where, ": cannot create '", tmp, "'");
    unsigned char length[8];
    for (int k = 0; k < 8; ++k) length[k] = static_cast<unsigned char>(static_cast<uint64_t>(header.size()) >> (8 * k));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    std::vector<uint16_t> half;
    for (const SafeTensor& t : tensors) {
      if (dtype == SafeDtype::F32) {
        out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
        continue;
      }
      half.resize(t.data.size());
      std::transform(t.data.begin(), t.data.end(), half.begin(), float_to_bf16);
      out.write(reinterpret_cast<const char*>(half.data()), static_cast<std::streamsize>(half.size() * 2));
    }
    out.close();
    if (!out) {
      std::filesystem::remove(tmp);
      PRORES_FAIL(where, ": writing '", tmp, "' failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    PRORES_FAIL(where, ": cannot rename '", tmp, "' to it: ", ec.message());
  }
}

std::map<std::string, SafeTensor> read_safetensors(const std::string& path,
                                                   std::map<std::string, std::string>* metadata) {
  const std::string where = "safetensors file '" + path + "'";
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  PRORES_CHECK(!ec, where, ": cannot read: ", ec.message());
  std::ifstream in(path, std::ios::binary);
  PRORES_CHECK(in.good(), where, ": cannot open");
  PRORES_CHECK(size >= 8, where, ": truncated: ", size, " bytes, shorter than the 8-byte header length");
  unsigned char length[8];
  in.read(reinterpret_cast<char*>(length), 8);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | length[k];
  PRORES_CHECK(n <= size - 8, where, ": header length ", n, " runs past the end of the file (", size, " bytes)");
  PRORES_CHECK(n <= kMaxHeaderBytes, where, ": header length ", n, " exceeds the limit of ", kMaxHeaderBytes);
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  PRORES_CHECK(in.good(), where, ": could not read the ", n, "-byte header");

  const Json root = parse_json(header, where + ": header");
  PRORES_CHECK(root.is_object(), where, ": the header must be a JSON object, got ", json_kind_name(root));
  const uint64_t buffer_size = size - 8 - n;
  std::vector<Entry> entries;
  for (const auto& [key, value] : root.items()) {
    if (key != "__metadata__") {
      entries.push_back(parse_entry(key, value, where, buffer_size));
      continue;
    }
    PRORES_CHECK(value.is_object(), where, ": \"__metadata__\" must be an object");
    for (const auto& [k, v] : value.items()) {
      PRORES_CHECK(v.is_string(), where, ": \"__metadata__\" entry ", quoted(k), " must be a string, got ",
                   json_kind_name(v));
      if (metadata) (*metadata)[k] = v.get<std::string>();
    }
  }
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  check_tiling(order, buffer_size, where);

  std::map<std::string, SafeTensor> out;
  std::vector<uint16_t> half;
  for (const Entry& e : entries) {
    SafeTensor t{e.name, e.shape, std::vector<float>(static_cast<size_t>(e.numel))};
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    const auto bytes = static_cast<std::streamsize>(e.end - e.begin);
    if (e.dtype.size == 4) {
      in.read(reinterpret_cast<char*>(t.data.data()), bytes);
    } else {
      half.resize(t.data.size());
      in.read(reinterpret_cast<char*>(half.data()), bytes);
      const bool bf16 = std::strcmp(e.dtype.name, "BF16") == 0;
      std::transform(half.begin(), half.end(), t.data.begin(), bf16 ? bf16_to_float : f16_to_float);
    }
    PRORES_CHECK(in.good(), where, ": tensor ", quoted(e.name), ": could not read its ", bytes, " data bytes");
    out.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace prores::io
