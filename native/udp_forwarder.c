/*
 * udp_forwarder: the packet loop of flannel-ts's udp backend (src/backend/udp/forwarder.ts wraps
 * this). Everything per packet happens here, on threads of our own, never on Node's event loop;
 * the table of hosts comes from TypeScript, which follows the leases.
 *
 *   openTun(name, queues, offload) -> {fds, offload}
 *                                           TUN device `name` (IFF_TUN|IFF_NO_PI, IFF_MULTI_QUEUE
 *                                           when queues > 1; with offload, IFF_VNET_HDR and
 *                                           TUNSETOFFLOAD csum+TSO4, dropped if refused)
 *   start({tunFds, offload, bindIP, port, tunIP, mtu, ownNet, ownPrefixLen, onWorkerExit})
 *                                           one worker thread per TUN queue, each with its own UDP
 *                                           socket bound to bindIP:port (SO_REUSEPORT)
 *   setRoutes(handle, Buffer)               replaces the table at once: 12-byte entries
 *                                           [net u32 BE][prefix len u8][0][port u16 BE][ip u32 BE]
 *   stats(handle) -> number[]               counters summed over the workers (see STAT_*)
 *   restartWorker(handle, i)                starts again a worker that exited on an error
 *   replaceTun(handle, fds)                 the workers go on with new TUN queues (the device
 *                                           was deleted and made again)
 *   stop(handle)                            stops and joins the workers, closes every descriptor
 *
 * Per worker, on each wakeup: up to BATCH packets read from the TUN queue, then one sendmmsg;
 * up to BATCH datagrams with one recvmmsg, then one write each into the TUN. With offloads, a
 * read from the TUN may be a TCP super-packet (TSO, up to 64 KiB): it is cut here into packets of
 * the MTU, each a complete IPv4 packet with its own checksums, and sent in runs with UDP_SEGMENT
 * (one datagram per packet on the wire, as flannel hosts expect). The socket takes UDP_GRO
 * trains, and consecutive TCP segments of one flow are written into the TUN as one super-packet
 * (GRO in userspace), which the kernel carries to the pod unsegmented. The payload is the
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
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ADDON_NAME "udp_forwarder"
#include "napi_helpers.h"

/* The most packets moved per system call (and per wakeup, each way). */
#define BATCH 64
/* The virtio header before each packet on a TUN with offloads (IFF_VNET_HDR). */
#define VNET_HDR_LEN sizeof(struct virtio_net_hdr)
/* Room for the largest packet the TUN hands over (a TSO super-packet) and its header. */
#define TUN_SLOT_SIZE (65536 + 64)
/* Room for the largest datagram, or a UDP_GRO train of them, so that one larger than the MTU is
 * seen whole and refused. */
#define UDP_SLOT_SIZE 65536
/* Room for one super-packet cut into segments: its payload plus a header per segment. */
#define SEG_SLOT_SIZE (65536 + 16384)
/* The most one UDP_SEGMENT send may carry: an IPv4 datagram's payload, and 64 segments. */
#define UDP_MAX_PAYLOAD 65507
#define UDP_MAX_RUN 64
#define GRO_MAX_SEGMENTS 64
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
  STAT_TUN_WRITES,    /* write() calls into the TUN */
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

/* A super-packet being built from TCP segments received in one turn. */
struct gro {
  uint8_t *buf;
  size_t len;   /* of the packet so far */
  size_t bytes; /* of the segments it holds, as received */
  size_t mss;   /* payload of its first segment: every segment but the last has as much */
  int segs;
  uint32_t next_seq;
  int closed; /* a short segment or PSH came: nothing more joins */
};

struct send_batch;

