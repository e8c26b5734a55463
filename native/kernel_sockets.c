/*
 * kernel_sockets: the kernel sockets and ioctls flannel-ts needs and Node has no API for
 * (declared for TypeScript in src/native/index.ts):
 * - AF_NETLINK sockets, for the rtnetlink layer (src/net/netlink_socket.ts wraps them);
 * - the SIOCETHTOOL ioctl, for TX checksum offload (src/net/ethtool.ts);
 * - AF_UNIX datagrams, for sd_notify (src/daemon/sd_notify.ts).
 *
 * Why our own netlink: the `netlink` npm package aborts the process when its socket reports an error
 * through poll (a multicast socket that overran its receive buffer: POLLERR), and it exposes no
 * setsockopt. This addon does only the system calls; framing, sequence numbers and messages are
 * TypeScript's.
 *
 *   open(protocol, rcvbuf, sndbuf) -> fd     non-blocking, close-on-exec, bound (kernel port)
 *   setOption(fd, option, value)             SOL_NETLINK options (membership, strict check...)
 *   send(fd, buffer) -> bytes                one datagram to the kernel; throws on error
 *   receive(fd) -> Buffer | null             one datagram; null when none is waiting;
 *                                            throws (code ENOBUFS...) when the socket reports one
 *   watch(fd, onReadable) -> watcher         calls onReadable() while data or an error waits
 *   unwatch(watcher), ref(watcher, bool)
 *   close(fd)
 *   ethtool(name, cmd, data) -> data          one ethtool_value request on an AF_INET socket
 *   unixDatagram(path) -> fd, unixSend(fd, path, buffer) -> bytes
 *   trimHeap() -> bool                       glibc's malloc_trim(0): gives the C heap's free
 *                                            pages back to the kernel (false: nothing given
 *                                            back, or not glibc)
 *
 * Errors are thrown as Error with `code` set to the errno name (ENOBUFS, EMSGSIZE...).
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <linux/ethtool.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#define ADDON_NAME "kernel_sockets"
#include "napi_helpers.h"

#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif
#ifndef SO_SNDBUFFORCE
#define SO_SNDBUFFORCE 32
#endif



static int get_int(napi_env env, napi_value value, int32_t *out) {
  if (napi_get_value_int32(env, value, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "kernel_sockets: expected a number");
    return 0;
  }
  return 1;
}

static napi_value make_int(napi_env env, int64_t n) {
  napi_value out;
  napi_create_int64(env, n, &out);
  return out;
}

/* A buffer size: forced past net.core.*mem_max where allowed (CAP_NET_ADMIN), else capped. */
static void set_buffer(int fd, int force_option, int option, int size) {
  if (size <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, force_option, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, option, &size, sizeof size);
}

static napi_value Open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t protocol, rcvbuf, sndbuf;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &protocol) ||
      !get_int(env, argv[1], &rcvbuf) || !get_int(env, argv[2], &sndbuf))
    return NULL;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return throw_errno(env, "socket", errno);
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  return make_int(env, fd);
}

static napi_value SetOption(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, option, value;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &fd) ||
      !get_int(env, argv[1], &option) || !get_int(env, argv[2], &value))
    return NULL;
  if (setsockopt(fd, SOL_NETLINK, option, &value, sizeof value) != 0)
    return throw_errno(env, "setsockopt", errno);
  return NULL;
}

static napi_value Send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t length;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd)) return NULL;
  if (napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "kernel_sockets: expected a Buffer");
    return NULL;
  }
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent;
  do {
    sent = sendto(fd, data, length, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return throw_errno(env, "sendto", errno);
  return make_int(env, sent);
}

/* Room for one datagram: the kernel's netlink datagrams (dump parts, announcements) are at most
 * 32 KiB. One recv per datagram into this buffer, then a copy of exactly its size. */
#define RECEIVE_ROOM (64 * 1024)
static char receive_room[RECEIVE_ROOM];

static napi_value Receive(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return NULL;
  ssize_t size;
  do {
    size = recv(fd, receive_room, RECEIVE_ROOM, MSG_TRUNC);
  } while (size < 0 && errno == EINTR);
  if (size < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_value null_value;
      napi_get_null(env, &null_value);
      return null_value;
    }
    return throw_errno(env, "recv", errno);
  }
  /* A datagram bigger than the room was cut: what it said is lost, as with an overrun. */
  if (size > RECEIVE_ROOM) return throw_errno(env, "recv", EMSGSIZE);
  napi_value buffer;
  CHECK(napi_create_buffer_copy(env, (size_t)size, receive_room, NULL, &buffer));
  return buffer;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  int closed;       /* unwatch() was called */
  int handle_gone;  /* libuv is done with the handle */
  int external_gone; /* JavaScript's reference was collected */
} watcher_t;

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  watcher_t *w = (watcher_t *)handle->data;
  if (w->closed) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, result;
  if (napi_get_reference_value(env, w->callback, &callback) == napi_ok &&
      napi_get_global(env, &global) == napi_ok) {
    /* status < 0 (POLLERR: an overrun) and readable alike: the callback reads, and the read
     * reports the socket's error. The callback must not throw; if it does, it is reported as an
     * uncaught exception rather than aborting the process. */
    napi_status s = napi_make_callback(env, NULL, global, callback, 0, NULL, &result);
    if (s == napi_pending_exception) {
      napi_value exception;
      napi_get_and_clear_last_exception(env, &exception);
      napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* The watcher is freed once both libuv and JavaScript are done with it. */
static void on_close(uv_handle_t *handle) {
  watcher_t *w = (watcher_t *)handle->data;
  w->handle_gone = 1;
  if (w->external_gone) free(w);
}

static void finalize_watcher(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watcher_t *w = (watcher_t *)data;
  w->external_gone = 1;
  if (w->handle_gone) free(w);
}

static napi_value Watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd)) return NULL;
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  watcher_t *w = calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, "calloc", ENOMEM);
  w->env = env;
  w->poll.data = w;
  if (uv_poll_init_socket(loop, &w->poll, fd) != 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", EBADF);
  }
  CHECK(napi_create_reference(env, argv[1], 1, &w->callback));
  uv_poll_start(&w->poll, UV_READABLE, on_poll);
  napi_value external;
  CHECK(napi_create_external(env, w, finalize_watcher, NULL, &external));
  return external;
}

