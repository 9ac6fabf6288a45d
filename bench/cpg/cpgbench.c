/* cpgbench.c - Corosync CPG (closed process group) benchmark client and
 * membership watcher, for the GAB vs Corosync comparison
 * (tests/src/corosync.rs builds and drives it; adapted from the peer lab's
 * shared/labs/peers/cpgbench.c).
 *
 * Build: gcc -O2 -Wall -o cpgbench cpgbench.c $(pkg-config --cflags --libs libcpg)
 *
 * All times are CLOCK_MONOTONIC nanoseconds: every node of the lab runs on
 * the same kernel (network namespaces, no time namespace), so one node's
 * send time and another node's delivery time are on the same clock.
 *
 * Usage:
 *   cpgbench watch GROUP [--init-timeout SECS]
 *       Join GROUP and print one line per membership event, flushed:
 *         <mono_ns> START node=<id>
 *         <mono_ns> TOTEM ring=<nodeid>.<seq> members=<id>,<id>,...
 *         <mono_ns> CPG members=<ids> left=<id>(r<reason>),... joined=<ids>
 *         <mono_ns> DISPATCH_ERR <cs_error>     (then exits 3: corosync gone)
 *       TOTEM lines are totem ring changes (the cluster membership), CPG lines
 *       the group's own view; the initial totem configuration is printed too.
 *
 *   cpgbench flood GROUP --count N --size S --members M --expect E
 *                  [--lat FILE] [--timeout SECS] [--init-timeout SECS]
 *       Join GROUP, wait until it has M members, print "READY node=<id>" on
 *       stdout, wait for SIGUSR1 (the common start), then send N messages of
 *       S bytes (CPG_TYPE_AGREED) as fast as flow control allows
 *       (CS_ERR_TRY_AGAIN: dispatch what has arrived, retry), while counting
 *       deliveries; after the last send keep dispatching until E messages
 *       (every sender's, own included) were delivered or SECS (from the
 *       start) passed. Each message carries the sender's node id, its index
 *       (1..N) and its CLOCK_MONOTONIC send time; its latency at this node is
 *       delivery time - send time. With --lat, every delivery is written as
 *       "origin index latency_ns" (one per line). Prints one JSON line on
 *       stdout. Exit 0 if E messages arrived in order, 5 otherwise.
 *       "memb_changes" counts totem ring changes and members leaving the
 *       group other than by cpg_leave (a peer that finished) during the run.
 *   cpgbench recv GROUP ...   = flood with --count 0 (member, receives only).
 *
 * Exit codes: 0 ok, 1 usage, 2 CPG error, 3 dispatch error in watch,
 * 4 timed out before the start, 5 incomplete or out-of-order delivery.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x43504742u /* "CPGB" */
#define MAX_NODE 64

struct hdr {
	uint32_t magic, nodeid;
	uint64_t index, t_send;
};

struct rec {
	uint32_t origin;
	uint64_t index, lat;
};

static cpg_handle_t h;
static uint32_t my_nodeid;
static int nmemb_now, memb_changes, watch_mode, started;
static volatile sig_atomic_t go;

static uint64_t delivered, delivered_own, order_err;
static uint64_t t_first_deliv, t_last_deliv;
static uint64_t last_index[MAX_NODE];
static struct rec *recs;
static size_t nrecs, caprecs;

static uint64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void deliver_cb(cpg_handle_t hh, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
		       void *msg, size_t len)
{
	(void)hh; (void)g; (void)pid; (void)nodeid;
	uint64_t t = mono();
	if (len < sizeof(struct hdr))
		return;
	struct hdr m;
	memcpy(&m, msg, sizeof m);
	if (m.magic != MAGIC)
		return;
	delivered++;
	if (!t_first_deliv)
		t_first_deliv = t;
	t_last_deliv = t;
	unsigned id = m.nodeid % MAX_NODE;
	if (m.index != last_index[id] + 1)
		order_err++;
	last_index[id] = m.index;
	if (m.nodeid == my_nodeid)
		delivered_own++;
	if (nrecs == caprecs) {
		caprecs = caprecs ? caprecs * 2 : 1 << 16;
		recs = realloc(recs, caprecs * sizeof *recs);
		if (!recs) {
			perror("realloc");
			exit(2);
		}
	}
	recs[nrecs].origin = m.nodeid;
	recs[nrecs].index = m.index;
	recs[nrecs].lat = t - m.t_send;
	nrecs++;
}

static void print_ids(const char *label, const struct cpg_address *a, size_t n, int reason)
{
	printf(" %s=", label);
	for (size_t i = 0; i < n; i++) {
		printf("%s%u", i ? "," : "", a[i].nodeid);
		if (reason)
			printf("(r%u)", a[i].reason);
	}
}

