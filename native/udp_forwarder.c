/*
 * udp_forwarder: the packet loop of flannel-ts's udp backend (src/backend/udp/forwarder.ts wraps
 * this). Everything per packet happens here, on threads of our own, never on Node's event loop;
 * the table of hosts comes from TypeScript, which follows the leases.
 *
 *   openTun(name, queues) -> fds[]          TUN device `name` (IFF_TUN|IFF_NO_PI, and
 *                                           IFF_MULTI_QUEUE when queues > 1), non-blocking
 *   start({tunFds, bindIP, port, tunIP, mtu, ownNet, ownPrefixLen, onWorkerExit}) -> handle
 *                                           one worker thread per TUN queue, each with its own UDP
 *                                           socket bound to bindIP:port (SO_REUSEPORT)
 *   setRoutes(handle, Buffer)               replaces the table at once: 12-byte entries
 *                                           [net u32 BE][prefix len u8][0][port u16 BE][ip u32 BE]
 *   stats(handle) -> number[]               counters summed over the workers (see STAT_*)
 *   restartWorker(handle, i)                starts again a worker that exited on an error
 *   failWorker(handle, i)                   makes worker i exit as on an error (tests)
 *   stop(handle)                            stops and joins the workers, closes every descriptor
 *
 * Per worker, on each wakeup: up to BATCH packets read from the TUN queue, then one sendmmsg;
 * up to BATCH datagrams with one recvmmsg, then one write each into the TUN. The payload is the
 * raw IPv4 packet, as flannel's proxy (pkg/backend/udp/proxy_amd64.c) sends it, so flannel and
 * flannel-ts hosts carry each other's pods. As flannel does, the TTL is decremented on each side
 * (checksum patched incrementally, RFC 1624) and a packet whose TTL runs out is dropped; a packet
 * for a subnet without a lease gets ICMP net-unreachable back into the TUN, never about an ICMP
 * packet and only for a first fragment. Unlike flannel, a datagram that is short, not IPv4,
 * malformed, larger than the MTU, from an address that holds no lease, or for an address outside
 * this host's subnet is dropped and counted, instead of being written into the TUN.
 *
 * Errors are thrown as Error with `code` set to the errno name.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* The most packets moved per system call (and per wakeup, each way). */
#define BATCH 64
/* Room for the largest datagram, so that one larger than the MTU is seen whole and refused. */
#define SLOT_SIZE 65536
#define MAX_WORKERS 16
#define SOCKET_BUFFER (4 << 20)

/* The order of the counters stats() returns; forwarder.ts names them. */
enum {
  STAT_TX_PACKETS, /* TUN -> UDP, sent */
  STAT_TX_BYTES,
  STAT_RX_PACKETS, /* UDP -> TUN, written */
  STAT_RX_BYTES,
  STAT_ICMP_SENT,
  STAT_TUN_READS,     /* read() calls on the TUN that returned a packet */
  STAT_SEND_CALLS,    /* sendmmsg() calls */
  STAT_RECV_CALLS,    /* recvmmsg() calls that returned datagrams */
  STAT_WORKER_EXITS,  /* workers that stopped on an error */
  STAT_DROP_NO_ROUTE, /* TUN: no lease for the destination */
  STAT_DROP_TTL,
  STAT_DROP_NOT_IPV4,
  STAT_DROP_SHORT,
  STAT_DROP_MALFORMED,
  STAT_DROP_UNKNOWN_SENDER,
  STAT_DROP_TOO_BIG,
  STAT_DROP_WRONG_DESTINATION,
  STAT_DROP_SEND_FAILED,
  STAT_DROP_TUN_WRITE_FAILED,
  STAT_COUNT
};

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, "udp_forwarder: N-API call failed: " #call);                    \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

/* ---- the table ------------------------------------------------------------------------------ */

struct hop {
  uint32_t net; /* host order */
  struct sockaddr_in addr;
};

struct group {
  uint32_t mask; /* host order */
  uint32_t count;
  struct hop *hops; /* sorted by net */
};

