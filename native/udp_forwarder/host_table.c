/*
 * The table of hosts: each leased subnet's public address, looked up by longest prefix, and the
 * senders a datagram may come from.
 */
#include "forwarder.h"

void table_free(struct table *t) {
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

/* Builds a table from setRoutes' entries; NULL when out of memory. */
struct table *table_build(const uint8_t *data, size_t count) {
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
const struct sockaddr_in *table_lookup(const struct table *t, uint32_t dst) {
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

int table_has_sender(const struct table *t, uint32_t ip) {
  return bsearch(&ip, t->senders, t->senders_count, sizeof(uint32_t), compare_u32) != NULL;
}
