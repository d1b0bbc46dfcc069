/* The echo handler of bench/activation.sh --handler raw: copies stdin to
 * stdout until EOF with system calls only, no C library. A program linked
 * with glibc, even statically, runs glibc's CPU feature and cache detection
 * before main(): dozens of CPUID instructions, each of which traps to the
 * hypervisor on a virtual machine. On the 2-CPU machine of bench/README.md
 * that start took about 350 µs of each connection's 800, the same for every
 * activator, which pressed their ratios towards 1. Without it, an exec is
 * all the handler costs, and the activators' own work is what differs. */
#include <sys/syscall.h>

static char buf[4096];

static long sys3(long n, long a, long b, long c) {
#if defined(__x86_64__)
  long r;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "a"(n), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return r;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
#else
#error "bench/echo-handler-raw.c: x86_64 or aarch64 only; use --handler c"
#endif
}

__attribute__((noreturn)) void _start(void) {
  long code = 0;
  for (;;) {
    long n = sys3(SYS_read, 0, (long)buf, sizeof buf);
    if (n <= 0) {
      code = n < 0;
      break;
    }
    for (long off = 0; off < n;) {
      long w = sys3(SYS_write, 1, (long)(buf + off), n - off);
      if (w <= 0) {
        code = 1;
        goto out;
      }
      off += w;
    }
  }
out:
  sys3(SYS_exit_group, code, 0, 0);
  for (;;) {
  }
}
