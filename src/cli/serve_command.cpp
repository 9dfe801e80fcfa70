// `prores serve` (serve_command.h): options → eval::LoadedModel → serve::CompletionsServer, run until SIGTERM or
// SIGINT, which a watcher thread takes (blocked in every other thread, so no signal handler runs in the server).
#include "cli/serve_command.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "cli/inference_options.h"
#include "core/check.h"
#include "serve/completions_server.h"

namespace prores {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: prores serve --load DIR [--host ADDRESS] [--port N] [options]\n"
    "Serves the checkpoint's model (loaded on one CPU rank from any layout) over HTTP: OpenAI's /v1/completions\n"
    "and /v1/models, and vLLM's /tokenizer_info, /tokenize and /detokenize, so that lm-eval's local-completions\n"
    "model can evaluate it (docs/serve.md). SIGTERM or SIGINT stops it.\n";

// The model's id unless --model-name: the checkpoint directory's name, for an iteration directory its run's
// name and its own ("a/iter_0000100").
std::string default_model_name(const std::string& load) {
  std::filesystem::path dir = std::filesystem::path(load).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // a trailing slash
  const std::string name = dir.filename().string();
  if (name.rfind("iter_", 0) == 0 && dir.has_parent_path() && dir.parent_path().has_filename())
    return dir.parent_path().filename().string() + "/" + name;
  return name;
}

// host as a URL writes it (an IPv6 address in brackets).
std::string url_host(const std::string& host) {
  return host.find(':') == std::string::npos ? host : "[" + host + "]";
}

// SIGTERM and SIGINT: blocked from construction on in this thread and the threads it starts afterwards (the
// model's and the server's), taken by a watcher thread, and unblocked again on destruction.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals_, &previous_);
  }
  ~StopSignals() {
    done_ = true;
    if (watcher_.joinable()) watcher_.join();
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Calls on_stop from the watcher thread when the first of the signals arrives.
  void watch(std::function<void()> on_stop) {
    watcher_ = std::thread([this, on_stop = std::move(on_stop)] {
      const timespec poll{0, 100'000'000};  // how often the watcher looks at done_
      while (!done_) {
        const int s = sigtimedwait(&signals_, nullptr, &poll);
        if (s == SIGTERM || s == SIGINT) {
          received_ = s;
          on_stop();
          return;
        }
      }
    });
  }
  // "SIGTERM" or "SIGINT" once one has arrived, else "".
  const char* received() const { return received_ == SIGTERM ? "SIGTERM" : received_ == SIGINT ? "SIGINT" : ""; }

 private:
  sigset_t signals_, previous_;
  std::thread watcher_;
  std::atomic<bool> done_{false};
  std::atomic<int> received_{0};
};

}  // namespace

int run_serve_command(const std::vector<std::string>& args, std::ostream& out) {
  InferenceOptions o;
  serve::ServeOptions s;
  po::options_description extra;
  extra.add_options()("host", po::value(&s.host)->default_value(s.host),
                      "address to listen on (the default, loopback, admits this machine's clients only)")
      ("port", po::value(&s.port)->default_value(s.port), "port to listen on (0: any free one, printed at start)")
      ("model-name", po::value(&s.model_name),
       "the model's id in responses and /v1/models (default: the checkpoint directory's name)");
  if (!parse_inference_options("serve", kUsage, args, extra, out, o)) return 0;
  PRORES_CHECK(s.port >= 0 && s.port <= 65535, "--port must be from 0 to 65535, got ", s.port);
  if (s.model_name.empty()) s.model_name = default_model_name(o.load.load);
  StopSignals signals;  // before any thread starts, so that every one inherits the mask
  eval::LoadedModel model(o.model, o.schedule, o.load);
  serve::CompletionsServer server(model, s);
  out << "serve: loaded " << model.checkpoint() << " (iteration " << model.iteration() << ", "
      << (model.codec().is_bytes() ? "byte-level" : "tokenizer " + model.codec().model_path()) << ")\n";
  out << "serve: listening on http://" << url_host(s.host) << ":" << server.port() << " (model " << s.model_name
      << ", context " << model.generator().context_length() << " tokens)" << std::endl;
  signals.watch([&server] { server.stop(); });
  server.run();
  out << "serve: stopped by " << signals.received() << std::endl;
  return 0;
}

}  // namespace prores
