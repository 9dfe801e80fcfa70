// Request formation (requests.h), following lm-evaluation-harness's _encode_pair, loglikelihood and
// get_rolling_token_windows + make_disjoint_window.
#include "eval/requests.h"

#include <algorithm>
#include <string>

#include "core/check.h"

namespace prores::eval {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// tokens (=) the last max_length + 1 of whole; the continuation's count is clipped to what was kept.
TokenRequest fit(std::vector<int32_t> whole, int64_t continuation, int64_t max_length) {
  TokenRequest r;
  const int64_t keep = max_length + 1, size = static_cast<int64_t>(whole.size());
  if (size > keep) {
    r.truncated = true;
    whole.erase(whole.begin(), whole.begin() + (size - keep));
  }
  r.continuation = std::min<int64_t>(continuation, static_cast<int64_t>(whole.size()) - 1);
  r.tokens = std::move(whole);
  return r;
}

}  // namespace

TokenRequest make_request(const TextCodec& codec, std::string_view context, std::string_view continuation,
                          int64_t max_length) {
  if (context.empty()) {
    PRORES_CHECK(codec.prefix_id() >= 0, "an empty context needs a BOS or EOS token, and the byte-level codec has none");
    std::vector<int32_t> whole{codec.prefix_id()};
    const std::vector<int32_t> cont = codec.encode(continuation);
    whole.insert(whole.end(), cont.begin(), cont.end());
    return fit(std::move(whole), static_cast<int64_t>(cont.size()), max_length);
  }
  size_t end = context.size();
  while (end > 0 && is_space(context[end - 1])) --end;
  const std::string moved = std::string(context.substr(end)) + std::string(continuation);
  context = context.substr(0, end);
  std::vector<int32_t> whole = codec.encode(std::string(context) + moved);
  const int64_t context_tokens = static_cast<int64_t>(codec.encode(context).size());
  const int64_t cont = std::max<int64_t>(0, static_cast<int64_t>(whole.size()) - context_tokens);
  return fit(std::move(whole), cont, max_length);
}

std::vector<TokenRequest> rolling_requests(const TextCodec& codec, std::string_view text, int64_t max_length) {
  PRORES_CHECK(codec.prefix_id() >= 0, "rolling log-likelihood needs a BOS or EOS token to start the first window");
  const std::vector<int32_t> tokens = codec.encode(text);
  const int64_t n = static_cast<int64_t>(tokens.size());
  std::vector<TokenRequest> windows;
  int64_t predicted = 0;
  while (predicted < n) {
    const int64_t count = std::min(max_length, n - predicted), end = predicted + count;
    TokenRequest r;
    if (predicted == 0) r.tokens.push_back(codec.prefix_id());
    // The window's input: the max_length tokens before `end` (or the prefix and all before it), of which the
    // last `count` targets are scored.
    const int64_t begin = predicted == 0 ? 0 : end - max_length - 1;
    r.tokens.insert(r.tokens.end(), tokens.begin() + begin, tokens.begin() + end);
    r.continuation = count;
    windows.push_back(std::move(r));
    predicted = end;
  }
  return windows;
}

}  // namespace prores::eval
