// The C baseline for per-op map access (bench/maps.ts does the same from
// Node): N lookups and N updates, one bpf() syscall each, on an array and a
// hash of 1024 u32 -> u64; then an mmapable array read N times by syscall
// lookups and N times through its mapping. Each loop runs 3 times, the
// fastest counts (as in maps.ts). Prints one JSON line of ns per operation.
//   maps N
#include <bpf/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define ENTRIES 1024
#define REPS 5

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile uint64_t sink;

static double lookups(int fd, uint32_t n)
{
	double best = 1e30;
	for (int r = 0; r < REPS; r++) {
		uint64_t v, sum = 0;
		double t0 = now_ns();
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = i & (ENTRIES - 1);
			if (bpf_map_lookup_elem(fd, &k, &v) == 0)
				sum += v;
		}
		double t = (now_ns() - t0) / n;
		sink = sum;
		if (t < best)
			best = t;
	}
	return best;
}

static double updates(int fd, uint32_t n)
{
	double best = 1e30;
	for (int r = 0; r < REPS; r++) {
		double t0 = now_ns();
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = i & (ENTRIES - 1);
			uint64_t v = i;
			if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) != 0)
				exit(1);
		}
		double t = (now_ns() - t0) / n;
		if (t < best)
			best = t;
	}
	return best;
}

static double mapped_reads(const volatile uint64_t *mem, uint32_t n)
{
	double best = 1e30;
	for (int r = 0; r < REPS; r++) {
		uint64_t sum = 0;
		double t0 = now_ns();
		for (uint32_t i = 0; i < n; i++)
			sum += mem[i & (ENTRIES - 1)];
		double t = (now_ns() - t0) / n;
		sink = sum;
		if (t < best)
			best = t;
	}
	return best;
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 500000;
	LIBBPF_OPTS(bpf_map_create_opts, mm, .map_flags = BPF_F_MMAPABLE);
	int array = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_a", 4, 8, ENTRIES, NULL);
	int hash = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_h", 4, 8, ENTRIES, NULL);
	int mmapable = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_m", 4, 8, ENTRIES, &mm);

	if (array < 0 || hash < 0 || mmapable < 0) {
		perror("bpf_map_create");
		return 1;
	}
	for (uint32_t k = 0; k < ENTRIES; k++) {
		uint64_t v = k;
		bpf_map_update_elem(hash, &k, &v, BPF_ANY);
		bpf_map_update_elem(mmapable, &k, &v, BPF_ANY);
	}
	double al = lookups(array, n), au = updates(array, n);
	double hl = lookups(hash, n), hu = updates(hash, n);
	double ml = lookups(mmapable, n);
	uint64_t *mem = mmap(NULL, ENTRIES * 8, PROT_READ | PROT_WRITE, MAP_SHARED, mmapable, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	double mr = mapped_reads(mem, n);
	printf("{\"consumer\":\"C\",\"ops\":%u,\"arrayLookupNs\":%.1f,\"arrayUpdateNs\":%.1f,\"hashLookupNs\":%.1f,"
	       "\"hashUpdateNs\":%.1f,\"mmapableSyscallLookupNs\":%.1f,\"mmapReadNs\":%.2f}\n",
	       n, al, au, hl, hu, ml, mr);
	return 0;
}
