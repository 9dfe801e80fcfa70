// Which norms each norm placement puts around a sublayer (DESIGN.md §2's placement table).
#include "model/block.h"

#include <cmath>

namespace prores {

SublayerShape sublayer_shape(NormPlacement placement, int64_t num_layers) {
  SublayerShape s;
  switch (placement) {
    case NormPlacement::Pre: s.in_norm = true; break;
    case NormPlacement::Post: s.post_norm = true; break;
    case NormPlacement::Sandwich: s.in_norm = s.out_norm = true; break;
    case NormPlacement::DeepNorm:
      s.post_norm = true;
      s.c = std::pow(2.0 * static_cast<double>(num_layers), 0.25);
      break;
  }
  return s;
}

}  // namespace prores