struct table {
  uint32_t groups_count; /* longest prefix first */
  struct group groups[33];
  uint32_t senders_count;
  uint32_t *senders; /* public IPs, network order, sorted */
};

static void table_free(struct table *t) {
  if (t == NULL) return;
  for (uint32_t g = 0; g < t->groups_count; g++) free(t->groups[g].hops);
  free(t->senders);
  free(t);
}

static int compare_hops(const void *a, const void *b) {
  uint32_t x = ((const struct hop *)a)->net, y = ((const struct hop *)b)->net;
  return x < y ? -1 : x > y;
}

static int compare_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static inline uint32_t mask_of(int len) { return len == 0 ? 0 : ~(uint32_t)0 << (32 - len); }

/* Builds a table from setRoutes' entries; NULL when out of memory. */
static struct table *table_build(const uint8_t *data, size_t count) {
  struct table *t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  uint32_t per_len[33] = {0};
  for (size_t i = 0; i < count; i++) per_len[data[i * 12 + 4] > 32 ? 32 : data[i * 12 + 4]]++;
  for (int len = 32; len >= 0; len--) {
    if (per_len[len] == 0) continue;
    struct group *g = &t->groups[t->groups_count++];
    g->mask = mask_of(len);
    g->hops = calloc(per_len[len], sizeof(struct hop));
    if (g->hops == NULL) goto fail;
  }
  t->senders = calloc(count == 0 ? 1 : count, sizeof(uint32_t));
  if (t->senders == NULL) goto fail;
  for (size_t i = 0; i < count; i++) {
    const uint8_t *e = data + i * 12;
    uint32_t net, ip;
    uint16_t port;
    memcpy(&net, e, 4);
    memcpy(&port, e + 6, 2);
    memcpy(&ip, e + 8, 4);
    uint32_t mask = mask_of(e[4] > 32 ? 32 : e[4]);
    for (uint32_t gi = 0; gi < t->groups_count; gi++) {
      struct group *g = &t->groups[gi];
      if (g->mask != mask) continue;
      struct hop *h = &g->hops[g->count++];
      h->net = ntohl(net) & mask;
      h->addr.sin_family = AF_INET;
      h->addr.sin_port = port;
      h->addr.sin_addr.s_addr = ip;
      break;
    }
    t->senders[t->senders_count++] = ip;
  }
  for (uint32_t gi = 0; gi < t->groups_count; gi++)
    qsort(t->groups[gi].hops, t->groups[gi].count, sizeof(struct hop), compare_hops);
  qsort(t->senders, t->senders_count, sizeof(uint32_t), compare_u32);
  return t;
fail:
  table_free(t);
  return NULL;
}

/* The host that owns `dst` (network order), by longest prefix; NULL when no lease covers it. */
static const struct sockaddr_in *table_lookup(const struct table *t, uint32_t dst) {
  uint32_t host = ntohl(dst);
  for (uint32_t gi = 0; gi < t->groups_count; gi++) {
    const struct group *g = &t->groups[gi];
    uint32_t key = host & g->mask;
    uint32_t lo = 0, hi = g->count;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      uint32_t net = g->hops[mid].net;
      if (net == key) return &g->hops[mid].addr;
      if (net < key) lo = mid + 1;
      else hi = mid;
    }
  }
  return NULL;
}

static int table_has_sender(const struct table *t, uint32_t ip) {
  return bsearch(&ip, t->senders, t->senders_count, sizeof(uint32_t), compare_u32) != NULL;
}

/* ---- the forwarder ------------------------------------------------------------------------- */

struct forwarder;

enum { WORKER_IDLE, WORKER_RUNNING, WORKER_EXITED };

struct worker {
  struct forwarder *fw;
  int index;
  int tun_fd;
  int udp_fd;
  int kick_fd; /* eventfd: stop, or fail on request */
  pthread_t thread;
  int started;
  int state;      /* WORKER_*, atomic */
  int fail_asked; /* atomic */
  uint64_t stats[STAT_COUNT]; /* written by the worker only, read atomically */
  uint8_t *tun_bufs;          /* BATCH slots, TUN -> UDP */
  uint8_t *udp_bufs;          /* BATCH slots, UDP -> TUN */
};

