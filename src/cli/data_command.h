// `prores data`: dataset preparation subcommands.
//   prores data train-tokenizer --input F1,F2 --vocab-size V --model-prefix P [--model-type bpe|unigram]
//   prores data preprocess --input FILES --tokenizer-model P.model --output-prefix OUT [--json-key text]
//                          [--workers N] [--dtype auto|uint16|int32] [--document-per-file]
// preprocess writes OUT.bin / OUT.idx in Megatron-LM's indexed format (the --data-path of training).
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// Runs `prores data` on the arguments after "data" (the first is the subcommand); returns the exit
// status. Bad input throws prores::Error with a one-line message naming the option, file or line.
int run_data_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
