// The HTTP side of `prores serve` (see completions_server.h): routes, JSON answers and errors, the generator's
// lock, and a stop that works from any thread.
#include "serve/completions_server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "core/check.h"
#include "serve/api_error.h"

namespace prores::serve {

namespace {

// The largest request body accepted (a longer one is answered 413).
constexpr size_t kMaxBodyBytes = size_t{64} << 20;

struct Route {
  const char* method;
  const char* path;
};
constexpr Route kRoutes[] = {{"POST", "/v1/completions"}, {"GET", "/v1/models"},   {"GET", "/tokenizer_info"},
                             {"POST", "/tokenize"},       {"POST", "/detokenize"}, {"GET", "/health"}};

void set_json(httplib::Response& res, const Json& json) {
  res.set_content(json.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

// Answers with what make_json returns (200), or with the error it throws: an ApiError's status, else 500.
template <typename MakeJson>
void answer(httplib::Response& res, MakeJson&& make_json) {
  try {
    const Json json = make_json();
    res.status = 200;
    set_json(res, json);
  } catch (const ApiError& e) {
    res.status = e.status();
    set_json(res, error_body(e.status(), e.what(), e.param()));
  } catch (const std::exception& e) {
    res.status = 500;
    set_json(res, error_body(500, e.what()));
  }
}

// The JSON error body of a response httplib refused before any handler (no route, a body too large): 405 for a
// known path with another method.
void answer_unhandled(const httplib::Request& req, httplib::Response& res) {
  std::string message = "HTTP " + std::to_string(res.status);
  if (res.status == 404) {
    message = "no endpoint " + req.method + " " + req.path;
    for (const Route& route : kRoutes) {
      if (req.path == route.path) {
        res.status = 405;
        message = req.path + " takes " + route.method + ", not " + req.method;
      }
    }
  } else if (res.status == 413) {
    message = "the request body is larger than " + std::to_string(kMaxBodyBytes >> 20) + " MiB";
  }
  set_json(res, error_body(res.status, message));
}

}  // namespace

CompletionsServer::CompletionsServer(eval::LoadedModel& model, ServeOptions options)
    : model_(model),
      tokenizer_(model.codec()),
      options_(std::move(options)),
      context_length_(model.generator().context_length()),
      started_(static_cast<int64_t>(std::time(nullptr))),
      server_(std::make_unique<httplib::Server>()) {
  std::random_device entropy;
  next_seed_ = (uint64_t{entropy()} << 32) | entropy();
  next_id_ = (uint64_t{entropy()} << 32) | entropy();
  httplib::Server& s = *server_;
  // A response goes out in more than one write: without TCP_NODELAY, Nagle's algorithm and the client's delayed
  // ACK hold every request on a kept-alive connection (lm-eval's) for tens of milliseconds.
  s.set_tcp_nodelay(true);
  s.set_payload_max_length(kMaxBodyBytes);
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] { return completions(req.body); });
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    answer(res, [&] { return models_response(options_.model_name, started_, context_length_); });
  });
  s.Get("/tokenizer_info", [this](const httplib::Request&, httplib::Response& res) {
    answer(res, [&] { return tokenizer_info(tokenizer_, context_length_); });
  });
  s.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] { return tokenize_response(req.body, tokenizer_, context_length_); });
  });
  s.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] { return detokenize_response(req.body, tokenizer_); });
  });
  s.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  // httplib calls this for every status >= 400: the handlers' errors already carry their JSON body.
  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    answer_unhandled(req, res);
    return httplib::Server::HandlerResponse::Handled;
  }));
  PRORES_CHECK(options_.port >= 0 && options_.port <= 65535, "--port must be from 0 to 65535, got ", options_.port);
  if (options_.port == 0) {
    port_ = s.bind_to_any_port(options_.host);
    PRORES_CHECK(port_ > 0, "--host ", options_.host, " --port 0: cannot listen on any port of that address");
  } else {
    PRORES_CHECK(s.bind_to_port(options_.host, options_.port), "--host ", options_.host, " --port ", options_.port,
                 ": cannot listen there (the port in use, or not an address of this machine)");
    port_ = options_.port;
  }
}

CompletionsServer::~CompletionsServer() = default;

void CompletionsServer::run() {
  std::thread listener([this] {
    server_->listen_after_bind();
    {
      const std::lock_guard<std::mutex> lock(stop_mutex_);
      listener_ended_ = true;
    }
    stop_changed_.notify_all();
  });
  bool stopped_by_request = false;
  {
    std::unique_lock<std::mutex> lock(stop_mutex_);
    stop_changed_.wait(lock, [this] { return stop_requested_ || listener_ended_; });
    stopped_by_request = stop_requested_;
  }
  // httplib's stop() acts only once its accept loop has started.
  while (stopped_by_request && !server_->is_running()) {
    {
      const std::lock_guard<std::mutex> lock(stop_mutex_);
      if (listener_ended_) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
  listener.join();
  PRORES_CHECK(stopped_by_request, "serve: listening on ", options_.host, ":", port_, " failed");
}

void CompletionsServer::stop() {
  {
    const std::lock_guard<std::mutex> lock(stop_mutex_);
    stop_requested_ = true;
  }
  stop_changed_.notify_all();
}

Json CompletionsServer::completions(const std::string& body) {
  const CompletionRequest request = parse_completion_request(body, tokenizer_, context_length_, next_seed_++);
  std::vector<Completion> completions;
  completions.reserve(request.prompts.size());
  for (const Prompt& prompt : request.prompts) {
    const std::lock_guard<std::mutex> lock(generator_mutex_);
    completions.push_back(complete(model_.generator(), request, prompt, tokenizer_));
  }
  return completion_response(request, completions, tokenizer_, next_completion_id(),
                             static_cast<int64_t>(std::time(nullptr)), options_.model_name);
}

std::string CompletionsServer::next_completion_id() {
  char id[32];
  std::snprintf(id, sizeof id, "cmpl-%016llx", static_cast<unsigned long long>(next_id_++));
  return id;
}

}  // namespace prores::serve