struct forwarder {
  pthread_rwlock_t lock;
  struct table *table; /* under lock */
  int stopping;        /* atomic */
  uint32_t tun_ip;     /* network order */
  uint32_t own_net;    /* host order */
  uint32_t own_mask;
  uint32_t mtu;
  int workers_count;
  struct worker workers[MAX_WORKERS];
  napi_threadsafe_function on_exit;
  int stopped;
};

struct exit_report {
  int index;
  int err;
  char what[48];
};

static inline void count(struct worker *w, int stat, uint64_t n) {
  __atomic_store_n(&w->stats[stat], w->stats[stat] + n, __ATOMIC_RELAXED);
}

/* RFC 1071 checksum of `len` bytes. */
static uint16_t checksum(const uint8_t *data, size_t len) {
  uint32_t sum = 0;
  for (; len > 1; data += 2, len -= 2) sum += (uint32_t)data[0] << 8 | data[1];
  if (len == 1) sum += (uint32_t)data[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((uint16_t)~sum);
}

/* Decrements the TTL and patches the header checksum (RFC 1624, as the kernel does); 0 when
 * the TTL ran out. */
static inline int decrement_ttl(uint8_t *ip) {
  if (ip[8] <= 1) return 0;
  uint16_t check;
  memcpy(&check, ip + 10, 2);
  uint32_t sum = (uint32_t)check + htons(0x0100);
  check = (uint16_t)(sum + (sum >= 0xffff));
  memcpy(ip + 10, &check, 2);
  ip[8]--;
  return 1;
}

/* ICMP destination unreachable / network unreachable about `offender`, into the TUN. */
static void send_net_unreachable(struct worker *w, const uint8_t *offender, size_t len) {
  size_t ihl = (size_t)(offender[0] & 0x0f) * 4;
  if (offender[9] == IPPROTO_ICMP) return;                  /* never about ICMP (RFC 792) */
  if ((((offender[6] & 0x1f) << 8) | offender[7]) != 0) return; /* first fragment only */
  size_t quoted = ihl + 8 <= len ? ihl + 8 : len;
  uint8_t pkt[20 + 8 + 60 + 8];
  size_t total = 20 + 8 + quoted;
  memset(pkt, 0, sizeof pkt);
  pkt[0] = 0x45;
  pkt[2] = (uint8_t)(total >> 8);
  pkt[3] = (uint8_t)total;
  pkt[8] = 8; /* TTL, as flannel */
  pkt[9] = IPPROTO_ICMP;
  memcpy(pkt + 12, &w->fw->tun_ip, 4);
  memcpy(pkt + 16, offender + 12, 4);
  uint16_t c = checksum(pkt, 20);
  memcpy(pkt + 10, &c, 2);
  pkt[20] = 3; /* destination unreachable */
  pkt[21] = 0; /* network unreachable */
  memcpy(pkt + 28, offender, quoted);
  c = checksum(pkt + 20, 8 + quoted);
  memcpy(pkt + 22, &c, 2);
  if (write(w->tun_fd, pkt, total) == (ssize_t)total) count(w, STAT_ICMP_SENT, 1);
}

/* Checks an IPv4 header of a packet of `len` bytes; the STAT_DROP_* reason, or -1 when good. */
static int bad_ipv4(const uint8_t *p, size_t len) {
  if (len < 20) return STAT_DROP_SHORT;
  if (p[0] >> 4 != 4) return STAT_DROP_NOT_IPV4;
  size_t ihl = (size_t)(p[0] & 0x0f) * 4;
  size_t total = (size_t)p[2] << 8 | p[3];
  if (ihl < 20 || total < ihl || total > len) return STAT_DROP_MALFORMED;
  return -1;
}

/* Sends `n` prepared datagrams, retrying what the socket could not take yet. */
static void send_all(struct worker *w, struct mmsghdr *msgs, unsigned n) {
  unsigned done = 0;
  int waits = 0;
  while (done < n) {
    int sent = sendmmsg(w->udp_fd, msgs + done, n - done, MSG_DONTWAIT);
    if (sent > 0) {
      count(w, STAT_SEND_CALLS, 1);
      for (int i = 0; i < sent; i++) {
        count(w, STAT_TX_PACKETS, 1);
        count(w, STAT_TX_BYTES, msgs[done + i].msg_len);
      }
      done += (unsigned)sent;
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == ENOBUFS) && waits < 10 &&
        !__atomic_load_n(&w->fw->stopping, __ATOMIC_RELAXED)) {
      struct pollfd pfd = {.fd = w->udp_fd, .events = POLLOUT};
      poll(&pfd, 1, 10);
      waits++;
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    /* This datagram cannot go (no route to the host, a refused address): skip it alone. */
    count(w, STAT_DROP_SEND_FAILED, 1);
    done++;
  }
}

/* Moves up to BATCH packets from the TUN to the UDP socket; 1 when any was read, 0 when none,
 * -errno on a lasting error. */
static int tun_to_udp(struct worker *w) {
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_in hops[BATCH];
  ssize_t lens[BATCH];
  int n = 0;
  for (; n < BATCH; n++) {
    ssize_t len = read(w->tun_fd, w->tun_bufs + (size_t)n * SLOT_SIZE, SLOT_SIZE);
    if (len < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      if (n > 0) break; /* reported at the next read */
      return -errno;
    }
    lens[n] = len;
  }
  if (n == 0) return 0;
  count(w, STAT_TUN_READS, (uint64_t)n);
  unsigned out = 0;
  struct forwarder *fw = w->fw;
  pthread_rwlock_rdlock(&fw->lock);
  for (int i = 0; i < n; i++) {
    uint8_t *p = w->tun_bufs + (size_t)i * SLOT_SIZE;
    size_t len = (size_t)lens[i];
    int bad = bad_ipv4(p, len);
    if (bad >= 0) {
      count(w, bad, 1);
      continue;
    }
    uint32_t dst;
    memcpy(&dst, p + 16, 4);
    const struct sockaddr_in *hop = table_lookup(fw->table, dst);
    if (hop == NULL) {
      count(w, STAT_DROP_NO_ROUTE, 1);
      send_net_unreachable(w, p, len);
      continue;
    }
    if (!decrement_ttl(p)) {
      count(w, STAT_DROP_TTL, 1);
      continue;
    }
    len = (size_t)p[2] << 8 | p[3];
    hops[out] = *hop;
    iovs[out].iov_base = p;
    iovs[out].iov_len = len;
    memset(&msgs[out].msg_hdr, 0, sizeof msgs[out].msg_hdr);
    msgs[out].msg_hdr.msg_name = &hops[out];
    msgs[out].msg_hdr.msg_namelen = sizeof hops[out];
    msgs[out].msg_hdr.msg_iov = &iovs[out];
    msgs[out].msg_hdr.msg_iovlen = 1;
    out++;
  }
  pthread_rwlock_unlock(&fw->lock);
  if (out > 0) send_all(w, msgs, out);
  return 1;
}

/* Moves up to BATCH datagrams from the UDP socket into the TUN; as tun_to_udp. */
static int udp_to_tun(struct worker *w) {
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_in from[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iovs[i].iov_base = w->udp_bufs + (size_t)i * SLOT_SIZE;
    iovs[i].iov_len = SLOT_SIZE;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n = recvmmsg(w->udp_fd, msgs, BATCH, MSG_DONTWAIT, NULL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) return 0;
    return -errno;
  }
  if (n == 0) return 0;
  count(w, STAT_RECV_CALLS, 1);
  struct forwarder *fw = w->fw;
  int good[BATCH], goods = 0;
  pthread_rwlock_rdlock(&fw->lock);
  for (int i = 0; i < n; i++) {
    uint8_t *p = iovs[i].iov_base;
    size_t len = msgs[i].msg_len;
    if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len > fw->mtu) {
      count(w, STAT_DROP_TOO_BIG, 1);
      continue;
    }
    int bad = bad_ipv4(p, len);
    if (bad >= 0) {
      count(w, bad, 1);
      continue;
    }
    if (!table_has_sender(fw->table, from[i].sin_addr.s_addr)) {
      count(w, STAT_DROP_UNKNOWN_SENDER, 1);
      continue;
    }
    uint32_t dst;
    memcpy(&dst, p + 16, 4);
    if ((ntohl(dst) & fw->own_mask) != fw->own_net) {
      count(w, STAT_DROP_WRONG_DESTINATION, 1);
      continue;
    }
    if (!decrement_ttl(p)) {
      count(w, STAT_DROP_TTL, 1);
      continue;
    }
    good[goods++] = i;
  }
  pthread_rwlock_unlock(&fw->lock);
  for (int k = 0; k < goods; k++) {
    uint8_t *p = iovs[good[k]].iov_base;
    size_t len = (size_t)p[2] << 8 | p[3];
    ssize_t written = write(w->tun_fd, p, len);
    if (written == (ssize_t)len) {
      count(w, STAT_RX_PACKETS, 1);
      count(w, STAT_RX_BYTES, len);
    } else {
      count(w, STAT_DROP_TUN_WRITE_FAILED, 1);
    }
  }
  return 1;
}

