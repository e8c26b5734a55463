/*
 * What both N-API addons share: N-API failures turned into exceptions, system-call failures
 * thrown as Error with `code` set to the errno name (ENOBUFS, EADDRINUSE...), and the argument
 * count check. Define ADDON_NAME (a string) before including this.
 */
#ifndef FLANNEL_TS_NAPI_HELPERS_H
#define FLANNEL_TS_NAPI_HELPERS_H

#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, ADDON_NAME ": N-API call failed: " #call);                       \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

static const char *errno_name(int err) {
  switch (err) {
  case ENOBUFS: return "ENOBUFS";
  case EMSGSIZE: return "EMSGSIZE";
  case EAGAIN: return "EAGAIN";
  case EBADF: return "EBADF";
  case EBADFD: return "EBADFD";
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case EINVAL: return "EINVAL";
  case ENOMEM: return "ENOMEM";
  case ENOENT: return "ENOENT";
  case ENODEV: return "ENODEV";
  case EBUSY: return "EBUSY";
  case EMFILE: return "EMFILE";
  case ECANCELED: return "ECANCELED";
  case ECONNREFUSED: return "ECONNREFUSED";
  case EADDRINUSE: return "EADDRINUSE";
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  case ENOPROTOOPT: return "ENOPROTOOPT";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  default: return "EIO";
  }
}

/* Throws "<what> failed: <strerror>" with code = the errno name; returns NULL for the caller. */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[200];
  snprintf(message, sizeof message, "%s failed: %s", what, strerror(err));
  napi_throw_error(env, errno_name(err), message);
  return NULL;
}

/* Reads `want` arguments into argv; throws a TypeError and returns 0 when fewer were given. */
static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, ADDON_NAME ": missing arguments");
    return 0;
  }
  return 1;
}

#endif
