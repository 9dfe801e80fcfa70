// The errors `prores serve` answers with: a status (4xx for the request's fault, 5xx for the server's) and a body
// in OpenAI's shape, {"error": {"message", "type", "param", "code"}}, so that OpenAI clients and lm-eval show the
// message.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/check.h"

namespace prores::serve {

// A request the server refuses, thrown by request parsing and caught by the HTTP handler, which answers with
// status() and error_body(). Its message is for the client: the field and the value at fault, without the
// source position PRORES_CHECK appends.
class ApiError : public Error {
 public:
  // param: the request field at fault ("" when none, e.g. malformed JSON).
  ApiError(int status, std::string param, const std::string& message);
  int status() const { return status_; }
  const std::string& param() const { return param_; }

 private:
  int status_;
  std::string param_;
};

// A 400 naming param; the message is the concatenation of parts.
template <typename... Parts>
[[noreturn]] void bad_request(const std::string& param, const Parts&... parts) {
  throw ApiError(400, param, detail::concat(parts...));
}

// {"error": {"message": message, "type": "invalid_request_error" (4xx) or "server_error" (5xx), "param": param
// or null when empty, "code": status}} (code as vLLM sets it: the HTTP status).
nlohmann::ordered_json error_body(int status, const std::string& message, const std::string& param = "");

}  // namespace prores::serve
