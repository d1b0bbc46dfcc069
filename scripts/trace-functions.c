/*
 * Records which functions of a program run, in the order they first run.
 *
 *   trace-functions SYMBOLS SECONDS -- PROGRAM [ARG]...
 *
 * SYMBOLS holds one function per line, "ADDRESS NAME" (hexadecimal link-time
 * address, as `nm` prints it). PROGRAM runs under ptrace: every listed
 * address gets a breakpoint (int3) before the program's first instruction;
 * the first hit of each prints its NAME to stdout, restores the original
 * byte and lets the thread go on, so each function costs one stop. Threads
 * and children sharing the address space before their exec are followed;
 * children are let go at their exec. After SECONDS the program gets SIGTERM
 * (what runs from then on is not reported), and SIGKILL 5 s later.
 *
 * scripts/order-functions.sh uses the names, in this order, as the linker's
 * symbol ordering file: what flint runs at start and while idle ends up
 * together in the binary, so fewer pages of code are mapped.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bp {
	uint64_t addr;
	char *name;
	unsigned char orig;
	int hit;
};

static struct bp *bps;
static size_t nbps;

/* SIGALRM only interrupts the blocking waitpid, so that time is checked. */
static void tick(int sig)
{
	(void)sig;
}

static int by_addr(const void *a, const void *b)
{
	uint64_t x = ((const struct bp *)a)->addr, y = ((const struct bp *)b)->addr;
	return x < y ? -1 : x > y;
}

static struct bp *find(uint64_t addr)
{
	size_t lo = 0, hi = nbps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (bps[mid].addr == addr)
			return &bps[mid];
		if (bps[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Load address of PROGRAM's image in pid (0 for a position-dependent one). */
static uint64_t load_bias(pid_t pid)
{
	char path[64], exe[4096], line[4608];
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	ssize_t n = readlink(path, exe, sizeof exe - 1);
	if (n < 0)
		return 0;
	exe[n] = 0;
	int fd = open(exe, O_RDONLY);
	Elf64_Ehdr eh;
	if (fd < 0 || pread(fd, &eh, sizeof eh, 0) != sizeof eh) {
		perror("trace-functions: read ELF header");
		exit(1);
	}
	close(fd);
	if (eh.e_type != ET_DYN)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *f = fopen(path, "r");
	uint64_t bias = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, off;
		char name[4096] = "";
		if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %4095s", &lo, &off, name) == 3 &&
		    off == 0 && strcmp(name, exe) == 0) {
			bias = lo;
			break;
		}
	}
	if (f)
		fclose(f);
	return bias;
}

int main(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--") != 0) {
		fprintf(stderr, "usage: trace-functions SYMBOLS SECONDS -- PROGRAM [ARG]...\n");
		return 2;
	}
	FILE *sf = fopen(argv[1], "r");
	if (!sf) {
		perror(argv[1]);
		return 1;
	}
	size_t cap = 0;
	char line[8192];
	while (fgets(line, sizeof line, sf)) {
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		line[strcspn(line, "\n")] = 0;
		if (nbps == cap) {
			cap = cap ? cap * 2 : 4096;
			bps = realloc(bps, cap * sizeof *bps);
		}
		bps[nbps].addr = strtoull(line, NULL, 16);
		bps[nbps].name = strdup(sp + 1);
		bps[nbps].hit = 0;
		nbps++;
	}
	fclose(sf);
	qsort(bps, nbps, sizeof *bps, by_addr);
	/* One breakpoint per address: aliases are reported by their first name. */
	size_t kept = 0;
	for (size_t i = 0; i < nbps; i++)
		if (kept == 0 || bps[kept - 1].addr != bps[i].addr)
			bps[kept++] = bps[i];
	nbps = kept;
	double seconds = atof(argv[2]);

	pid_t child = fork();
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		execvp(argv[4], argv + 4);
		perror(argv[4]);
		_exit(127);
	}
	int st;
	waitpid(child, &st, 0);
	ptrace(PTRACE_SETOPTIONS, child, 0,
	       PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC |
		       PTRACE_O_EXITKILL);
	ptrace(PTRACE_CONT, child, 0, 0);
	waitpid(child, &st, 0);
	if (!WIFSTOPPED(st) || st >> 8 != (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		fprintf(stderr, "trace-functions: %s did not start\n", argv[4]);
		return 1;
	}
	uint64_t bias = load_bias(child);
	char mem_path[64];
	snprintf(mem_path, sizeof mem_path, "/proc/%d/mem", child);
	int mem = open(mem_path, O_RDWR);
	if (mem < 0) {
		perror(mem_path);
		return 1;
	}
	size_t set = 0;
	for (size_t i = 0; i < nbps; i++) {
		bps[i].addr += bias;
		unsigned char int3 = 0xcc;
		if (pread(mem, &bps[i].orig, 1, bps[i].addr) != 1 ||
		    pwrite(mem, &int3, 1, bps[i].addr) != 1) {
			bps[i].hit = 1; /* not in the image: never reported */
			continue;
		}
		set++;
	}
	fprintf(stderr, "trace-functions: %zu breakpoints set\n", set);
	ptrace(PTRACE_CONT, child, 0, 0);

	/* The wait blocks (a stop is handled the moment it happens; polling
	 * with a sleep between would add that sleep to each of thousands of
	 * first hits); a 50 ms timer interrupts it to check the time. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tick; /* no SA_RESTART: waitpid returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval every = {{0, 50000}, {0, 50000}};
	setitimer(ITIMER_REAL, &every, NULL);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	size_t hits = 0;
	int stopping = 0;
	for (;;) {
		pid_t t = waitpid(-1, &st, __WALL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		double elapsed = now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9;
		if (!stopping && elapsed > seconds) {
			/* Time is up: SIGTERM, so that the program stops what it
			 * started; what runs from now on is not reported. */
			stopping = 1;
			kill(child, SIGTERM);
		}
		if (elapsed > seconds + 5)
			break;
		if (t < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (t == child) {
				if (!stopping)
					fprintf(stderr, "trace-functions: %s ended early\n", argv[4]);
				break;
			}
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		int sig = WSTOPSIG(st), event = st >> 16, deliver = 0;
		if (event == PTRACE_EVENT_EXEC && t != child) {
			/* A spawned service: its own image now, not ours. */
			ptrace(PTRACE_DETACH, t, 0, 0);
			continue;
		}
		if (sig == SIGTRAP && event == 0) {
			struct user_regs_struct regs;
			ptrace(PTRACE_GETREGS, t, 0, &regs);
			struct bp *b = find(regs.rip - 1);
			if (b) {
				if (!b->hit) {
					b->hit = 1;
					pwrite(mem, &b->orig, 1, b->addr);
					if (!stopping) {
						hits++;
						printf("%s\n", b->name);
					}
				}
				regs.rip -= 1;
				ptrace(PTRACE_SETREGS, t, 0, &regs);
			} else {
				deliver = sig;
			}
		} else if (sig == SIGSTOP || sig == SIGTRAP) {
			/* New threads and children start stopped; events stop with SIGTRAP. */
		} else {
			deliver = sig;
		}
		ptrace(PTRACE_CONT, t, 0, deliver);
	}
	fflush(stdout);
	fprintf(stderr, "trace-functions: %zu functions ran\n", hits);
	kill(child, SIGKILL);
	return 0;
}
