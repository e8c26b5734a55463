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
 *
 * The parts: addon.c (these functions), workers.c (the threads), tun_to_udp.c (batches and TSO
 * segmentation), udp_to_tun.c (checks and GRO), tun.c (the device, ICMP errors), host_table.c
 * (the hosts by longest prefix), checksum.h; forwarder.h holds what they share.
 */
#include "forwarder.h"

#define ADDON_NAME "udp_forwarder"
#include "../napi_helpers.h"

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
