/*
 * The udp forwarder's parts (the .c files beside this one): what they share. addon.c says what the
 * forwarder does and holds the N-API functions.
 */
#ifndef FLANNEL_TS_UDP_FORWARDER_H
#define FLANNEL_TS_UDP_FORWARDER_H

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
  int kick_fd; /* eventfd: wakes the worker to stop or to quit */
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

/* The pending datagrams of one turn: plain packets, and runs of TCP segments (UDP_SEGMENT). */
struct send_batch {
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_in hops[BATCH];
  int segments[BATCH];
  char control[BATCH][CMSG_SPACE(sizeof(uint16_t))];
  unsigned count;
};

static inline void count(struct worker *w, int stat, uint64_t n) {
  __atomic_store_n(&w->stats[stat], w->stats[stat] + n, __ATOMIC_RELAXED);
}

/* A prefix length as a mask, host order. */
static inline uint32_t mask_of(int len) { return len == 0 ? 0 : ~(uint32_t)0 << (32 - len); }

/* The virtio header of a packet without offloads (tun.c). */
extern const struct virtio_net_hdr NO_OFFLOAD_HDR;

/* host_table.c */
void table_free(struct table *t);
struct table *table_build(const uint8_t *data, size_t count);
const struct sockaddr_in *table_lookup(const struct table *t, uint32_t dst);
int table_has_sender(const struct table *t, uint32_t ip);

/* tun.c */
int tun_write(struct worker *w, const struct virtio_net_hdr *vh, const uint8_t *pkt, size_t len);
void send_net_unreachable(struct worker *w, const uint8_t *offender, size_t len);
int bad_ipv4(const uint8_t *p, size_t len);
int open_tun_queues(const char *name, uint32_t queues, int offload, int *fds, const char **what);

/* tun_to_udp.c */
int tun_to_udp(struct worker *w);

/* udp_to_tun.c */
int udp_to_tun(struct worker *w);

/* workers.c */
int worker_start(struct worker *w);
void forwarder_stop(struct forwarder *fw);

#endif