static void report_exit(struct worker *w, int err, const char *what) {
  count(w, STAT_WORKER_EXITS, 1);
  struct exit_report *r = calloc(1, sizeof *r);
  if (r != NULL) {
    r->index = w->index;
    r->err = err;
    snprintf(r->what, sizeof r->what, "%s", what);
    if (napi_call_threadsafe_function(w->fw->on_exit, r, napi_tsfn_nonblocking) != napi_ok)
      free(r);
  }
  __atomic_store_n(&w->state, WORKER_EXITED, __ATOMIC_RELEASE);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    report_exit(w, errno, "epoll_create1");
    return NULL;
  }
  struct epoll_event ev = {.events = EPOLLIN};
  int fds[3] = {w->tun_fd, w->udp_fd, w->kick_fd};
  for (int i = 0; i < 3; i++) {
    ev.data.u32 = (uint32_t)i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
      int err = errno;
      close(ep);
      report_exit(w, err, "epoll_ctl");
      return NULL;
    }
  }
  int err = 0;
  const char *what = NULL;
  for (;;) {
    struct epoll_event events[3];
    int ready = epoll_wait(ep, events, 3, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      err = errno;
      what = "epoll_wait";
      break;
    }
    if (__atomic_load_n(&w->fw->stopping, __ATOMIC_ACQUIRE)) break;
    if (__atomic_load_n(&w->fail_asked, __ATOMIC_ACQUIRE)) {
      __atomic_store_n(&w->fail_asked, 0, __ATOMIC_RELAXED);
      uint64_t drain;
      if (read(w->kick_fd, &drain, sizeof drain) < 0) { /* nothing to drain */
      }
      err = ECANCELED;
      what = "failWorker";
      break;
    }
    /* While either side has packets, move them without asking epoll again (as flannel does). */
    int active;
    do {
      int a = tun_to_udp(w);
      if (a < 0) {
        err = -a;
        what = "read from the TUN device";
        break;
      }
      int b = udp_to_tun(w);
      if (b < 0) {
        err = -b;
        what = "recvmmsg from the UDP socket";
        break;
      }
      active = a + b;
    } while (active && !__atomic_load_n(&w->fw->stopping, __ATOMIC_RELAXED));
    if (what != NULL) break;
  }
  close(ep);
  if (what != NULL) report_exit(w, err, what);
  else __atomic_store_n(&w->state, WORKER_EXITED, __ATOMIC_RELEASE);
  return NULL;
}

