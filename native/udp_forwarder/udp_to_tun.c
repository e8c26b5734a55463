/*
 * UDP to TUN: datagrams received with recvmmsg (UDP_GRO trains), checked, and TCP segments of one
 * flow written into the TUN as one super-packet (GRO in userspace).
 */
#include "forwarder.h"
#include "checksum.h"

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
int udp_to_tun(struct worker *w) {
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
