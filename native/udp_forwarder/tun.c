/*
 * The TUN side: the device's queues opened, packets written into it (behind a virtio header with
 * offloads), and ICMP net-unreachable for a subnet without a lease.
 */
#include "forwarder.h"

const struct virtio_net_hdr NO_OFFLOAD_HDR = {0};
#include "checksum.h"

/* ---- the TUN side --------------------------------------------------------------------------- */


/* Writes one packet into the TUN, behind a virtio header when the device has them. */
int tun_write(struct worker *w, const struct virtio_net_hdr *vh, const uint8_t *pkt,
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
void send_net_unreachable(struct worker *w, const uint8_t *offender, size_t len) {
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
int bad_ipv4(const uint8_t *p, size_t len) {
  if (len < 20) return STAT_DROP_SHORT;
  if (p[0] >> 4 != 4) return STAT_DROP_NOT_IPV4;
  size_t ihl = (size_t)(p[0] & 0x0f) * 4;
  size_t total = (size_t)p[2] << 8 | p[3];
  if (ihl < 20 || total < ihl || total > len) return STAT_DROP_MALFORMED;
  return -1;
}

/* Opens `queues` queues of the TUN `name`; with `offload`, with virtio headers, checksum and TSO
 * offloads. 0, or the errno and the failed call. */
int open_tun_queues(const char *name, uint32_t queues, int offload, int *fds,
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