static int worker_start(struct worker *w) {
  __atomic_store_n(&w->state, WORKER_RUNNING, __ATOMIC_RELEASE);
  int err = pthread_create(&w->thread, NULL, worker_main, w);
  if (err != 0) {
    __atomic_store_n(&w->state, WORKER_IDLE, __ATOMIC_RELEASE);
    return err;
  }
  w->started = 1;
  return 0;
}

static void forwarder_stop(struct forwarder *fw) {
  if (fw->stopped) return;
  fw->stopped = 1;
  __atomic_store_n(&fw->stopping, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  for (int i = 0; i < fw->workers_count; i++) {
    struct worker *w = &fw->workers[i];
    if (write(w->kick_fd, &one, sizeof one) < 0) { /* the worker wakes anyway on close */
    }
  }
  for (int i = 0; i < fw->workers_count; i++) {
    struct worker *w = &fw->workers[i];
    if (w->started) pthread_join(w->thread, NULL);
    w->started = 0;
    close(w->kick_fd);
    close(w->udp_fd);
    close(w->tun_fd);
    free(w->tun_bufs);
    free(w->udp_bufs);
  }
  if (fw->on_exit != NULL) napi_release_threadsafe_function(fw->on_exit, napi_tsfn_abort);
  fw->on_exit = NULL;
}

/* ---- N-API glue ----------------------------------------------------------------------------- */

static const char *errno_name(int err) {
  switch (err) {
  case EADDRINUSE: return "EADDRINUSE";
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  case EBUSY: return "EBUSY";
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case EINVAL: return "EINVAL";
  case ENOENT: return "ENOENT";
  case ENODEV: return "ENODEV";
  case ENOMEM: return "ENOMEM";
  case EBADF: return "EBADF";
  case EBADFD: return "EBADFD";
  case EIO: return "EIO";
  case EAGAIN: return "EAGAIN";
  case ECANCELED: return "ECANCELED";
  case EMFILE: return "EMFILE";
  default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[200];
  snprintf(message, sizeof message, "%s failed: %s", what, strerror(err));
  napi_throw_error(env, errno_name(err), message);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "udp_forwarder: missing arguments");
    return 0;
  }
  return 1;
}

