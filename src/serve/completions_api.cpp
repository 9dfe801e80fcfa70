// /v1/completions and the tokenizer endpoints as JSON in, JSON out (see completions_api.h).
#include "serve/completions_api.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "core/json_input.h"
#include "serve/api_error.h"

namespace prores::serve {

namespace {

// The request body as a JSON object (a repeated key: the last wins, as Python's json and pydantic read it).
Json parse_body(std::string_view body) {
  Json json;
  std::string error;
  if (!try_parse_json(body, &json, &error, RepeatedKeys::LastWins)) bad_request("", "request body: ", error);
  if (!json.is_object()) bad_request("", "the request body must be a JSON object, got ", json_kind_name(json));
  return json;
}

// The field named key, or nullptr when it is absent or null.
const Json* field(const Json& body, const char* key) {
  const Json* value = json_member(body, key);
  return value == nullptr || value->is_null() ? nullptr : value;
}

// A value for an error message: its JSON, cut at 40 characters.
std::string shown(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

// The integer at key in [low, high]; absent: fallback. what describes the range for the message.
int64_t integer_field(const Json& body, const char* key, int64_t low, int64_t high, int64_t fallback,
                      const std::string& what) {
  const Json* value = field(body, key);
  if (value == nullptr) return fallback;
  if (!json_is_int64(*value) || value->get<int64_t>() < low || value->get<int64_t>() > high)
    bad_request(key, key, " must be ", what, ", got ", shown(*value));
  return value->get<int64_t>();
}

double number_field(const Json& body, const char* key, double fallback) {
  const Json* value = field(body, key);
  if (value == nullptr) return fallback;
  if (!value->is_number() || !std::isfinite(value->get<double>()))
    bad_request(key, key, " must be a number, got ", shown(*value));
  return value->get<double>();
}

bool boolean_field(const Json& body, const char* key, bool fallback) {
  const Json* value = field(body, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) bad_request(key, key, " must be true or false, got ", shown(*value));
  return value->get<bool>();
}

// The list of token ids at value (where names it in messages, param the field).
std::vector<int32_t> token_ids(const Json& value, const std::string& where, const char* param,
                               const ServedTokenizer& tokenizer) {
  if (!value.is_array()) bad_request(param, where, " must be a list of token ids, got ", shown(value));
  std::vector<int32_t> ids;
  ids.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& id = value[i];
    if (!json_is_int64(id) || !tokenizer.is_token(id.get<int64_t>()))
      bad_request(param, where, "[", i, "] is ", shown(id), ", not a token id (an integer from 0 to ",
                  tokenizer.codec().vocab_size() - 1, ")");
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return ids;
}

std::vector<Prompt> parse_prompts(const Json& body, const ServedTokenizer& tokenizer, int64_t context_length) {
  const Json* prompt = field(body, "prompt");
  if (prompt == nullptr) bad_request("prompt", "prompt is missing");
  std::vector<Prompt> prompts;
  const auto add_text = [&](const std::string& text) { prompts.push_back({tokenizer.encode(text), text}); };
  const auto add_ids = [&](const Json& list, const std::string& where) {
    std::vector<int32_t> ids = token_ids(list, where, "prompt", tokenizer);
    std::string text = tokenizer.text(ids);
    prompts.push_back({std::move(ids), std::move(text)});
  };
  const auto every = [&](auto is) { return std::all_of(prompt->begin(), prompt->end(), is); };
  if (prompt->is_string()) {
    add_text(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
    add_ids(*prompt, "prompt");
  } else if (prompt->is_array() && !prompt->empty() && every([](const Json& p) { return p.is_string(); })) {
    for (const Json& p : *prompt) add_text(p.get<std::string>());
  } else if (prompt->is_array() && !prompt->empty() && every([](const Json& p) { return p.is_array(); })) {
    for (size_t i = 0; i < prompt->size(); ++i) add_ids((*prompt)[i], "prompt[" + std::to_string(i) + "]");
  } else {
    bad_request("prompt",
                "prompt must be a string, a list of strings, a list of token ids or a list of lists of token ids, "
                "got ",
                shown(*prompt));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string name = prompt->is_array() && prompts.size() > 1 ? "prompt[" + std::to_string(i) + "]" : "prompt";
    const int64_t n = static_cast<int64_t>(prompts[i].ids.size());
    if (n == 0) bad_request("prompt", name, " has no tokens");
    if (n > context_length)
      bad_request("prompt", name, " has ", n, " tokens, more than the model's context of ", context_length, " tokens");
  }
  return prompts;
}

std::vector<std::string> parse_stop(const Json& body) {
  const Json* stop = field(body, "stop");
  if (stop == nullptr) return {};
  std::vector<std::string> strings;
  if (stop->is_string()) {
    strings.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    for (const Json& s : *stop) {
      if (!s.is_string()) bad_request("stop", "stop must be a string or a list of strings, got ", shown(*stop));
      strings.push_back(s.get<std::string>());
    }
  } else {
    bad_request("stop", "stop must be a string or a list of strings, got ", shown(*stop));
  }
  for (const std::string& s : strings)
    if (s.empty()) bad_request("stop", "stop strings must not be empty");
  return strings;
}

// Refuses the OpenAI fields the server does not implement when they ask for more than the default.
void refuse_unsupported(const Json& body) {
  for (const char* key : {"n", "best_of"}) {
    const Json* value = field(body, key);
    if (value != nullptr && !(json_is_int64(*value) && value->get<int64_t>() == 1))
      bad_request(key, key, " is not supported (one choice per prompt): leave it out or send 1, got ", shown(*value));
  }
  if (const Json* suffix = field(body, "suffix"); suffix != nullptr && !(suffix->is_string() && suffix->empty()))
    bad_request("suffix", "suffix is not supported (no insertion): leave it out, got ", shown(*suffix));
  if (const Json* stream = field(body, "stream"); stream != nullptr && *stream != false)
    bad_request("stream", "stream is not supported: leave it out or send false, got ", shown(*stream));
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    const Json* value = field(body, key);
    if (value != nullptr && !(value->is_number() && value->get<double>() == 0))
      bad_request(key, key, " is not supported: leave it out or send 0, got ", shown(*value));
  }
  if (const Json* bias = field(body, "logit_bias"); bias != nullptr && !(bias->is_object() && bias->empty()))
    bad_request("logit_bias", "logit_bias is not supported: leave it out, got ", shown(*bias));
  if (const Json* model = field(body, "model"); model != nullptr && !model->is_string())
    bad_request("model", "model must be a string, got ", shown(*model));
}

eval::SamplingOptions parse_sampling(const Json& body, uint64_t default_seed) {
  eval::SamplingOptions s;
  s.temperature = number_field(body, "temperature", 1.0);
  if (s.temperature < 0) bad_request("temperature", "temperature must be >= 0 (0: greedy), got ", s.temperature);
  s.top_p = number_field(body, "top_p", 1.0);
  if (!(s.top_p > 0 && s.top_p <= 1)) bad_request("top_p", "top_p must be in (0, 1], got ", s.top_p);
  s.top_k = integer_field(body, "top_k", -1, std::numeric_limits<int64_t>::max(), 0,
                          "-1 or 0 (all tokens) or a positive integer");
  s.top_k = std::max<int64_t>(s.top_k, 0);
  s.seed = default_seed;
  if (const Json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) bad_request("seed", "seed must be an integer, got ", shown(*seed));
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
  }
  return s;
}

// Where the first of stops starts in text (npos: none there).
size_t stop_position(const std::string& text, const std::vector<std::string>& stops) {
  size_t first = std::string::npos;
  for (const std::string& s : stops) first = std::min(first, text.find(s));
  return first;
}

Json logprobs_json(const CompletionRequest& request, const Prompt& prompt, const Completion& completion,
                   const ServedTokenizer& tokenizer) {
  Json tokens = Json::array(), token_logprobs = Json::array(), top_logprobs = Json::array();
  const auto add = [&](const eval::TokenLogprob& t) {
    tokens.push_back(tokenizer.token_text(t.token));
    token_logprobs.push_back(t.logprob);
    Json top = Json::object();
    for (const auto& [id, logprob] : t.top) {
      const std::string text = tokenizer.token_text(id);
      const auto it = top.find(text);
      if (it == top.end())
        top[text] = logprob;
      else if (logprob > it->get<double>())
        *it = logprob;
    }
    top_logprobs.push_back(std::move(top));
  };
  if (request.echo) {
    tokens.push_back(tokenizer.token_text(prompt.ids[0]));
    token_logprobs.push_back(nullptr);
    top_logprobs.push_back(nullptr);
    for (const eval::TokenLogprob& t : completion.result.prompt_logprobs) add(t);
  }
  for (const eval::TokenLogprob& t : completion.result.token_logprobs) add(t);
  Json logprobs;
  logprobs["tokens"] = std::move(tokens);
  logprobs["token_logprobs"] = std::move(token_logprobs);
  logprobs["top_logprobs"] = std::move(top_logprobs);
  return logprobs;
}

// The special token of role as <role>_token and <role>_token_id (null when there is none).
void add_special(Json& info, const ServedTokenizer& tokenizer, const std::string& role) {
  const SpecialToken* s = tokenizer.special(role);
  info[role + "_token"] = s ? Json(s->text) : Json();
  info[role + "_token_id"] = s ? Json(s->id) : Json();
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body_text, const ServedTokenizer& tokenizer,
                                           int64_t context_length, uint64_t default_seed) {
  const Json body = parse_body(body_text);
  refuse_unsupported(body);
  CompletionRequest r;
  r.prompts = parse_prompts(body, tokenizer, context_length);
  r.max_tokens = integer_field(body, "max_tokens", 0, context_length, 16,
                               "an integer from 0 to " + std::to_string(context_length) + " (the model's context)");
  r.sampling = parse_sampling(body, default_seed);
  r.stop = parse_stop(body);
  r.logprobs = integer_field(body, "logprobs", 0, kMaxLogprobs, -1,
                             "an integer from 0 to " + std::to_string(kMaxLogprobs) + " or null");
  r.echo = boolean_field(body, "echo", false);
  return r;
}

Completion complete(eval::Generator& generator, const CompletionRequest& request, const Prompt& prompt,
                    const ServedTokenizer& tokenizer) {
  eval::GenerationRequest g;
  g.prompt = prompt.ids;
  g.max_new_tokens = request.max_tokens;
  g.sampling = request.sampling;
  g.stop_at_eos = true;
  g.eos_id = tokenizer.codec().eos_id();
  g.logprobs = request.logprobs;
  g.echo = request.echo && request.logprobs >= 0;
  if (!request.stop.empty())
    g.should_stop = [&](std::span<const int32_t> generated) {
      return stop_position(tokenizer.text(generated), request.stop) != std::string::npos;
    };
  Completion c{generator.generate(g), "", ""};
  c.text = tokenizer.text(c.result.tokens);
  c.finish_reason = c.result.finish_reason;
  if (const size_t cut = stop_position(c.text, request.stop); cut != std::string::npos) {
    c.text.resize(cut);
    c.finish_reason = "stop";
  }
  return c;
}

Json completion_response(const CompletionRequest& request, const std::vector<Completion>& completions,
                         const ServedTokenizer& tokenizer, const std::string& id, int64_t created,
                         const std::string& model) {
  PRORES_CHECK(completions.size() == request.prompts.size(), "completion_response: ", completions.size(),
               " completions for ", request.prompts.size(), " prompts");
  Json choices = Json::array();
  int64_t prompt_tokens = 0, completion_tokens = 0;
  for (size_t i = 0; i < completions.size(); ++i) {
    const Prompt& prompt = request.prompts[i];
    const Completion& c = completions[i];
    Json choice;
    choice["index"] = i;
    choice["text"] = request.echo ? prompt.text + c.text : c.text;
    choice["logprobs"] = request.logprobs >= 0 ? logprobs_json(request, prompt, c, tokenizer) : Json();
    choice["finish_reason"] = c.finish_reason;
    choices.push_back(std::move(choice));
    prompt_tokens += static_cast<int64_t>(prompt.ids.size());
    completion_tokens += static_cast<int64_t>(c.result.tokens.size());
  }
  Json response;
  response["id"] = id;
  response["object"] = "text_completion";
  response["created"] = created;
  response["model"] = model;
  response["choices"] = std::move(choices);
  response["usage"] = {{"prompt_tokens", prompt_tokens},
                       {"completion_tokens", completion_tokens},
                       {"total_tokens", prompt_tokens + completion_tokens}};
  return response;
}

Json tokenize_response(std::string_view body_text, const ServedTokenizer& tokenizer, int64_t context_length) {
  const Json body = parse_body(body_text);
  const Json* prompt = field(body, "prompt");
  if (prompt == nullptr) bad_request("prompt", "prompt is missing");
  if (!prompt->is_string()) bad_request("prompt", "prompt must be a string, got ", shown(*prompt));
  const std::vector<int32_t> ids =
      tokenizer.encode(prompt->get<std::string>(), boolean_field(body, "add_special_tokens", true));
  Json response;
  response["count"] = ids.size();
  response["max_model_len"] = context_length;
  response["tokens"] = ids;
  return response;
}

Json detokenize_response(std::string_view body_text, const ServedTokenizer& tokenizer) {
  const Json body = parse_body(body_text);
  const Json* tokens = field(body, "tokens");
  if (tokens == nullptr) bad_request("tokens", "tokens is missing");
  return {{"prompt", tokenizer.detokenize(token_ids(*tokens, "tokens", "tokens", tokenizer))}};
}

Json tokenizer_info(const ServedTokenizer& tokenizer, int64_t context_length) {
  Json info;
  info["tokenizer_class"] = tokenizer.codec().is_bytes() ? "bytes" : "SentencePiece";
  for (const char* role : {"eos", "bos", "pad", "unk"}) add_special(info, tokenizer, role);
  info["vocab_size"] = tokenizer.codec().vocab_size();
  info["model_max_length"] = context_length;
  return info;
}

Json models_response(const std::string& model, int64_t created, int64_t context_length) {
  Json entry;
  entry["id"] = model;
  entry["object"] = "model";
  entry["created"] = created;
  entry["owned_by"] = "prores";
  entry["max_model_len"] = context_length;
  return {{"object", "list"}, {"data", Json::array({std::move(entry)})}};
}

}  // namespace prores::serve
