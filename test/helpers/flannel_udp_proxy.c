/*
 * A udp host's forwarder written as flannel (Go)'s C proxy loop (pkg/backend/udp/proxy_amd64.c)
 * works, for the interop test and as the baseline of bench/udp_bench.ts: poll() on the TUN, the
 * UDP socket and a control channel; on a wakeup, one packet read from the TUN then one sendto,
 * one datagram received then one write into the TUN, repeated while either side moved a packet.
 * The payload is the raw IPv4 packet; the TTL is decremented on each side, and a packet for a
 * subnet with no route gets ICMP net-unreachable back into the TUN (never about ICMP, first
 * fragments only), as flannel does. Written for flannel-ts's tests; not flannel's code.
 *
 *   flannel_udp_proxy <tun name> <bind IP> <port> <TUN IP> <MTU>
 *
 * The control channel is stdin, one command per line (flannel uses a socketpair of structs):
 *   add <net>/<len> <next hop IP> <port>      del <net>/<len>
 * "ready" is printed on stdout once the TUN and the socket exist; each command is answered "ok".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct route {
  uint32_t net, mask; /* network order */
  struct sockaddr_in hop;
};

static struct route routes[4096];
static int route_count;
static uint32_t tun_ip;

static uint16_t csum(const uint8_t *p, size_t len) {
  uint32_t sum = 0;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)p[0] << 8 | p[1];
  if (len) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((uint16_t)~sum);
}

static int decrement_ttl(uint8_t *ip) {
  if (--ip[8] == 0) return 0;
  uint16_t check;
  memcpy(&check, ip + 10, 2);
  uint32_t sum = (uint32_t)check + htons(0x0100);
  check = (uint16_t)(sum + (sum >= 0xffff));
  memcpy(ip + 10, &check, 2);
  return 1;
}

static struct sockaddr_in *find(uint32_t dst) {
  for (int i = 0; i < route_count; i++) {
    if ((dst & routes[i].mask) == routes[i].net) {
      if (i != 0) { /* bursts go to one host: keep it first, as flannel does */
        struct route t = routes[i];
        routes[i] = routes[0];
        routes[0] = t;
      }
      return &routes[0].hop;
    }
  }
  return NULL;
}

static void net_unreachable(int tun, const uint8_t *off, size_t len) {
  size_t ihl = (size_t)(off[0] & 15) * 4;
  if (off[9] == IPPROTO_ICMP || ((((off[6] & 0x1f) << 8) | off[7]) != 0) || ihl + 8 > len) return;
  uint8_t pkt[96] = {0};
  size_t total = 28 + ihl + 8;
  pkt[0] = 0x45;
  pkt[2] = (uint8_t)(total >> 8);
  pkt[3] = (uint8_t)total;
  pkt[8] = 8;
  pkt[9] = IPPROTO_ICMP;
  memcpy(pkt + 12, &tun_ip, 4);
  memcpy(pkt + 16, off + 12, 4);
  uint16_t c = csum(pkt, 20);
  memcpy(pkt + 10, &c, 2);
  pkt[20] = 3;
  memcpy(pkt + 28, off, ihl + 8);
  c = csum(pkt + 20, 8 + ihl + 8);
  memcpy(pkt + 22, &c, 2);
  if (write(tun, pkt, total) < 0) perror("write icmp");
}

static int tun_to_udp(int tun, int sock, uint8_t *buf, size_t size) {
  ssize_t n = read(tun, buf, size);
  if (n < 20) return 0;
  uint32_t dst;
  memcpy(&dst, buf + 16, 4);
  struct sockaddr_in *hop = find(dst);
  if (hop == NULL) {
    net_unreachable(tun, buf, (size_t)n);
    return 1;
  }
  if (decrement_ttl(buf)) sendto(sock, buf, (size_t)n, 0, (struct sockaddr *)hop, sizeof *hop);
  return 1;
}

static int udp_to_tun(int sock, int tun, uint8_t *buf, size_t size) {
  ssize_t n = recv(sock, buf, size, MSG_DONTWAIT);
  if (n < 20) return 0;
  if (decrement_ttl(buf)) {
    while (write(tun, buf, (size_t)n) < 0 && errno == EAGAIN) {
    }
  }
  return 1;
}

static int command(char *line) {
  char net[32], ip[32];
  int len, port;
  if (sscanf(line, "add %31[0-9.]/%d %31s %d", net, &len, ip, &port) == 4) {
    if (route_count == (int)(sizeof routes / sizeof routes[0])) return -1;
    struct route *r = &routes[route_count++];
    r->mask = htonl(len == 0 ? 0 : ~0u << (32 - len));
    r->net = inet_addr(net) & r->mask;
    memset(&r->hop, 0, sizeof r->hop);
    r->hop.sin_family = AF_INET;
    r->hop.sin_port = htons((uint16_t)port);
    r->hop.sin_addr.s_addr = inet_addr(ip);
    return 0;
  }
  if (sscanf(line, "del %31[0-9.]/%d", net, &len) == 2) {
    uint32_t mask = htonl(len == 0 ? 0 : ~0u << (32 - len));
    uint32_t n = inet_addr(net) & mask;
    for (int i = 0; i < route_count; i++) {
      if (routes[i].net == n && routes[i].mask == mask) {
        routes[i] = routes[--route_count];
        return 0;
      }
    }
    return 0;
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s <tun name> <bind IP> <port> <TUN IP> <MTU>\n", argv[0]);
    return 2;
  }
  int tun = open("/dev/net/tun", O_RDWR);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) {
    perror("TUN");
    return 1;
  }
  fcntl(tun, F_SETFL, O_NONBLOCK);
  int sock = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  addr.sin_addr.s_addr = inet_addr(argv[2]);
  if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("bind");
    return 1;
  }
  tun_ip = inet_addr(argv[4]);
  size_t size = (size_t)atoi(argv[5]);
  uint8_t *buf = malloc(size);
  printf("ready\n");
  fflush(stdout);
  struct pollfd fds[3] = {{.fd = tun, .events = POLLIN}, {.fd = sock, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  char line[256];
  size_t used = 0;
  for (;;) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[2].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, line + used, sizeof line - 1 - used);
      if (n <= 0) return 0; /* the control channel closed: stop */
      used += (size_t)n;
      char *nl;
      while ((nl = memchr(line, '\n', used)) != NULL) {
        *nl = 0;
        printf(command(line) == 0 ? "ok\n" : "error\n");
        fflush(stdout);
        used -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, used);
      }
    }
    if ((fds[0].revents | fds[1].revents) & POLLIN) {
      int active;
      do {
        active = tun_to_udp(tun, sock, buf, size) + udp_to_tun(sock, tun, buf, size);
      } while (active);
    }
  }
}
