// Command line + INI parsing shared by the subcommands (see option_parsing.h).
#include "cli/option_parsing.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <type_traits>

#include "core/check.h"

namespace prores {

namespace po = boost::program_options;

namespace {

// Keeps only the last occurrence of every option (argparse's habit, so that launch scripts can append
// overrides; Boost would refuse a repeated option), except the composing ones, which collect every occurrence
// (e.g. generate's --prompt).
void keep_last_occurrences(po::parsed_options& parsed) {
  std::set<std::string> seen;
  std::vector<po::option> kept;
  for (auto it = parsed.options.rbegin(); it != parsed.options.rend(); ++it) {
    const po::option_description* d =
        parsed.description ? parsed.description->find_nothrow(it->string_key, false) : nullptr;
    const bool composing = d != nullptr && d->semantic()->is_composing();
    if (seen.insert(it->string_key).second || composing) kept.push_back(*it);
  }
  parsed.options.assign(kept.rbegin(), kept.rend());
}

// A config file's options, with `[section]` headers only grouping keys: Boost reads `[model]` + `num-layers`
// as the key model.num-layers, which becomes num-layers again here. Unknown keys name the file.
po::parsed_options parse_config(std::istream& file, const po::options_description& desc, const std::string& path,
                                const std::string& command) {
  po::parsed_options parsed = po::parse_config_file(file, desc, /*allow_unregistered=*/true);
  for (po::option& opt : parsed.options) {
    if (!opt.unregistered) continue;
    const size_t dot = opt.string_key.rfind('.');
    const std::string key = dot == std::string::npos ? opt.string_key : opt.string_key.substr(dot + 1);
    PRORES_CHECK(desc.find_nothrow(key, false) != nullptr, command, ": unknown option '", key,
                 "' in the config file '", path, "'");
    opt.string_key = key;
    opt.unregistered = false;
  }
  keep_last_occurrences(parsed);
  return parsed;
}

}  // namespace

bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& desc, po::variables_map& vm) {
  std::string stage = "command line";
  try {
    po::parsed_options cli = po::command_line_parser(args)
                                 .options(desc)
                                 .style(po::command_line_style::default_style &
                                        ~po::command_line_style::allow_guessing)
                                 .run();
    for (const po::option& opt : cli.options)
      PRORES_CHECK(opt.position_key < 0, command, ": unexpected argument '",
                   opt.original_tokens.empty() ? std::string() : opt.original_tokens.front(), "'");
    keep_last_occurrences(cli);
    po::store(cli, vm);
    if (vm.count("help")) return false;
    if (desc.find_nothrow("config", false) && vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream file(path);
      PRORES_CHECK(file.good(), "--config: cannot open '", path, "'");
      stage = "config file '" + path + "'";
      po::store(parse_config(file, desc, path, command), vm);
    }
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    PRORES_FAIL(command, ": unknown option '", e.get_option_name(), "' in the ", stage);
  } catch (const po::error& e) {
    PRORES_FAIL(command, ": ", e.what(), " (in the ", stage, ")");
  }
  return true;
}

std::vector<int64_t> parse_iteration_list(const std::string& option, const std::string& text) {
  std::vector<int64_t> iters;
  size_t begin = 0;
  while (true) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    int64_t value = 0;
    const auto res = std::from_chars(item.data(), item.data() + item.size(), value);
    PRORES_CHECK(!item.empty() && item.front() != '-' && res.ec == std::errc() &&
                     res.ptr == item.data() + item.size(),
                 option, ": '", item, "' in '", text,
                 "' is not a non-negative integer (expected a comma-separated list such as 0,100,500)");
    iters.push_back(value);
    if (end == text.size()) break;
    begin = end + 1;
  }
  return iters;
}

void add_model_options(po::options_description& desc, ModelConfig& m) {
  for_each_model_field([&](const ModelField& field, auto member) {
    auto& value = m.*member;
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, bool>)
      desc.add_options()(field.option, po::bool_switch(&value), field.help);
    else if constexpr (std::is_enum_v<T>)
      desc.add_options()(field.option,
                         po::value<std::string>()->default_value(name_of(value))->notifier(
                             [&value](const std::string& name) { parse_into(name, value); }),
                         field.help);
    else
      desc.add_options()(field.option, po::value(&value)->default_value(value), field.help);
  });
}

}  // namespace prores
