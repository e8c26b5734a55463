/* Internet checksums (RFC 1071), patched incrementally (RFC 1624), and the TTL. */
#ifndef FLANNEL_TS_CHECKSUM_H
#define FLANNEL_TS_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

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

#endif