struct worker {
  struct forwarder *fw;
  int index;
  int tun_fd;
  int udp_fd;
  int kick_fd; /* eventfd: stop, or fail on request */
  pthread_t thread;
  int started;
  int state;      /* WORKER_*, atomic */
  int quit_asked; /* atomic: exit quietly (replaceTun) */
  uint64_t stats[STAT_COUNT]; /* written by the worker only, read atomically */
  uint8_t *tun_bufs;          /* BATCH slots, TUN -> UDP */
  uint8_t *seg_bufs;          /* BATCH slots: super-packets cut into segments */
  uint8_t *udp_bufs;          /* BATCH slots, UDP -> TUN */
  struct send_batch *send;
  struct gro gro;
  int gso; /* UDP_SEGMENT works on this socket */
};

struct forwarder {
  pthread_rwlock_t lock;
  struct table *table; /* under lock */
  int stopping;        /* atomic */
  uint32_t tun_ip;     /* network order */
  uint32_t own_net;    /* host order */
  uint32_t own_mask;
  uint32_t mtu;
  int offload; /* the TUN has virtio headers and offloads (TSO in, GSO out) */
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

/* ---- checksums ------------------------------------------------------------------------------ */

/* Adds `len` bytes to a ones'-complement sum, in the host's byte order (RFC 1071 sec. 2(B): the
 * folded result, stored as loaded, is right in network order). */
static inline uint64_t csum_add(const uint8_t *data, size_t len, uint64_t sum) {
  for (; len >= 8; data += 8, len -= 8) {
    uint32_t a, b;
    memcpy(&a, data, 4);
    memcpy(&b, data + 4, 4);
    sum += (uint64_t)a + b;
  }
  for (; len >= 2; data += 2, len -= 2) {
    uint16_t v;
    memcpy(&v, data, 2);
    sum += v;
  }
  if (len == 1) {
    uint16_t v = 0;
    memcpy(&v, data, 1);
    sum += v;
  }
  return sum;
}

static inline uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* The checksum of `len` bytes, ready to store. */
static inline uint16_t checksum(const uint8_t *data, size_t len) {
  return (uint16_t)~csum_fold(csum_add(data, len, 0));
}

/* The TCP/UDP pseudo-header of an IPv4 packet, summed. */
static inline uint64_t pseudo_sum(const uint8_t *ip, uint8_t proto, size_t l4_len) {
  return csum_add(ip + 12, 8, 0) + htons(proto) + htons((uint16_t)l4_len);
}

static inline void set_ip_checksum(uint8_t *ip, size_t ihl) {
  ip[10] = ip[11] = 0;
  uint16_t c = checksum(ip, ihl);
  memcpy(ip + 10, &c, 2);
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

/* ---- the TUN side --------------------------------------------------------------------------- */

static const struct virtio_net_hdr NO_OFFLOAD_HDR = {0};

/* Writes one packet into the TUN, behind a virtio header when the device has them. */
static int tun_write(struct worker *w, const struct virtio_net_hdr *vh, const uint8_t *pkt,
                     size_t len) {
  ssize_t n;
  if (w->fw->offload) {
    struct iovec iov[2] = {{.iov_base = (void *)vh, .iov_len = VNET_HDR_LEN},
                           {.iov_base = (void *)pkt, .iov_len = len}};
    n = writev(w->tun_fd, iov, 2);
    if (n >= (ssize_t)VNET_HDR_LEN) n -= (ssize_t)VNET_HDR_LEN;
  } else {
    n = write(w->tun_fd, pkt, len);
  }
  count(w, STAT_TUN_WRITES, 1);
  return n == (ssize_t)len;
}

/* ICMP destination unreachable / network unreachable about `offender`, into the TUN. */
static void send_net_unreachable(struct worker *w, const uint8_t *offender, size_t len) {
  size_t ihl = (size_t)(offender[0] & 0x0f) * 4;
  if (offender[9] == IPPROTO_ICMP) return;                      /* never about ICMP (RFC 792) */
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
  set_ip_checksum(pkt, 20);
  pkt[20] = 3; /* destination unreachable */
  pkt[21] = 0; /* network unreachable */
  memcpy(pkt + 28, offender, quoted);
  uint16_t c = checksum(pkt + 20, 8 + quoted);
  memcpy(pkt + 22, &c, 2);
  if (tun_write(w, &NO_OFFLOAD_HDR, pkt, total)) count(w, STAT_ICMP_SENT, 1);
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

/* ---- the UDP side --------------------------------------------------------------------------- */

/* Sends `n` prepared messages, retrying what the socket could not take yet; `segments[i]` is how
 * many packets message i holds (UDP_SEGMENT), or NULL for one each. */
static void send_all(struct worker *w, struct mmsghdr *msgs, unsigned n, const int *segments) {
  unsigned done = 0;
  int waits = 0;
  while (done < n) {
    int sent = sendmmsg(w->udp_fd, msgs + done, n - done, MSG_DONTWAIT);
    if (sent > 0) {
      count(w, STAT_SEND_CALLS, 1);
      for (int i = 0; i < sent; i++) {
        count(w, STAT_TX_PACKETS, segments == NULL ? 1 : (uint64_t)segments[done + i]);
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
    if (sent < 0 && (errno == EIO || errno == EINVAL) && w->gso && segments != NULL &&
        segments[done] > 1) {
      /* The route's device cannot segment UDP: send one datagram at a time from now on. */
      w->gso = 0;
      for (unsigned i = done; i < n; i++) count(w, STAT_DROP_SEND_FAILED, (uint64_t)segments[i]);
      return;
    }
    /* This message cannot go (no route to the host, a refused address): skip it alone. */
    count(w, STAT_DROP_SEND_FAILED, segments == NULL ? 1 : (uint64_t)segments[done]);
    done++;
  }
}

/* The pending datagrams of one turn: plain packets, and runs of TCP segments (UDP_SEGMENT). */
struct send_batch {
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_in hops[BATCH];
  int segments[BATCH];
  char control[BATCH][CMSG_SPACE(sizeof(uint16_t))];
  unsigned count;
};

static void batch_flush(struct worker *w, struct send_batch *b) {
  if (b->count > 0) send_all(w, b->msgs, b->count, b->segments);
  b->count = 0;
}

/* Queues one datagram, or a run of `segments` packets of `segment_size` bytes (the last may be
 * shorter) sent with UDP_SEGMENT. The bytes must stay put until the batch is flushed. */
static void batch_add(struct worker *w, struct send_batch *b, const struct sockaddr_in *hop,
                      uint8_t *data, size_t len, int segments, size_t segment_size) {
  if (b->count == BATCH) batch_flush(w, b);
  unsigned i = b->count++;
  b->hops[i] = *hop;
  b->iovs[i].iov_base = data;
  b->iovs[i].iov_len = len;
  b->segments[i] = segments;
  struct msghdr *m = &b->msgs[i].msg_hdr;
  memset(m, 0, sizeof *m);
  m->msg_name = &b->hops[i];
  m->msg_namelen = sizeof b->hops[i];
  m->msg_iov = &b->iovs[i];
  m->msg_iovlen = 1;
  if (segments > 1) {
    m->msg_control = b->control[i];
    m->msg_controllen = sizeof b->control[i];
    struct cmsghdr *c = CMSG_FIRSTHDR(m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t size = (uint16_t)segment_size;
    memcpy(CMSG_DATA(c), &size, sizeof size);
  }
}

/* Cuts a TCP super-packet the kernel handed over (TSO, `mss` bytes of payload per segment) into
 * packets of the MTU, each with its own IP id, sequence number, flags and checksums, into
 * `out` (room for the whole packet plus a header per segment), and queues them in runs that
 * UDP_SEGMENT sends at once. The TTL is already decremented. */
static void queue_tcp_segments(struct worker *w, struct send_batch *b, const struct sockaddr_in *hop,
                               const uint8_t *pkt, size_t len, size_t mss, uint8_t *out) {
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  size_t thl = (size_t)(pkt[ihl + 12] >> 4) * 4;
  size_t hdr = ihl + thl;
  size_t payload = len - hdr;
  size_t segs = (payload + mss - 1) / mss;
  size_t per_run = UDP_MAX_PAYLOAD / (hdr + mss);
  if (per_run > UDP_MAX_RUN) per_run = UDP_MAX_RUN;
  if (!w->gso) per_run = 1;
  uint32_t seq;
  uint16_t id;
  memcpy(&seq, pkt + ihl + 4, 4);
  memcpy(&id, pkt + 4, 2);
  seq = ntohl(seq);
  id = ntohs(id);
  uint8_t flags = pkt[ihl + 13];
  size_t run_start = 0, run_len = 0;
  int run_segs = 0;
  size_t at = 0;
  for (size_t i = 0; i < segs; i++) {
    size_t plen = payload - i * mss < mss ? payload - i * mss : mss;
    size_t total = hdr + plen;
    uint8_t *s = out + at;
    memcpy(s, pkt, hdr);
    memcpy(s + hdr, pkt + hdr + i * mss, plen);
    s[2] = (uint8_t)(total >> 8);
    s[3] = (uint8_t)total;
    uint16_t sid = htons((uint16_t)(id + i));
    memcpy(s + 4, &sid, 2);
    set_ip_checksum(s, ihl);
    uint8_t *t = s + ihl;
    uint32_t sseq = htonl(seq + (uint32_t)(i * mss));
    memcpy(t + 4, &sseq, 4);
    uint8_t f = flags;
    if (i > 0) f &= (uint8_t)~0x80;          /* CWR on the first segment only */
    if (i + 1 < segs) f &= (uint8_t)~0x09;   /* FIN and PSH on the last only */
    t[13] = f;
    t[16] = t[17] = 0;
    uint16_t c = (uint16_t)~csum_fold(csum_add(t, thl + plen, pseudo_sum(s, IPPROTO_TCP, thl + plen)));
    memcpy(t + 16, &c, 2);
    at += total;
    run_len += total;
    run_segs++;
    if (run_segs == (int)per_run || i + 1 == segs) {
      batch_add(w, b, hop, out + run_start, run_len, run_segs, hdr + mss);
      run_start = at;
      run_len = 0;
      run_segs = 0;
    }
  }
}

/* Completes a checksum the kernel left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM); 0 when the header
 * points outside the packet. */
static int complete_checksum(uint8_t *pkt, size_t len, const struct virtio_net_hdr *vh) {
  size_t start = vh->csum_start, offset = vh->csum_offset;
  if (start + offset + 2 > len) return 0;
  uint16_t c = (uint16_t)~csum_fold(csum_add(pkt + start, len - start, 0));
  /* A UDP checksum that comes out 0 is sent as 0xffff: 0 means "none" (RFC 768). */
  if (c == 0 && pkt[9] == IPPROTO_UDP) c = 0xffff;
  memcpy(pkt + start + offset, &c, 2);
  return 1;
}

/* Moves up to BATCH packets from the TUN to the UDP socket; 1 when any was read, 0 when none,
 * -errno on a lasting error. */
static int tun_to_udp(struct worker *w) {
  struct forwarder *fw = w->fw;
  struct send_batch *b = w->send;
  size_t head = fw->offload ? VNET_HDR_LEN : 0;
  int n = 0;
  b->count = 0;
  for (; n < BATCH; n++) {
    uint8_t *slot = w->tun_bufs + (size_t)n * TUN_SLOT_SIZE;
    ssize_t len = read(w->tun_fd, slot, TUN_SLOT_SIZE);
    if (len < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      if (n > 0) break; /* reported at the next read */
      return -errno;
    }
    count(w, STAT_TUN_READS, 1);
    if ((size_t)len < head) {
      count(w, STAT_DROP_SHORT, 1);
      continue;
    }
    uint8_t *p = slot + head;
    size_t plen = (size_t)len - head;
    struct virtio_net_hdr vh = NO_OFFLOAD_HDR;
    if (head) memcpy(&vh, slot, sizeof vh);
    int bad = bad_ipv4(p, plen);
    if (bad >= 0) {
      count(w, bad, 1);
      continue;
    }
    uint32_t dst;
    memcpy(&dst, p + 16, 4);
    struct sockaddr_in hop;
    pthread_rwlock_rdlock(&fw->lock);
    const struct sockaddr_in *found = table_lookup(fw->table, dst);
    if (found != NULL) hop = *found;
    pthread_rwlock_unlock(&fw->lock);
    if (found == NULL) {
      count(w, STAT_DROP_NO_ROUTE, 1);
      send_net_unreachable(w, p, plen);
      continue;
    }
    if (!decrement_ttl(p)) {
      count(w, STAT_DROP_TTL, 1);
      continue;
    }
    plen = (size_t)p[2] << 8 | p[3];
    if ((vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4) {
      size_t ihl = (size_t)(p[0] & 0x0f) * 4;
      /* A super-packet's IP total length may be 0 or wrong: the read length is the truth. */
      plen = (size_t)len - head;
      if (p[9] != IPPROTO_TCP || plen < ihl + 20 || plen < ihl + (size_t)(p[ihl + 12] >> 4) * 4 ||
          vh.gso_size == 0) {
        count(w, STAT_DROP_MALFORMED, 1);
        continue;
      }
      size_t hdr = ihl + (size_t)(p[ihl + 12] >> 4) * 4;
      size_t segs = (plen - hdr + vh.gso_size - 1) / vh.gso_size;
      if (segs * hdr + plen > SEG_SLOT_SIZE || hdr + vh.gso_size > fw->mtu) {
        count(w, STAT_DROP_MALFORMED, 1);
        continue;
      }
      queue_tcp_segments(w, b, &hop, p, plen, vh.gso_size,
                         w->seg_bufs + (size_t)n * SEG_SLOT_SIZE);
      continue;
    }
    if ((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !complete_checksum(p, plen, &vh)) {
      count(w, STAT_DROP_MALFORMED, 1);
      continue;
    }
    batch_add(w, b, &hop, p, plen, 1, 0);
  }
  if (n == 0) return 0;
  batch_flush(w, b);
  return 1;
}

/* ---- UDP to TUN: TCP segments of one flow written as one super-packet (GRO) ---------------- */

/* Whether a TCP segment (TTL already decremented) may join a super-packet: plain IPv4 header,
 * no fragment, payload, and only ACK (PSH allowed) among the flags. */
static int coalescable(const uint8_t *p, size_t len) {
  if (p[9] != IPPROTO_TCP || (p[0] & 0x0f) != 5 || (p[6] & 0x3f) != 0 || p[7] != 0) return 0;
  if (len < 40) return 0;
  size_t thl = (size_t)(p[32] >> 4) * 4;
  if (thl < 20 || len <= 20 + thl) return 0;
  return (p[33] & ~0x08) == 0x10;
}

/* Writes the pending super-packet (or the single packet) into the TUN. */
static void gro_flush(struct worker *w) {
  struct gro *g = &w->gro;
  if (g->segs == 0) return;
  uint8_t *p = g->buf;
  int ok;
  if (g->segs == 1) {
    ok = tun_write(w, &NO_OFFLOAD_HDR, p, g->len);
  } else {
    size_t thl = (size_t)(p[32] >> 4) * 4;
    p[2] = (uint8_t)(g->len >> 8);
    p[3] = (uint8_t)g->len;
    set_ip_checksum(p, 20);
    /* The kernel completes the TCP checksum: the field holds the pseudo-header's sum. */
    uint16_t partial = csum_fold(pseudo_sum(p, IPPROTO_TCP, g->len - 20));
    memcpy(p + 36, &partial, 2);
    struct virtio_net_hdr vh = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
        .hdr_len = (uint16_t)(20 + thl),
        .gso_size = (uint16_t)g->mss,
        .csum_start = 20,
        .csum_offset = 16,
    };
    ok = tun_write(w, &vh, p, g->len);
  }
  if (ok) {
    count(w, STAT_RX_PACKETS, (uint64_t)g->segs);
    count(w, STAT_RX_BYTES, g->bytes);
  } else {
    count(w, STAT_DROP_TUN_WRITE_FAILED, (uint64_t)g->segs);
  }
  g->segs = 0;
  g->len = 0;
  g->bytes = 0;
}

/* Writes one packet into the TUN, joining it to the pending super-packet when it continues it. */
static void gro_add(struct worker *w, const uint8_t *p, size_t len) {
  struct gro *g = &w->gro;
  if (!w->fw->offload || !coalescable(p, len)) {
    gro_flush(w);
    if (tun_write(w, &NO_OFFLOAD_HDR, p, len)) {
      count(w, STAT_RX_PACKETS, 1);
      count(w, STAT_RX_BYTES, len);
    } else {
      count(w, STAT_DROP_TUN_WRITE_FAILED, 1);
    }
    return;
  }
  size_t thl = (size_t)(p[32] >> 4) * 4;
  size_t payload = len - 20 - thl;
  uint32_t seq;
  memcpy(&seq, p + 24, 4);
  seq = ntohl(seq);
  if (g->segs > 0) {
    const uint8_t *q = g->buf;
    int joins = !g->closed && payload <= g->mss && seq == g->next_seq &&
                g->len + payload <= 65535 && g->segs < GRO_MAX_SEGMENTS &&
                memcmp(p + 12, q + 12, 8) == 0 &&       /* addresses */
                memcmp(p + 20, q + 20, 4) == 0 &&       /* ports */
                p[1] == q[1] && p[8] == q[8] &&         /* TOS, TTL */
                (p[6] & 0x40) == (q[6] & 0x40) &&       /* DF */
                memcmp(p + 28, q + 28, 4) == 0 &&       /* ACK number */
                p[32] == q[32] && memcmp(p + 34, q + 34, 2) == 0 && /* header length, window */
                memcmp(p + 40, q + 40, thl - 20) == 0;  /* options (timestamps) */
    if (joins) {
      memcpy(g->buf + g->len, p + 20 + thl, payload);
      g->len += payload;
      g->bytes += len;
      g->segs++;
      g->next_seq = seq + (uint32_t)payload;
      if (p[33] & 0x08) g->buf[33] |= 0x08;
      /* A short segment or a push ends the super-packet. */
      g->closed = payload < g->mss || (p[33] & 0x08);
      return;
    }
    gro_flush(w);
  }
  memcpy(g->buf, p, len);
  g->len = len;
  g->bytes = len;
  g->segs = 1;
  g->mss = payload;
  g->next_seq = seq + (uint32_t)payload;
  g->closed = (p[33] & 0x08) != 0;
}

/* Moves up to BATCH datagrams from the UDP socket into the TUN; as tun_to_udp. */
static int udp_to_tun(struct worker *w) {
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_in from[BATCH];
  char control[BATCH][CMSG_SPACE(sizeof(int))];
  for (int i = 0; i < BATCH; i++) {
    iovs[i].iov_base = w->udp_bufs + (size_t)i * UDP_SLOT_SIZE;
    iovs[i].iov_len = UDP_SLOT_SIZE;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = control[i];
    msgs[i].msg_hdr.msg_controllen = sizeof control[i];
  }
  int n = recvmmsg(w->udp_fd, msgs, BATCH, MSG_DONTWAIT, NULL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) return 0;
    return -errno;
  }
  if (n == 0) return 0;
  count(w, STAT_RECV_CALLS, 1);
  struct forwarder *fw = w->fw;
  for (int i = 0; i < n; i++) {
    uint8_t *data = iovs[i].iov_base;
    size_t len = msgs[i].msg_len;
    /* With UDP_GRO, one read holds datagrams of `size` bytes each (the last may be shorter). */
    size_t size = len;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL;
         c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int gso;
        memcpy(&gso, CMSG_DATA(c), sizeof gso);
        if (gso > 0) size = (size_t)gso;
      }
    }
    if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
      count(w, STAT_DROP_TOO_BIG, 1);
      continue;
    }
    if (len == 0) {
      count(w, STAT_DROP_SHORT, 1);
      continue;
    }
    pthread_rwlock_rdlock(&fw->lock);
    int known = table_has_sender(fw->table, from[i].sin_addr.s_addr);
    pthread_rwlock_unlock(&fw->lock);
    for (size_t at = 0; at < len; at += size) {
      uint8_t *p = data + at;
      size_t plen = len - at < size ? len - at : size;
      if (plen > fw->mtu) {
        count(w, STAT_DROP_TOO_BIG, 1);
        continue;
      }
      int bad = bad_ipv4(p, plen);
      if (bad >= 0) {
        count(w, bad, 1);
        continue;
      }
      if (!known) {
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
      gro_add(w, p, (size_t)p[2] << 8 | p[3]);
    }
  }
  gro_flush(w);
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
    if (__atomic_load_n(&w->quit_asked, __ATOMIC_ACQUIRE)) break;
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
    free(w->seg_bufs);
    free(w->udp_bufs);
    free(w->send);
    free(w->gro.buf);
  }
  if (fw->on_exit != NULL) napi_release_threadsafe_function(fw->on_exit, napi_tsfn_abort);
  fw->on_exit = NULL;
}

/* ---- N-API glue ----------------------------------------------------------------------------- */


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

/* Reads `want` arguments, the first a forwarder handle; NULL (with an exception) otherwise. */
static struct forwarder *forwarder_call(napi_env env, napi_callback_info info, size_t want,
                                        napi_value *argv) {
  void *data = NULL;
  if (!get_args(env, info, want, argv)) return NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "udp_forwarder: expected a forwarder handle");
    return NULL;
  }
  return data;
}

/* Opens `queues` queues of the TUN `name`; with `offload`, with virtio headers, checksum and TSO
 * offloads. 0, or the errno and the failed call. */
static int open_tun_queues(const char *name, uint32_t queues, int offload, int *fds,
                           const char **what) {
  for (uint32_t q = 0; q < queues; q++) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    int err = 0;
    if (fd < 0) {
      err = errno;
      *what = "open /dev/net/tun";
    } else {
      struct ifreq ifr;
      memset(&ifr, 0, sizeof ifr);
      ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0) |
                      (offload ? IFF_VNET_HDR : 0);
      snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
      unsigned features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN;
      if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        err = errno;
        *what = "ioctl TUNSETIFF";
      } else if (offload && ioctl(fd, TUNSETOFFLOAD, features) < 0) {
        err = errno;
        *what = "ioctl TUNSETOFFLOAD";
      }
    }
    if (err != 0) {
      if (fd >= 0) close(fd);
      for (uint32_t i = 0; i < q; i++) close(fds[i]);
      return err;
    }
    fds[q] = fd;
  }
  return 0;
}