static int get_u32_prop(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok ||
      napi_get_value_uint32(env, v, out) != napi_ok) {
    char message[80];
    snprintf(message, sizeof message, "udp_forwarder: expected a number in %s", name);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  return 1;
}

static struct forwarder *get_forwarder(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "udp_forwarder: expected a forwarder handle");
    return NULL;
  }
  return data;
}

static napi_value open_tun(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char name[IFNAMSIZ];
  size_t name_len = 0;
  uint32_t queues = 1;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len));
  CHECK(napi_get_value_uint32(env, argv[1], &queues));
  if (queues < 1 || queues > MAX_WORKERS) {
    napi_throw_range_error(env, NULL, "udp_forwarder: queues must be 1 to 16");
    return NULL;
  }
  napi_value result;
  CHECK(napi_create_array_with_length(env, queues, &result));
  int fds[MAX_WORKERS];
  for (uint32_t q = 0; q < queues; q++) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      for (uint32_t i = 0; i < q; i++) close(fds[i]);
      return throw_errno(env, "open /dev/net/tun", err);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0);
    memcpy(ifr.ifr_name, name, name_len < IFNAMSIZ - 1 ? name_len : IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int err = errno;
      close(fd);
      for (uint32_t i = 0; i < q; i++) close(fds[i]);
      return throw_errno(env, "ioctl TUNSETIFF", err);
    }
    fds[q] = fd;
    napi_value v;
    CHECK(napi_create_int32(env, fd, &v));
    CHECK(napi_set_element(env, result, q, v));
  }
  return result;
}

static napi_value close_fds(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uint32_t n = 0;
  CHECK(napi_get_array_length(env, argv[0], &n));
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    int32_t fd;
    CHECK(napi_get_element(env, argv[0], i, &v));
    CHECK(napi_get_value_int32(env, v, &fd));
    close(fd);
  }
  return NULL;
}

