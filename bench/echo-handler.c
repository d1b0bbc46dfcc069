/* An inetd-style echo handler for bench/activation.sh --handler c: copies
 * stdin to stdout until EOF. Built statically where the C library allows,
 * so that its start is an exec and little else: what the activators differ
 * by is then a larger share of each connection than with /bin/cat, whose
 * dynamic loading and locale take most of it. */
#include <unistd.h>

int main(void) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n <= 0)
      return n < 0;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(1, buf + off, (size_t)(n - off));
      if (w <= 0)
        return 1;
      off += w;
    }
  }
}
