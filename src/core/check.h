// Error handling: PRORES_CHECK throws prores::Error carrying file, line and a message built from stream
// arguments. Library code throws; only the top level (cli/main.cpp) catches, prints one line and exits.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace prores {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An error every rank of a distributed run has learned about together (the ranks agreed on it before any
// collective that could hang): the top level may finalize normally instead of aborting the others.
class SetupError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
[[noreturn]] void throw_error(const char* file, int line, const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  os << " [" << file << ":" << line << "]";
  throw Error(os.str());
}
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace prores

// PRORES_CHECK(cond, "what", value, "more") throws prores::Error when cond is false.
#define PRORES_CHECK(cond, ...)                                          \
  do {                                                                   \
    if (!(cond)) ::prores::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

// PRORES_FAIL("what", value) always throws.
#define PRORES_FAIL(...) ::prores::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__)
