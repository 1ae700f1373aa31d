/* The last error of this thread, and turning C++ exceptions into it. */
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "internal.h"

/* TLS, not a pthread key: a key's destructor would pin the library. */
static __thread char t_err[1024];

const char* paddlehot_pdcapi_last_error(void) { return t_err; }

void phot_clear_error(void) { t_err[0] = '\0'; }

static void tidy(void) {
  size_t n = strlen(t_err);
  while (n > 0 && (t_err[n - 1] == '\n' || t_err[n - 1] == ' ' || t_err[n - 1] == '\r'))
    t_err[--n] = '\0';
}

void phot_set_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t_err, sizeof t_err, fmt, ap);
  va_end(ap);
  tidy();
}

/* Paddle's messages carry a banner, "In user code:", a C++ traceback, hint lines and the one
 * line that says what happened ("InvalidArgumentError: ..." or "(InvalidArgument) ..."): keep
 * that line without its " (at /paddle/...:123)" location; else the first non-empty line. */
static bool is_error_line(const std::string& l) {
  if (!l.empty() && l[0] == '(') return l.find(") ") != std::string::npos;
  size_t colon = l.find("Error: ");
  return colon != std::string::npos && colon > 0 && l.find(' ') > colon;
}

static std::string summary(const char* what) {
  std::string s = what ? what : "", first, pick;
  size_t pos = 0;
  while (pos <= s.size() && pick.empty()) {
    size_t nl = s.find('\n', pos);
    std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? s.size() + 1 : nl + 1;
    size_t a = line.find_first_not_of(" \t\r-");
    if (a == std::string::npos) continue;
    line = line.substr(a);
    if (line == "In user code:" || line.rfind("Error Message Summary", 0) == 0) continue;
    if (first.empty()) first = line;
    if (is_error_line(line)) pick = line;
  }
  std::string out = pick.empty() ? first : pick;
  size_t loc = out.find(" (at /");
  if (loc != std::string::npos) out = out.substr(0, loc);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\r')) out.pop_back();
  return out.empty() ? "std::exception (no message)" : out;
}

void phot_set_error_from_current(const char* fn) {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    phot_set_error("%s: out of memory", fn);
  } catch (const std::exception& e) {
    phot_set_error("%s: %s", fn, summary(e.what()).c_str());
  } catch (...) {
    phot_set_error("%s: unknown C++ exception", fn);
  }
}
