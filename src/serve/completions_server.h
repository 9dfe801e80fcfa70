// `prores serve`'s HTTP server (cpp-httplib): OpenAI's POST /v1/completions and GET /v1/models, vLLM's
// tokenizer endpoints (GET /tokenizer_info, POST /tokenize, POST /detokenize) and GET /health over one loaded
// checkpoint. httplib's thread pool serves the connections; generation is serialized on the one Generator, so
// concurrent clients each get what their request alone would have got. The JSON contract: completions_api.h;
// for users: docs/serve.md.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "eval/loaded_model.h"
#include "serve/completions_api.h"
#include "serve/served_tokenizer.h"

namespace httplib {
class Server;
}

namespace prores::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";  // the address to listen on (loopback unless told otherwise)
  int port = 8000;                 // 0: any free port (see CompletionsServer::port())
  std::string model_name;          // the model's id in responses and /v1/models
};

class CompletionsServer {
 public:
  // Sets up the endpoints and binds options.host:options.port; throws prores::Error naming --host and --port
  // when that fails (an address in use, or not one of this machine). model must outlive the server.
  CompletionsServer(eval::LoadedModel& model, ServeOptions options);
  ~CompletionsServer();

  int port() const { return port_; }  // the bound port (the free one chosen for port 0)
  // Serves until stop() (call once); returns when the requests in progress have been answered. Throws
  // prores::Error when listening fails.
  void run();
  // Makes run() return; callable from any thread, before or during run().
  void stop();

 private:
  Json completions(const std::string& body);
  std::string next_completion_id();

  eval::LoadedModel& model_;
  ServedTokenizer tokenizer_;
  ServeOptions options_;
  int64_t context_length_;
  int64_t started_;  // Unix time, /v1/models' created
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::mutex generator_mutex_;       // the Generator is not thread-safe
  std::atomic<uint64_t> next_seed_;  // the seed of a request without one (distinct per request)
  std::atomic<uint64_t> next_id_;    // completion ids: "cmpl-" and this, counted up from a random start
  std::mutex stop_mutex_;
  std::condition_variable stop_changed_;
  bool stop_requested_ = false;  // guarded by stop_mutex_
  bool listener_ended_ = false;  // guarded by stop_mutex_
};

}  // namespace prores::serve