static void call_on_exit(napi_env env, napi_value js_callback, void *context, void *data) {
  (void)context;
  struct exit_report *r = data;
  if (env != NULL && js_callback != NULL) {
    napi_value args[3], global;
    napi_get_global(env, &global);
    napi_create_int32(env, r->index, &args[0]);
    napi_create_string_utf8(env, errno_name(r->err), NAPI_AUTO_LENGTH, &args[1]);
    napi_create_string_utf8(env, r->what, NAPI_AUTO_LENGTH, &args[2]);
    napi_call_function(env, global, js_callback, 3, args, NULL);
  }
  free(r);
}

static void finalize_forwarder(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct forwarder *fw = data;
  forwarder_stop(fw);
  table_free(fw->table);
  pthread_rwlock_destroy(&fw->lock);
  free(fw);
}

static int open_udp(uint32_t bind_ip, uint16_t port, int *out) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1, size = SOCKET_BUFFER;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  addr.sin_addr.s_addr = bind_ip;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    return err;
  }
  *out = fd;
  return 0;
}

static napi_value start(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_value opts = argv[0], tun_fds, on_exit;
  uint32_t bind_ip, port, tun_ip, mtu, own_net, own_len, queues;
  if (!get_u32_prop(env, opts, "bindIP", &bind_ip) || !get_u32_prop(env, opts, "port", &port) ||
      !get_u32_prop(env, opts, "tunIP", &tun_ip) || !get_u32_prop(env, opts, "mtu", &mtu) ||
      !get_u32_prop(env, opts, "ownNet", &own_net) ||
      !get_u32_prop(env, opts, "ownPrefixLen", &own_len))
    return NULL;
  CHECK(napi_get_named_property(env, opts, "tunFds", &tun_fds));
  CHECK(napi_get_named_property(env, opts, "onWorkerExit", &on_exit));
  CHECK(napi_get_array_length(env, tun_fds, &queues));
  if (queues < 1 || queues > MAX_WORKERS || own_len > 32 || port > 65535) {
    napi_throw_range_error(env, NULL, "udp_forwarder: 1 to 16 TUN queues, a prefix length up to 32 and a port up to 65535 expected");
    return NULL;
  }
  struct forwarder *fw = calloc(1, sizeof *fw);
  if (fw == NULL) return throw_errno(env, "calloc", ENOMEM);
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&fw->lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  fw->table = table_build(NULL, 0);
  fw->tun_ip = htonl(tun_ip);
  fw->own_mask = mask_of((int)own_len);
  fw->own_net = own_net & fw->own_mask;
  fw->mtu = mtu;
  int err = 0;
  const char *what = NULL;
  for (uint32_t i = 0; i < queues; i++) {
    struct worker *w = &fw->workers[i];
    napi_value v;
    int32_t fd;
    CHECK(napi_get_element(env, tun_fds, i, &v));
    CHECK(napi_get_value_int32(env, v, &fd));
    w->fw = fw;
    w->index = (int)i;
    w->tun_fd = fd;
    w->udp_fd = -1;
    w->kick_fd = -1;
    fw->workers_count = (int)i + 1;
    if ((err = open_udp(htonl(bind_ip), (uint16_t)port, &w->udp_fd)) != 0) {
      what = "bind the UDP socket";
      break;
    }
    w->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->tun_bufs = malloc((size_t)BATCH * SLOT_SIZE);
    w->udp_bufs = malloc((size_t)BATCH * SLOT_SIZE);
    if (w->kick_fd < 0 || w->tun_bufs == NULL || w->udp_bufs == NULL) {
      err = w->kick_fd < 0 ? errno : ENOMEM;
      what = "allocate a worker";
      break;
    }
  }
  napi_value name;
  CHECK(napi_create_string_utf8(env, "udp_forwarder worker exit", NAPI_AUTO_LENGTH, &name));
  if (what == NULL &&
      napi_create_threadsafe_function(env, on_exit, NULL, name, 0, 1, NULL, NULL, NULL,
                                      call_on_exit, &fw->on_exit) != napi_ok) {
    err = ENOMEM;
    what = "napi_create_threadsafe_function";
  }
  if (what == NULL) {
    napi_unref_threadsafe_function(env, fw->on_exit);
    for (int i = 0; i < fw->workers_count && what == NULL; i++) {
      if ((err = worker_start(&fw->workers[i])) != 0) what = "pthread_create";
    }
  }
  if (what != NULL) {
    /* The caller keeps its TUN descriptors: dup nothing, close only what was made here. */
    for (int i = 0; i < fw->workers_count; i++) fw->workers[i].tun_fd = -1;
    forwarder_stop(fw);
    table_free(fw->table);
    pthread_rwlock_destroy(&fw->lock);
    free(fw);
    return throw_errno(env, what, err);
  }
  napi_value handle;
  CHECK(napi_create_external(env, fw, finalize_forwarder, NULL, &handle));
  return handle;
}