/* openTun(name, queues, offload) -> {fds, offload}: offload is false when the kernel refused it. */
static napi_value open_tun(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  char name[IFNAMSIZ];
  size_t name_len = 0;
  uint32_t queues = 1;
  bool offload = false;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len));
  CHECK(napi_get_value_uint32(env, argv[1], &queues));
  CHECK(napi_get_value_bool(env, argv[2], &offload));
  if (queues < 1 || queues > MAX_WORKERS) {
    napi_throw_range_error(env, NULL, "udp_forwarder: queues must be 1 to 16");
    return NULL;
  }
  int fds[MAX_WORKERS];
  const char *what = NULL;
  int err = open_tun_queues(name, queues, offload, fds, &what);
  if (err != 0 && offload) {
    offload = false;
    err = open_tun_queues(name, queues, 0, fds, &what);
  }
  if (err != 0) return throw_errno(env, what, err);
  napi_value result, list, flag;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_array_with_length(env, queues, &list));
  for (uint32_t q = 0; q < queues; q++) {
    napi_value v;
    CHECK(napi_create_int32(env, fds[q], &v));
    CHECK(napi_set_element(env, list, q, v));
  }
  CHECK(napi_get_boolean(env, offload, &flag));
  CHECK(napi_set_named_property(env, result, "fds", list));
  CHECK(napi_set_named_property(env, result, "offload", flag));
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
  napi_value offload_value;
  bool offload = false;
  CHECK(napi_get_named_property(env, opts, "tunFds", &tun_fds));
  CHECK(napi_get_named_property(env, opts, "onWorkerExit", &on_exit));
  CHECK(napi_get_named_property(env, opts, "offload", &offload_value));
  CHECK(napi_get_value_bool(env, offload_value, &offload));
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
  fw->offload = offload;
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
    if (offload) {
      /* Datagrams of one flow may come as one read (they are split by size here). */
      int one = 1;
      setsockopt(w->udp_fd, SOL_UDP, UDP_GRO, &one, sizeof one);
      w->gso = 1;
    }
    w->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->tun_bufs = malloc((size_t)BATCH * TUN_SLOT_SIZE);
    w->seg_bufs = malloc((size_t)BATCH * SEG_SLOT_SIZE);
    w->udp_bufs = malloc((size_t)BATCH * UDP_SLOT_SIZE);
    w->send = malloc(sizeof *w->send);
    w->gro.buf = malloc(65536);
    if (w->kick_fd < 0 || w->tun_bufs == NULL || w->seg_bufs == NULL || w->udp_bufs == NULL ||
        w->send == NULL || w->gro.buf == NULL) {
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
  struct forwarder *fw = forwarder_call(env, info, 2, argv);
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
  struct forwarder *fw = forwarder_call(env, info, 1, argv);
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
  struct forwarder *fw = forwarder_call(env, info, 2, argv);
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

/* replaceTun(handle, fds): the workers go on with new TUN queues (the device was deleted and made
 * again); the old descriptors are closed. */
static napi_value replace_tun(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct forwarder *fw = forwarder_call(env, info, 2, argv);
  if (fw == NULL) return NULL;
  uint32_t n = 0;
  CHECK(napi_get_array_length(env, argv[1], &n));
  if (n != (uint32_t)fw->workers_count || fw->stopped) {
    napi_throw_range_error(env, NULL, "udp_forwarder: one TUN queue per worker expected");
    return NULL;
  }
  int fds[MAX_WORKERS];
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    CHECK(napi_get_element(env, argv[1], i, &v));
    CHECK(napi_get_value_int32(env, v, &fds[i]));
  }
  uint64_t one = 1, drain;
  for (uint32_t i = 0; i < n; i++) {
    struct worker *w = &fw->workers[i];
    if (w->started) {
      __atomic_store_n(&w->quit_asked, 1, __ATOMIC_RELEASE);
      if (write(w->kick_fd, &one, sizeof one) < 0) { /* it exits at its next wakeup anyway */
      }
      pthread_join(w->thread, NULL);
      w->started = 0;
    }
    if (read(w->kick_fd, &drain, sizeof drain) < 0) { /* nothing to drain */
    }
    __atomic_store_n(&w->quit_asked, 0, __ATOMIC_RELEASE);
    close(w->tun_fd);
    w->tun_fd = fds[i];
    w->gro.segs = 0;
    w->gro.len = 0;
    w->gro.bytes = 0;
    int err = worker_start(w);
    if (err != 0) return throw_errno(env, "pthread_create", err);
  }
  return NULL;
}

static napi_value stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct forwarder *fw = forwarder_call(env, info, 1, argv);
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
      {"replaceTun", NULL, replace_tun, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, stop, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
