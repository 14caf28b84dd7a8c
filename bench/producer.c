// Benchmark producer, run as its own process so that producing never steals
// the consumer's CPU time:
//   producer testrun PINNED_PROG TOTAL PER_RUN WAKEUP_EVERY
//                                                BPF_PROG_TEST_RUN of `produce` (bpf_loop
//                                                writes PER_RUN records a run; the consumer
//                                                is woken once per WAKEUP_EVERY records,
//                                                or adaptively by the kernel for 0)
//   producer paced PINNED_PROG TOTAL RATE        TOTAL records at RATE records/s: every
//                                                millisecond one BPF_PROG_TEST_RUN of
//                                                `produce` writes RATE/1000 of them
//   producer getppid TOTAL                       TOTAL getppid() calls (the
//                                                ring_getppid tracepoint writes one each)
// Both wait for a line on stdin before they start, so the consumer can set
// itself up (e.g. filter on this pid) first.
#include <bpf/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct produce_args {
	uint64_t start, count, ring, wakeup_every;
};

int main(int argc, char **argv)
{
	char line[16];

	if (argc < 3)
		return 2;
	if (!fgets(line, sizeof(line), stdin))
		return 2;
	if (strcmp(argv[1], "getppid") == 0) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		return 0;
	}
	if (strcmp(argv[1], "testrun") == 0 && argc == 6) {
		int fd = bpf_obj_get(argv[2]);
		uint64_t total = strtoull(argv[3], NULL, 10), per = strtoull(argv[4], NULL, 10);
		uint64_t wakeup = strtoull(argv[5], NULL, 10);
		if (fd < 0) {
			perror("bpf_obj_get");
			return 1;
		}
		for (uint64_t done = 0; done < total; done += per) {
			struct produce_args a = { done, per < total - done ? per : total - done, 0, wakeup };
			LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a, .ctx_size_in = sizeof(a));
			if (bpf_prog_test_run_opts(fd, &o)) {
				perror("bpf_prog_test_run_opts");
				return 1;
			}
		}
		return 0;
	}
	if (strcmp(argv[1], "paced") == 0 && argc == 5) {
		int fd = bpf_obj_get(argv[2]);
		uint64_t total = strtoull(argv[3], NULL, 10), per = strtoull(argv[4], NULL, 10) / 1000;
		struct timespec t;

		if (fd < 0 || per == 0) {
			perror("bpf_obj_get");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		for (uint64_t done = 0; done < total; done += per) {
			struct produce_args a = { done, per < total - done ? per : total - done, 0, 0 };
			LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a, .ctx_size_in = sizeof(a));
			if (bpf_prog_test_run_opts(fd, &o)) {
				perror("bpf_prog_test_run_opts");
				return 1;
			}
			t.tv_nsec += 1000000;
			if (t.tv_nsec >= 1000000000) {
				t.tv_nsec -= 1000000000;
				t.tv_sec++;
			}
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
		}
		return 0;
	}
	return 2;
}
