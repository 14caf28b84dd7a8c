// The C baseline: libbpf's own consumers, doing what the Node side does.
//   consumer OBJ ringbuf testrun|getppid|paced TOTAL PRODUCER [WAKEUP_EVERY|RATE] [FLAGS]
//       ring_buffer__poll() on stream_test's ring_a (8 MiB), fed by PRODUCER
//       FLAGS: --event64 (the produce64 program's 64-byte struct event64
//       records, each decoded into a struct as the Node side decodes it),
//       --ring=BYTES (ring size), --stall=MS (stop polling for MS once,
//       500 ms after the start, as a blocked event loop would)
//   consumer PERF_OBJ perfbuf TOTAL PRODUCER PAGES
//       perf_buffer__poll() on perf_bench's events (PAGES pages per CPU),
//       fed by PRODUCER getppid TOTAL (a tracepoint); records copied and
//       read as the raw ring consumer does
//   consumer OBJ mapiter ENTRIES
//       a hash map of ENTRIES u32 -> u64, read key by key and in batches
// Prints one JSON line.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t received, bytes, checked;

// stream_test.bpf.c's struct event64.
struct event64 {
	uint64_t ts;
	uint32_t pid, tid, cpu;
	int32_t ret;
	char comm[16];
	uint64_t a, b, c;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long max_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

// The raw consumer: the record copied out of the ring (what a consumer
// that keeps it must do, and what Node's consumers hand their user) and
// read, as Node's do.
static int on_sample(void *ctx, void *data, size_t len)
{
	unsigned char copy[64];

	received++;
	bytes += len;
	memcpy(copy, data, len < sizeof(copy) ? len : sizeof(copy));
	checked += copy[0];
	return 0;
}

// The decoding consumer: the record copied into a struct, fields read.
static int on_event64(void *ctx, void *data, size_t len)
{
	struct event64 e;

	received++;
	bytes += len;
	if (len < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	checked += e.pid == 4242 && e.comm[0] == 'b';
	return 0;
}

static uint64_t drops(struct bpf_object *obj, uint32_t slot)
{
	uint64_t v = 0;
	bpf_map__lookup_elem(bpf_object__find_map_by_name(obj, "drops"), &slot, sizeof(slot), &v, sizeof(v), 0);
	return v;
}

// Starts PRODUCER with ARGS, stopped at its "go" line; returns its pid and
// the fd to write "go" to.
static pid_t spawn(char **args, int *go)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		exit(1);
	pid = fork();
	if (pid == 0) {
		dup2(p[0], 0);
		close(p[1]);
		execv(args[0], args);
		_exit(127);
	}
	close(p[0]);
	*go = p[1];
	return pid;
}

static int ringbuf(const char *path, const char *mode, uint64_t total, char *producer, char *wakeup,
		   int event64, uint32_t ring_size, int stall_ms)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	char pin[64], count[32], *args[7];
	struct ring_buffer *rb;
	struct bpf_link *link = NULL;
	int go, status, slot;
	pid_t pid;
	double t0, t1, c0;

