// Checkpoint geometry: a TP shard is a box of its global tensor (all of every dimension but the shard
// axis); a piece is the flat range [begin, end) of one such box in row-major order. plan_runs maps a piece
// onto any requested box by walking the intersection of the two boxes one innermost line at a time (a
// line is contiguous in both), and check_coverage proves that the runs of all pieces fill the requested box
// exactly once. Everything here is metadata: no data is touched.
#include <algorithm>
#include <cstdint>
#include <sstream>

#include "core/check.h"
#include "io/checkpoint_internal.h"

namespace prores::io::detail {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << (shape.size() == 1 ? ",)" : ")");
  return os.str();
}

// The global index of flat element f of box, e.g. "[6, 0]".
std::string global_index(const Box& box, int64_t f) {
  std::vector<int64_t> idx(box.shape.size());
  for (size_t d = box.shape.size(); d-- > 0;) {
    const int64_t extent = std::max<int64_t>(box.shape[d], 1);
    idx[d] = box.lo[d] + f % extent;
    f /= extent;
  }
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < idx.size(); ++i) os << (i ? ", " : "") << idx[i];
  os << ']';
  return os.str();
}

// "elements [a, b) of the requested shard (global [i..] to [j..])".
std::string range_string(const Box& box, int64_t a, int64_t b) {
  return ::prores::detail::concat("elements [", a, ", ", b, ") of the requested shard (global ", global_index(box, a),
                       " to ", global_index(box, b - 1), ")");
}

}  // namespace

int64_t Box::numel() const {
  int64_t n = 1;
  for (const int64_t s : shape) n *= s;
  return n;
}

Box shard_box(const std::vector<int64_t>& global_shape, int shard_axis, int64_t shard_offset,
              const std::vector<int64_t>& shard_shape, const std::string& where) {
  const int rank = static_cast<int>(global_shape.size());
  PRORES_CHECK(rank >= 1, where, ": empty global shape");
  int64_t numel = 1;
  for (const int64_t s : global_shape) {
    PRORES_CHECK(s >= 0 && (s == 0 || numel <= INT64_MAX / s), where, ": global shape ",
                 shape_string(global_shape), " has a negative extent or too many elements");
    numel *= s;
  }
  PRORES_CHECK(shard_shape.size() == global_shape.size(), where, ": shard shape ", shape_string(shard_shape),
               " and global shape ", shape_string(global_shape), " differ in rank");
  PRORES_CHECK(shard_axis >= -1 && shard_axis < rank, where, ": shard axis ", shard_axis, " outside [-1, ",
               rank, ")");
  for (int d = 0; d < rank; ++d) {
    if (d == shard_axis) continue;
    PRORES_CHECK(shard_shape[d] == global_shape[d], where, ": shard shape ", shape_string(shard_shape),
                 " differs from global shape ", shape_string(global_shape), " off the shard axis ", shard_axis);
  }
  Box box{std::vector<int64_t>(global_shape.size(), 0), shard_shape};
  if (shard_axis < 0) {
    PRORES_CHECK(shard_offset == 0, where, ": shard offset ", shard_offset, " for a whole-tensor shard");
    return box;
  }
  const int64_t extent = shard_shape[shard_axis];
  PRORES_CHECK(shard_offset >= 0 && extent >= 0 && shard_offset + extent <= global_shape[shard_axis], where,
               ": shard [", shard_offset, ", ", shard_offset + extent, ") along axis ", shard_axis,
               " outside global shape ", shape_string(global_shape));
  box.lo[shard_axis] = shard_offset;
  return box;
}

Box piece_box(const PiecePlacement& p, const std::string& where) {
  Box box = shard_box(p.global_shape, p.shard_axis, p.shard_offset, p.shard_shape, where);
  PRORES_CHECK(p.begin >= 0 && p.begin <= p.end && p.end <= box.numel(), where, ": element range [", p.begin,
               ", ", p.end, ") outside the shard ", shape_string(p.shard_shape), " of ", box.numel(),
               " elements");
  return box;
}

void plan_runs(const Box& piece, int64_t begin, int64_t end, const Box& requested, int64_t piece_index,
               std::vector<Run>& runs) {
  const size_t n = piece.shape.size();
  std::vector<int64_t> lo(n), hi(n), piece_stride(n), req_stride(n);
  for (size_t d = 0; d < n; ++d) {
    lo[d] = std::max(piece.lo[d], requested.lo[d]);
    hi[d] = std::min(piece.lo[d] + piece.shape[d], requested.lo[d] + requested.shape[d]);
    if (lo[d] >= hi[d]) return;
  }
  for (size_t d = n; d-- > 0;) {
    piece_stride[d] = d + 1 < n ? piece_stride[d + 1] * piece.shape[d + 1] : 1;
    req_stride[d] = d + 1 < n ? req_stride[d + 1] * requested.shape[d + 1] : 1;
  }
  const size_t first_new = runs.size();
  const int64_t line = hi[n - 1] - lo[n - 1];
  std::vector<int64_t> idx = lo;
  while (true) {
    int64_t src = 0, dst = 0;
    for (size_t d = 0; d < n; ++d) {
      src += (idx[d] - piece.lo[d]) * piece_stride[d];
      dst += (idx[d] - requested.lo[d]) * req_stride[d];
    }
    if (src >= end) break;  // lines come in increasing piece order: the rest lie past the range
    const int64_t a = std::max(src, begin), b = std::min(src + line, end);
    if (a < b) {
      const Run run{a - begin, dst + (a - src), b - a, piece_index};
      Run* last = runs.size() > first_new ? &runs.back() : nullptr;
      if (last && last->src + last->len == run.src && last->dst + last->len == run.dst) {
        last->len += run.len;
      } else {
        runs.push_back(run);
      }
    }
    int d = static_cast<int>(n) - 2;  // odometer over every dimension but the innermost
    for (; d >= 0; --d) {
      if (++idx[d] < hi[d]) break;
      idx[d] = lo[d];
    }
    if (d < 0) break;
  }
}

void check_coverage(std::vector<Run>& runs, const Box& requested, const std::string& tensor,
                    const std::vector<std::string>& piece_files, bool require_complete) {
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.dst < b.dst; });
  int64_t covered = 0, last_piece = -1;
  for (const Run& r : runs) {
    if (r.dst < covered) {
      const int64_t overlap_end = std::min(covered, r.dst + r.len);
      PRORES_FAIL("checkpoint tensor '", tensor, "': ", range_string(requested, r.dst, overlap_end),
                  " are held by two pieces (in '", piece_files[last_piece], "' and '", piece_files[r.piece], "')");
    }
    if (require_complete && r.dst > covered) {
      PRORES_FAIL("checkpoint tensor '", tensor, "': ", range_string(requested, covered, r.dst),
                  " are in no piece (a missing file or piece?)");
    }
    if (r.dst + r.len > covered) {
      covered = r.dst + r.len;
      last_piece = r.piece;
    }
  }
  const int64_t total = requested.numel();
  if (require_complete && covered < total) {
    PRORES_FAIL("checkpoint tensor '", tensor, "': ", range_string(requested, covered, total),
                " are in no piece (a missing file or piece?)");
  }
}

}  // namespace prores::io::detail
