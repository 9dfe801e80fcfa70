// Hugging Face safetensors files (the JSON header read and written with nlohmann-json, core/json_input.h).
// Format (github.com/huggingface/safetensors): an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
// {"__metadata__": {str: str} (optional), "<tensor>": {"dtype": "F32", "shape": [..],
// "data_offsets": [begin, end]}, ...} padded with spaces to a multiple of 8, then the data buffer.
// Offsets are relative to the buffer start; tensors are row-major, little-endian and tile the buffer
// exactly (no gaps, no overlap, nothing after the last one), as the reference implementation demands.
// Every failure throws prores::Error naming the file (and the tensor, where one is involved).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bf16.h"

namespace prores::io {

// One named tensor held as f32 on the host: shape is row-major, data.size() == product of shape
// (1 for a scalar, shape {}).
struct SafeTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Element type written to a file. Reading accepts F32, BF16 and F16.
enum class SafeDtype { F32, BF16 };

// Writes tensors (in the given order, both in the header and in the buffer) to path.tmp, then renames it
// to path. metadata goes to "__metadata__"; a "format" entry of "pt" is added when metadata has none,
// because transformers' from_pretrained rejects files whose format is not a known framework. BF16
// rounds each f32 to nearest, ties to even (NaN stays NaN). Throws on duplicate, empty or reserved
// names, on a data size that does not match the shape, and on any I/O failure (path.tmp is removed).
void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata, SafeDtype dtype = SafeDtype::F32);

// Reads every tensor of path, converted to f32, keyed by name; metadata (if given) receives
// "__metadata__". The whole header is validated before any data is read: header length within the file,
// UTF-8 JSON, known fields only, supported dtype, non-negative shape, end - begin == numel · dtype size,
// offsets tiling the buffer. Data is read tensor by tensor (no copy of the whole file in memory).
std::map<std::string, SafeTensor> read_safetensors(const std::string& path,
                                                   std::map<std::string, std::string>* metadata = nullptr);

// The f16 → f32 widening used by the reader (exact, subnormals and infinities included); bf16 converts
// through core/bf16.h.
float f16_to_float(uint16_t bits);

}  // namespace prores::io