	if (!obj)
		return 1;
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "ring_a"), ring_size);
	if (bpf_object__load(obj))
		return 1;
	rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "ring_a")),
			      event64 ? on_event64 : on_sample, NULL, NULL);
	if (event64) {
		struct event64 t = { .pid = 4242, .tid = 4243, .cpu = 1, .ret = -2, .comm = "benchmark", .b = 7, .c = 8 };
		uint32_t zero = 0;
		bpf_map__update_elem(bpf_object__find_map_by_name(obj, "event64_template"), &zero, sizeof(zero), &t, sizeof(t), 0);
	}
	snprintf(count, sizeof(count), "%llu", (unsigned long long)total);
	if (strcmp(mode, "testrun") == 0) {
		snprintf(pin, sizeof(pin), "/sys/fs/bpf/lbn-bench-c-%d", getpid());
		bpf_program__pin(bpf_object__find_program_by_name(obj, event64 ? "produce64" : "produce"), pin);
		char *a[] = { producer, "testrun", pin, count, "4096", wakeup, NULL };
		memcpy(args, a, sizeof(a));
		slot = 0;
	} else if (strcmp(mode, "paced") == 0) {
		snprintf(pin, sizeof(pin), "/sys/fs/bpf/lbn-bench-c-%d", getpid());
		bpf_program__pin(bpf_object__find_program_by_name(obj, "produce"), pin);
		char *a[] = { producer, "paced", pin, count, wakeup, NULL };
		memcpy(args, a, sizeof(a));
		slot = 0;
	} else {
		char *a[] = { producer, "getppid", count, NULL };
		memcpy(args, a, sizeof(a));
		slot = 2;
	}
	pid = spawn(args, &go);
	if (slot == 2) {
		uint32_t key = 0;
		uint64_t tgid = pid;
		bpf_map__update_elem(bpf_object__find_map_by_name(obj, "config"), &key, sizeof(key), &tgid, sizeof(tgid), 0);
		link = bpf_program__attach(bpf_object__find_program_by_name(obj, "ring_getppid"));
	}
	c0 = cpu_seconds();
	t0 = now();
	if (write(go, "go\n", 3) != 3)
		return 1;
	for (int stalled = !stall_ms;;) {
		if (!stalled && now() - t0 >= 0.5) {
			usleep(stall_ms * 1000);
			stalled = 1;
		}
		ring_buffer__poll(rb, 100);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	while (ring_buffer__consume(rb) > 0)
		;
	t1 = now();
	printf("{\"consumer\":\"c\",\"mode\":\"%s\",\"produced\":%llu,\"received\":%llu,\"drops\":%llu,"
	       "\"seconds\":%.6f,\"cpuSeconds\":%.6f,\"maxRssKb\":%ld,\"checked\":%llu}\n",
	       mode, (unsigned long long)total, (unsigned long long)received,
	       (unsigned long long)drops(obj, slot), t1 - t0, cpu_seconds() - c0, max_rss_kb(),
	       (unsigned long long)checked);
	if (slot == 0)
		unlink(pin);
	if (event64 && checked != received)
		return 1;
	bpf_link__destroy(link);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

static uint64_t lost;

static void on_perf_sample(void *ctx, int cpu, void *data, __u32 len)
{
	on_sample(ctx, data, len);
}

static void on_perf_lost(void *ctx, int cpu, __u64 n)
{
	lost += n;
}

static int perfbuf(const char *path, uint64_t total, char *producer, size_t pages)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct perf_buffer *pb;
	struct bpf_link *link;
	char count[32];
	int go, status;
	uint32_t key = 0;
	uint64_t tgid, dropped = 0;
	pid_t pid;
	double t0, t1, c0;

	if (!obj || bpf_object__load(obj))
		return 1;
	pb = perf_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), pages,
			      on_perf_sample, on_perf_lost, NULL, NULL);
	if (!pb)
		return 1;
	snprintf(count, sizeof(count), "%llu", (unsigned long long)total);
	char *args[] = { producer, "getppid", count, NULL };
	pid = spawn(args, &go);
	tgid = pid;
	bpf_map__update_elem(bpf_object__find_map_by_name(obj, "target"), &key, sizeof(key), &tgid, sizeof(tgid), 0);
	link = bpf_program__attach(bpf_object__find_program_by_name(obj, "perf_getppid"));
	if (!link)
		return 1;
	c0 = cpu_seconds();
	t0 = now();
	if (write(go, "go\n", 3) != 3)
		return 1;
	for (;;) {
		perf_buffer__poll(pb, 100);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	while (perf_buffer__consume(pb) > 0 && received + lost < total)
		;
	t1 = now();
	bpf_map__lookup_elem(bpf_object__find_map_by_name(obj, "drops"), &key, sizeof(key), &dropped, sizeof(dropped), 0);
	printf("{\"consumer\":\"c\",\"mode\":\"perfbuf\",\"produced\":%llu,\"received\":%llu,\"drops\":%llu,"
	       "\"seconds\":%.6f,\"cpuSeconds\":%.6f,\"maxRssKb\":%ld,\"checked\":%llu}\n",
	       (unsigned long long)total, (unsigned long long)received, (unsigned long long)dropped, t1 - t0,
	       cpu_seconds() - c0, max_rss_kb(), (unsigned long long)checked);
	bpf_link__destroy(link);
	perf_buffer__free(pb);
	bpf_object__close(obj);
	return 0;
}

static int mapiter(uint32_t entries)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench", 4, 8, entries, NULL);
	uint32_t key, next, *keys = malloc(4096 * 4);
	uint64_t value, sum = 0, n = 0, *values = malloc(4096 * 8);
	double t0, t_keys, t_batch;

	for (key = 0; key < entries; key++) {
		value = key;
		bpf_map_update_elem(fd, &key, &value, 0);
	}
	t0 = now();
	for (int err = bpf_map_get_next_key(fd, NULL, &next); !err; err = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (!bpf_map_lookup_elem(fd, &key, &value))
			sum += value, n++;
	}
	t_keys = now() - t0;
	if (n != entries)
		return 1;
	/* The batch dump three times, the fastest counts (as bench/mapiter.ts). */
	t_batch = 1e9;
	for (int round = 0; round < 3; round++) {
		t0 = now();
		n = 0;
		uint32_t in = 0, out = 0;
		void *inp = NULL;
		for (;;) {
			uint32_t count = 4096;
			int err = bpf_map_lookup_batch(fd, inp, &out, keys, values, &count, NULL);
			for (uint32_t i = 0; i < count; i++)
				sum += values[i], n++;
			if (err)
				break;
			in = out;
			inp = &in;
		}
		if (now() - t0 < t_batch)
			t_batch = now() - t0;
		if (n != entries)
			return 1;
	}
	printf("{\"consumer\":\"c\",\"mode\":\"mapiter\",\"entries\":%u,\"keyByKeySeconds\":%.6f,\"batchSeconds\":%.6f,\"checked\":%llu}\n",
	       entries, t_keys, t_batch, (unsigned long long)n);
	return n == entries ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[2], "ringbuf") == 0) {
		int event64 = 0, stall_ms = 0;
		uint32_t ring_size = 8 << 20;
		char *wakeup = "0";

		for (int i = 6; i < argc; i++) {
			if (strcmp(argv[i], "--event64") == 0)
				event64 = 1;
			else if (strncmp(argv[i], "--ring=", 7) == 0)
				ring_size = strtoul(argv[i] + 7, NULL, 10);
			else if (strncmp(argv[i], "--stall=", 8) == 0)
				stall_ms = atoi(argv[i] + 8);
			else
				wakeup = argv[i];
		}
		return ringbuf(argv[1], argv[3], strtoull(argv[4], NULL, 10), argv[5], wakeup, event64, ring_size, stall_ms);
	}
	if (argc >= 6 && strcmp(argv[2], "perfbuf") == 0)
		return perfbuf(argv[1], strtoull(argv[3], NULL, 10), argv[4], strtoul(argv[5], NULL, 10));
	if (argc >= 4 && strcmp(argv[2], "mapiter") == 0)
		return mapiter(strtoul(argv[3], NULL, 10));
	fprintf(stderr, "usage: consumer OBJ ringbuf testrun|getppid TOTAL PRODUCER | consumer OBJ mapiter ENTRIES\n");
	return 2;
}
