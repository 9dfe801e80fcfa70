// Internals shared by the checkpoint sources (not part of the io interface): an RAII owner for HDF5
// identifiers, the HDF5 error-stack text, attribute I/O in terms of AttributeValue, and the geometry that
// places a piece (a flat element range of a TP shard) inside any requested shard of the same tensor.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/hdf5_handle.h"

namespace prores::io::detail {

using io::Handle;

// The most specific description on HDF5's default error stack (e.g. "data error detected by Fletcher32
// checksum"), or "unknown HDF5 error" when the stack is empty.
std::string hdf5_error();

// Creates (replacing any previous one) attribute `key` of object obj. `where` prefixes error messages.
void write_attribute(hid_t obj, const std::string& key, const AttributeValue& value, const std::string& where);
// Reads attribute `key` of obj: integers as int64_t, floats as double, strings (fixed or variable length)
// as std::string; a scalar dataspace gives a scalar, a simple or null one a vector. Throws naming `where`
// and the attribute for any other type.
AttributeValue read_attribute(hid_t obj, const std::string& key, const std::string& where);
// Names of obj's attributes in creation-independent (name) order.
std::vector<std::string> attribute_names(hid_t obj, const std::string& where);

// A shard as a box of its global tensor: lower corner and extent per dimension.
struct Box {
  std::vector<int64_t> lo, shape;
  int64_t numel() const;
};

// Checks a shard description against the global shape (rank >= 1, axis in [-1, rank), the shard equal to
// the tensor off its axis, inside it along the axis) and returns its box. Throws prefixed with `where`.
Box shard_box(const std::vector<int64_t>& global_shape, int shard_axis, int64_t shard_offset,
              const std::vector<int64_t>& shard_shape, const std::string& where);
// shard_box of a piece's placement, plus 0 <= begin <= end <= numel of the shard.
Box piece_box(const PiecePlacement& placement, const std::string& where);

// len elements from the piece's data at src (index into the piece, 0 = its element `begin`) go to the
// requested shard's flat index dst.
struct Run {
  int64_t src = 0, dst = 0, len = 0;
  int64_t piece = 0;  // which piece (the caller's index), for the coverage report
};

// Appends to runs the parts of a piece (box, element range [begin, end) of it) that fall inside the
// requested box, as row-major runs merged where contiguous on both sides.
void plan_runs(const Box& piece, int64_t begin, int64_t end, const Box& requested, int64_t piece_index,
               std::vector<Run>& runs);

// Sorts runs by destination and throws naming `tensor` when two write the same element of the requested
// box (naming both pieces by piece_files[run.piece]), or (require_complete) when some element is written
// by none; ranges are reported as flat ranges of the requested box and as global indices.
void check_coverage(std::vector<Run>& runs, const Box& requested, const std::string& tensor,
                    const std::vector<std::string>& piece_files, bool require_complete);

}  // namespace prores::io::detail
