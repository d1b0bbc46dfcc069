/*
 * Load client and tiny echo service for bench/activation.sh, which compares
 * flint's socket activation with systemd-socket-activate, tcpserver and
 * xinetd. Built by that script with the system C compiler (it is not part of
 * the cargo workspace). Modes:
 *
 *   activation-client rate HOST PORT CLIENTS MAX_CONNS MAX_SECONDS
 *       CLIENTS threads each connect, send one line, wait for the first
 *       echoed byte (connect-to-first-byte latency), half-close, read to EOF
 *       (the per-connection handler has exited) and close; until MAX_CONNS
 *       connections in total or MAX_SECONDS have passed. Prints one line:
 *       "conns=N errors=E seconds=S rate=R p50_us=A p99_us=B".
 *
 *   activation-client first HOST PORT
 *       One connection; prints the connect-to-first-byte time in
 *       microseconds ("first_us=N"), for a service the connection starts.
 *
 *   activation-client serve-fd3
 *       An Accept=no echo service: checks LISTEN_PID/LISTEN_FDS, then
 *       accepts on fd 3 and echoes each connection until EOF.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static long max_conns;
static double deadline;
static atomic_long started;
static atomic_long done;
static atomic_long errors;
static uint32_t *lat_us; /* one slot per finished connection */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection: returns connect-to-first-byte in microseconds, or -1. */
static long one_connection(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double t0 = now();
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0) {
    close(fd);
    return -1;
  }
  static const char msg[] = "ping\n";
  if (write(fd, msg, sizeof msg - 1) != (ssize_t)(sizeof msg - 1)) {
    close(fd);
    return -1;
  }
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) {
    close(fd);
    return -1;
  }
  double t1 = now();
  shutdown(fd, SHUT_WR);
  for (;;) {
    n = read(fd, buf, sizeof buf);
    if (n == 0)
      break;
    if (n < 0) {
      close(fd);
      return -1;
    }
  }
  close(fd);
  return (long)((t1 - t0) * 1e6);
}

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    if (now() >= deadline)
      break;
    if (atomic_fetch_add(&started, 1) >= max_conns)
      break;
    long us = one_connection();
    if (us < 0) {
      atomic_fetch_add(&errors, 1);
      continue;
    }
    long slot = atomic_fetch_add(&done, 1);
    lat_us[slot] = (uint32_t)us;
  }
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int set_target(const char *host, const char *port) {
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)atoi(port));
  return inet_pton(AF_INET, host, &target.sin_addr) == 1 ? 0 : -1;
}

static int rate(int argc, char **argv) {
  if (argc != 7 || set_target(argv[2], argv[3]) < 0) {
    fprintf(stderr, "usage: %s rate HOST PORT CLIENTS MAX_CONNS MAX_SECONDS\n", argv[0]);
    return 2;
  }
  int clients = atoi(argv[4]);
  max_conns = atol(argv[5]);
  double seconds = atof(argv[6]);
  if (clients < 1 || clients > 256 || max_conns < 1 || seconds <= 0)
    return 2;
  lat_us = calloc((size_t)max_conns, sizeof *lat_us);
  if (!lat_us)
    return 1;
  pthread_t th[256];
  double t0 = now();
  deadline = t0 + seconds;
  for (int i = 0; i < clients; i++)
    pthread_create(&th[i], NULL, worker, NULL);
  for (int i = 0; i < clients; i++)
    pthread_join(th[i], NULL);
  double elapsed = now() - t0;
  long n = atomic_load(&done);
  qsort(lat_us, (size_t)n, sizeof *lat_us, cmp_u32);
  uint32_t p50 = n ? lat_us[(n - 1) * 50 / 100] : 0;
  uint32_t p99 = n ? lat_us[(n - 1) * 99 / 100] : 0;
  printf("conns=%ld errors=%ld seconds=%.3f rate=%.1f p50_us=%u p99_us=%u\n", n,
         atomic_load(&errors), elapsed, (double)n / elapsed, p50, p99);
  return 0;
}

static int first(int argc, char **argv) {
  if (argc != 4 || set_target(argv[2], argv[3]) < 0) {
    fprintf(stderr, "usage: %s first HOST PORT\n", argv[0]);
    return 2;
  }
  long us = one_connection();
  if (us < 0) {
    fprintf(stderr, "first: connection failed: %s\n", strerror(errno));
    return 1;
  }
  printf("first_us=%ld\n", us);
  return 0;
}

static int serve_fd3(void) {
  const char *pid = getenv("LISTEN_PID");
  const char *fds = getenv("LISTEN_FDS");
  if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1) {
    fprintf(stderr, "serve-fd3: not socket activated\n");
    return 1;
  }
  for (;;) {
    int c = accept4(3, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return 1;
    }
    char buf[4096];
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0)
      if (write(c, buf, (size_t)n) != n)
        break;
    close(c);
  }
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "rate") == 0)
    return rate(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "first") == 0)
    return first(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "serve-fd3") == 0)
    return serve_fd3();
  fprintf(stderr, "usage: %s rate|first|serve-fd3 ...\n", argv[0]);
  return 2;
}