static napi_value set_routes(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  struct forwarder *fw = get_forwarder(env, argv[0]);
  if (fw == NULL) return NULL;
  void *data;
  size_t len;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  if (len % 12 != 0) {
    napi_throw_range_error(env, NULL, "udp_forwarder: route entries are 12 bytes each");
    return NULL;
  }
  struct table *t = table_build(data, len / 12);
  if (t == NULL) return throw_errno(env, "build the route table", ENOMEM);
  pthread_rwlock_wrlock(&fw->lock);
  struct table *old = fw->table;
  fw->table = t;
  pthread_rwlock_unlock(&fw->lock);
  table_free(old);
  return NULL;
}

static napi_value stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct forwarder *fw = get_forwarder(env, argv[0]);
  if (fw == NULL) return NULL;
  napi_value result;
  CHECK(napi_create_array_with_length(env, STAT_COUNT, &result));
  for (int s = 0; s < STAT_COUNT; s++) {
    uint64_t sum = 0;
    for (int i = 0; i < fw->workers_count; i++)
      sum += __atomic_load_n(&fw->workers[i].stats[s], __ATOMIC_RELAXED);
    napi_value v;
    CHECK(napi_create_double(env, (double)sum, &v));
    CHECK(napi_set_element(env, result, (uint32_t)s, v));
  }
  return result;
}

static struct worker *get_worker(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  struct forwarder *fw = get_forwarder(env, argv[0]);
  if (fw == NULL) return NULL;
  uint32_t i;
  if (napi_get_value_uint32(env, argv[1], &i) != napi_ok || i >= (uint32_t)fw->workers_count) {
    napi_throw_range_error(env, NULL, "udp_forwarder: no such worker");
    return NULL;
  }
  if (fw->stopped) {
    napi_throw_error(env, "ESHUTDOWN", "udp_forwarder: the forwarder is stopped");
    return NULL;
  }
  return &fw->workers[i];
}

static napi_value restart_worker(napi_env env, napi_callback_info info) {
  struct worker *w = get_worker(env, info);
  if (w == NULL) return NULL;
  if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != WORKER_EXITED) return NULL;
  pthread_join(w->thread, NULL);
  w->started = 0;
  int err = worker_start(w);
  if (err != 0) return throw_errno(env, "pthread_create", err);
  return NULL;
}

static napi_value fail_worker(napi_env env, napi_callback_info info) {
  struct worker *w = get_worker(env, info);
  if (w == NULL) return NULL;
  __atomic_store_n(&w->fail_asked, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  if (write(w->kick_fd, &one, sizeof one) < 0) return throw_errno(env, "write eventfd", errno);
  return NULL;
}

static napi_value stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct forwarder *fw = get_forwarder(env, argv[0]);
  if (fw == NULL) return NULL;
  forwarder_stop(fw);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openTun", NULL, open_tun, NULL, NULL, NULL, napi_default, NULL},
      {"closeFds", NULL, close_fds, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start, NULL, NULL, NULL, napi_default, NULL},
      {"setRoutes", NULL, set_routes, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
      {"restartWorker", NULL, restart_worker, NULL, NULL, NULL, napi_default, NULL},
      {"failWorker", NULL, fail_worker, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, stop, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