static watcher_t *watcher_of(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "kernel_sockets: expected a watcher");
    return NULL;
  }
  return (watcher_t *)data;
}

static napi_value Unwatch(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  watcher_t *w = watcher_of(env, argv[0]);
  if (w == NULL || w->closed) return NULL;
  w->closed = 1;
  napi_delete_reference(env, w->callback);
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_close);
  return NULL;
}

static napi_value Ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool on;
  if (!get_args(env, info, 2, argv)) return NULL;
  watcher_t *w = watcher_of(env, argv[0]);
  if (w == NULL || w->closed) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (on)
    uv_ref((uv_handle_t *)&w->poll);
  else
    uv_unref((uv_handle_t *)&w->poll);
  return NULL;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return NULL;
  close(fd);
  return NULL;
}

/* An AF_UNIX address from a path; a leading '@' names the abstract namespace (as systemd
 * writes NOTIFY_SOCKET). Returns the address length, 0 when the path does not fit. */
static socklen_t unix_address(const char *path, size_t len, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (len == 0 || len >= sizeof addr->sun_path) return 0;
  memcpy(addr->sun_path, path, len);
  if (path[0] == '@') addr->sun_path[0] = '\0';
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

/* unixDatagram(path): a non-blocking AF_UNIX datagram socket, bound to `path` unless it is "". */
static napi_value UnixDatagram(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t len;
  if (!get_args(env, info, 1, argv)) return NULL;
  CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (len > 0) {
    struct sockaddr_un addr;
    socklen_t size = unix_address(path, len, &addr);
    if (size == 0 || bind(fd, (struct sockaddr *)&addr, size) != 0) {
      int err = size == 0 ? ENAMETOOLONG : errno;
      close(fd);
      return throw_errno(env, "bind", err);
    }
  }
  return make_int(env, fd);
}

/* unixSend(fd, path, data): one datagram to the socket at `path` ('@' for abstract). */
static napi_value UnixSend(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t len;
  void *data;
  size_t length;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &fd)) return NULL;
  CHECK(napi_get_value_string_utf8(env, argv[1], path, sizeof path, &len));
  if (napi_get_buffer_info(env, argv[2], &data, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "kernel_sockets: expected a Buffer");
    return NULL;
  }
  struct sockaddr_un addr;
  socklen_t size = unix_address(path, len, &addr);
  if (size == 0) return throw_errno(env, "sendto", ENAMETOOLONG);
  ssize_t sent;
  do {
    sent = sendto(fd, data, length, MSG_NOSIGNAL, (struct sockaddr *)&addr, size);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return throw_errno(env, "sendto", errno);
  return make_int(env, sent);
}

/*
 * ethtool(name, cmd, data): one ethtool request carrying a struct ethtool_value (ETHTOOL_GTXCSUM,
 * ETHTOOL_STXCSUM...) on the named device, by SIOCETHTOOL; returns the value's data after it.
 */
static napi_value Ethtool(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[IFNAMSIZ];
  size_t len;
  uint32_t cmd, data;
  if (!get_args(env, info, 3, argv)) return NULL;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  CHECK(napi_get_value_uint32(env, argv[1], &cmd));
  CHECK(napi_get_value_uint32(env, argv[2], &data));
  struct ethtool_value value = {.cmd = cmd, .data = data};
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, len < IFNAMSIZ ? len : IFNAMSIZ - 1);
  ifr.ifr_data = (char *)&value;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int rc = ioctl(fd, SIOCETHTOOL, &ifr);
  int err = errno;
  close(fd);
  if (rc < 0) return throw_errno(env, "SIOCETHTOOL", err);
  napi_value out;
  CHECK(napi_create_uint32(env, value.data, &out));
  return out;
}

/*
 * Node never trims glibc's heap: what a burst of work freed (the snapshot's file, the first
 * listing's buffers) stays in the process's RSS until something calls this.
 */
static napi_value TrimHeap(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  napi_value out;
  CHECK(napi_get_boolean(env, released != 0, &out));
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
      {"setOption", NULL, SetOption, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, Send, NULL, NULL, NULL, napi_default, NULL},
      {"receive", NULL, Receive, NULL, NULL, NULL, napi_default, NULL},
      {"watch", NULL, Watch, NULL, NULL, NULL, napi_default, NULL},
      {"unwatch", NULL, Unwatch, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, Ref, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
      {"ethtool", NULL, Ethtool, NULL, NULL, NULL, napi_default, NULL},
      {"trimHeap", NULL, TrimHeap, NULL, NULL, NULL, napi_default, NULL},
      {"unixDatagram", NULL, UnixDatagram, NULL, NULL, NULL, napi_default, NULL},
      {"unixSend", NULL, UnixSend, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