static void confchg_cb(cpg_handle_t hh, const struct cpg_name *g, const struct cpg_address *mem,
		       size_t nm, const struct cpg_address *left, size_t nl,
		       const struct cpg_address *joined, size_t nj)
{
	(void)hh; (void)g;
	uint64_t t = mono();
	/* A member that finished and left cleanly (CPG_REASON_LEAVE) is the
	 * normal end of a run; anything else during a run is a fault. */
	for (size_t i = 0; started && i < nl; i++)
		if (left[i].reason != CPG_REASON_LEAVE)
			memb_changes++;
	nmemb_now = (int)nm;
	if (!watch_mode)
		return;
	printf("%" PRIu64 " CPG", t);
	print_ids("members", mem, nm, 0);
	print_ids("left", left, nl, 1);
	print_ids("joined", joined, nj, 0);
	printf("\n");
	fflush(stdout);
}

static void totem_cb(cpg_handle_t hh, struct cpg_ring_id ring, uint32_t n, const uint32_t *list)
{
	(void)hh;
	uint64_t t = mono();
	if (started)
		memb_changes++; /* the totem ring re-formed during the run */
	if (!watch_mode)
		return;
	printf("%" PRIu64 " TOTEM ring=%u.%" PRIu64 " members=", t, ring.nodeid, ring.seq);
	for (uint32_t i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", list[i]);
	printf("\n");
	fflush(stdout);
}

/* Waits up to timeout_ms for corosync to have something for us, then
 * dispatches it. A signal (SIGUSR1) ends the wait early. */
static void dispatch_ready(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, timeout_ms) > 0) {
		cs_error_t rc = cpg_dispatch(h, CS_DISPATCH_ALL);
		if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
			fprintf(stderr, "cpg_dispatch: %d\n", rc);
			exit(2);
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in µs of a sorted array; -1 if empty. */
static double pct_us(const uint64_t *a, size_t n, double p)
{
	if (!n)
		return -1;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)a[i] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cpgbench watch GROUP [--init-timeout SECS]\n"
		"       cpgbench flood|recv GROUP --count N --size S --members M --expect E\n"
		"                [--lat FILE] [--timeout SECS] [--init-timeout SECS]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *mode = argv[1];
	const char *group = argv[2];
	int flood = !strcmp(mode, "flood"), recv_only = !strcmp(mode, "recv");
	watch_mode = !strcmp(mode, "watch");
	if (!flood && !recv_only && !watch_mode)
		usage();

	uint64_t count = 0, expect = 0;
	size_t size = 1024;
	int members = 0;
	double timeout = 120, init_timeout = 30;
	const char *lat_path = NULL;
	static const struct option opts[] = {
		{ "count", required_argument, 0, 'n' },
		{ "size", required_argument, 0, 's' },
		{ "members", required_argument, 0, 'm' },
		{ "expect", required_argument, 0, 'e' },
		{ "lat", required_argument, 0, 'l' },
		{ "timeout", required_argument, 0, 't' },
		{ "init-timeout", required_argument, 0, 'i' },
		{ 0, 0, 0, 0 },
	};
	optind = 3;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 's': size = strtoull(optarg, NULL, 10); break;
		case 'm': members = atoi(optarg); break;
		case 'e': expect = strtoull(optarg, NULL, 10); break;
		case 'l': lat_path = optarg; break;
		case 't': timeout = atof(optarg); break;
		case 'i': init_timeout = atof(optarg); break;
		default: usage();
		}
	}
	if (recv_only)
		count = 0;
	if (strlen(group) >= CPG_MAX_NAME_LENGTH) {
		fprintf(stderr, "group name too long\n");
		return 1;
	}
	if (!watch_mode && (members < 1 || expect < 1))
		usage();
	if (size < sizeof(struct hdr))
		size = sizeof(struct hdr);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1; /* no SA_RESTART: poll() returns EINTR at once */
	sigaction(SIGUSR1, &sa, NULL);

	struct cpg_name grp;
	memset(&grp, 0, sizeof grp);
	grp.length = strlen(group);
	memcpy(grp.value, group, grp.length);
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = deliver_cb,
		.cpg_confchg_fn = confchg_cb,
		.cpg_totem_confchg_fn = totem_cb,
		.flags = watch_mode ? CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF : 0,
	};
	cs_error_t rc;
	uint64_t init_end = mono() + (uint64_t)(init_timeout * 1e9);
	/* corosync may still be starting: retry until its IPC answers */
	while ((rc = cpg_model_initialize(&h, CPG_MODEL_V1, (cpg_model_data_t *)&model, NULL)) != CS_OK) {
		if (mono() > init_end) {
			fprintf(stderr, "cpg_model_initialize: %d\n", rc);
			return 2;
		}
		usleep(50000);
	}
	if ((rc = cpg_local_get(h, &my_nodeid)) != CS_OK) {
		fprintf(stderr, "cpg_local_get: %d\n", rc);
		return 2;
	}
	while ((rc = cpg_join(h, &grp)) == CS_ERR_TRY_AGAIN) {
		if (mono() > init_end)
			break;
		usleep(10000);
	}
	if (rc != CS_OK) {
		fprintf(stderr, "cpg_join: %d\n", rc);
		return 2;
	}
	int fd;
	if ((rc = cpg_fd_get(h, &fd)) != CS_OK) {
		fprintf(stderr, "cpg_fd_get: %d\n", rc);
		return 2;
	}

	if (watch_mode) {
		printf("%" PRIu64 " START node=%u\n", mono(), my_nodeid);
		fflush(stdout);
		for (;;) {
			rc = cpg_dispatch(h, CS_DISPATCH_BLOCKING);
			if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
				printf("%" PRIu64 " DISPATCH_ERR %d\n", mono(), rc);
				fflush(stdout);
				return 3;
			}
		}
	}

	/* Bounded wait for the whole group, then for the go signal. */
	uint64_t wait_end = mono() + (uint64_t)(timeout * 1e9);
	while (nmemb_now < members) {
		if (mono() > wait_end) {
			fprintf(stderr, "timed out waiting for %d members (have %d)\n", members, nmemb_now);
			return 4;
		}
		dispatch_ready(fd, 20);
	}
	printf("READY node=%u\n", my_nodeid);
	fflush(stdout);
	while (!go) {
		if (mono() > wait_end) {
			fprintf(stderr, "timed out waiting for SIGUSR1\n");
			return 4;
		}
		dispatch_ready(fd, 20);
	}
	started = 1;

	char *buf = calloc(1, size);
	if (!buf) {
		perror("calloc");
		return 2;
	}
	struct hdr m = { .magic = MAGIC, .nodeid = my_nodeid };
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	uint64_t t_start = mono(), end = t_start + (uint64_t)(timeout * 1e9);
	uint64_t sent = 0, tryagain = 0, t_send_done = t_start;
	while (sent < count && mono() < end) {
		int burst;
		for (burst = 0; burst < 64 && sent < count; burst++) {
			m.index = sent + 1;
			m.t_send = mono();
			memcpy(buf, &m, sizeof m);
			rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
			if (rc == CS_OK) {
				sent++;
			} else if (rc == CS_ERR_TRY_AGAIN) {
				tryagain++;
				break;
			} else {
				fprintf(stderr, "cpg_mcast_joined: %d\n", rc);
				return 2;
			}
		}
		dispatch_ready(fd, burst < 64 && sent < count ? 1 : 0);
	}
	t_send_done = mono();
	while (delivered < expect && mono() < end)
		dispatch_ready(fd, 10);

	if (lat_path) {
		FILE *f = fopen(lat_path, "w");
		if (!f) {
			perror(lat_path);
			return 2;
		}
		for (size_t i = 0; i < nrecs; i++)
			fprintf(f, "%u %" PRIu64 " %" PRIu64 "\n", recs[i].origin, recs[i].index, recs[i].lat);
		if (fclose(f)) {
			perror(lat_path);
			return 2;
		}
	}
	uint64_t *own = malloc((nrecs + 1) * sizeof *own), *oth = malloc((nrecs + 1) * sizeof *oth);
	size_t n_own = 0, n_oth = 0;
	if (!own || !oth) {
		perror("malloc");
		return 2;
	}
	for (size_t i = 0; i < nrecs; i++) {
		if (recs[i].origin == my_nodeid)
			own[n_own++] = recs[i].lat;
		else
			oth[n_oth++] = recs[i].lat;
	}
	qsort(own, n_own, sizeof *own, cmp_u64);
	qsort(oth, n_oth, sizeof *oth, cmp_u64);
	double span = t_last_deliv > t_start ? (double)(t_last_deliv - t_start) / 1e9 : 0;
	printf("{\"node\":%u,\"mode\":\"%s\",\"size\":%zu,\"count\":%" PRIu64 ",\"sent\":%" PRIu64
	       ",\"tryagain\":%" PRIu64 ",\"expect\":%" PRIu64 ",\"delivered\":%" PRIu64
	       ",\"delivered_own\":%" PRIu64 ",\"order_err\":%" PRIu64 ",\"memb_changes\":%d"
	       ",\"t_start_ns\":%" PRIu64 ",\"t_send_done_ns\":%" PRIu64 ",\"t_first_deliv_ns\":%" PRIu64
	       ",\"t_last_deliv_ns\":%" PRIu64 ",\"deliv_msgs_per_s\":%.1f"
	       ",\"own_lat_us\":{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}"
	       ",\"other_lat_us\":{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n",
	       my_nodeid, mode, size, count, sent, tryagain, expect, delivered, delivered_own, order_err,
	       memb_changes, t_start, t_send_done, t_first_deliv, t_last_deliv,
	       span > 0 ? (double)delivered / span : 0.0,
	       n_own, pct_us(own, n_own, .5), pct_us(own, n_own, .99), n_own ? own[n_own - 1] / 1000.0 : -1,
	       n_oth, pct_us(oth, n_oth, .5), pct_us(oth, n_oth, .99), n_oth ? oth[n_oth - 1] / 1000.0 : -1);
	fflush(stdout);
	cpg_leave(h, &grp);
	cpg_finalize(h);
	return delivered == expect && order_err == 0 && sent == count ? 0 : 5;
}
