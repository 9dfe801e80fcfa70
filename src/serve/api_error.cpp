// ApiError and the OpenAI-shaped error body (see api_error.h).
#include "serve/api_error.h"

#include <utility>

namespace prores::serve {

ApiError::ApiError(int status, std::string param, const std::string& message)
    : Error(message), status_(status), param_(std::move(param)) {}

nlohmann::ordered_json error_body(int status, const std::string& message, const std::string& param) {
  nlohmann::ordered_json error;
  error["message"] = message;
  error["type"] = status >= 500 ? "server_error" : "invalid_request_error";
  error["param"] = param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(param);
  error["code"] = status;
  return {{"error", std::move(error)}};
}

}  // namespace prores::serve
