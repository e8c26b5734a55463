/*
 * TUN to UDP: packets read from the TUN in batches, TCP super-packets (TSO) cut into segments of
 * the MTU, sent with sendmmsg and UDP_SEGMENT.
 */
#include "forwarder.h"
#include "checksum.h"

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
int tun_to_udp(struct worker *w) {
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
