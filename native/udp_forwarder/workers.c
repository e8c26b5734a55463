/*
 * The worker threads: one per TUN queue, each waiting in epoll and moving packets both ways until
 * stopped; an exit on an error is reported to Node.
 */
#include "forwarder.h"

static void report_exit(struct worker *w, int err, const char *what) {
  count(w, STAT_WORKER_EXITS, 1);
  struct exit_report *r = calloc(1, sizeof *r);
  if (r != NULL) {
    r->index = w->index;
    r->err = err;
    snprintf(r->what, sizeof r->what, "%s", what);
    if (napi_call_threadsafe_function(w->fw->on_exit, r, napi_tsfn_nonblocking) != napi_ok)
      free(r);
  }
  __atomic_store_n(&w->state, WORKER_EXITED, __ATOMIC_RELEASE);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    report_exit(w, errno, "epoll_create1");
    return NULL;
  }
  struct epoll_event ev = {.events = EPOLLIN};
  int fds[3] = {w->tun_fd, w->udp_fd, w->kick_fd};
  for (int i = 0; i < 3; i++) {
    ev.data.u32 = (uint32_t)i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
      int err = errno;
      close(ep);
      report_exit(w, err, "epoll_ctl");
      return NULL;
    }
  }
  int err = 0;
  const char *what = NULL;
  for (;;) {
    struct epoll_event events[3];
    int ready = epoll_wait(ep, events, 3, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      err = errno;
      what = "epoll_wait";
      break;
    }
    if (__atomic_load_n(&w->fw->stopping, __ATOMIC_ACQUIRE)) break;
    if (__atomic_load_n(&w->quit_asked, __ATOMIC_ACQUIRE)) break;
    /* While either side has packets, move them without asking epoll again (as flannel does). */
    int active;
    do {
      int a = tun_to_udp(w);
      if (a < 0) {
        err = -a;
        what = "read from the TUN device";
        break;
      }
      int b = udp_to_tun(w);
      if (b < 0) {
        err = -b;
        what = "recvmmsg from the UDP socket";
        break;
      }
      active = a + b;
    } while (active && !__atomic_load_n(&w->fw->stopping, __ATOMIC_RELAXED));
    if (what != NULL) break;
  }
  close(ep);
  if (what != NULL) report_exit(w, err, what);
  else __atomic_store_n(&w->state, WORKER_EXITED, __ATOMIC_RELEASE);
  return NULL;
}

int worker_start(struct worker *w) {
  __atomic_store_n(&w->state, WORKER_RUNNING, __ATOMIC_RELEASE);
  int err = pthread_create(&w->thread, NULL, worker_main, w);
  if (err != 0) {
    __atomic_store_n(&w->state, WORKER_IDLE, __ATOMIC_RELEASE);
    return err;
  }
  w->started = 1;
  return 0;
}

void forwarder_stop(struct forwarder *fw) {
  if (fw->stopped) return;
  fw->stopped = 1;
  __atomic_store_n(&fw->stopping, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  for (int i = 0; i < fw->workers_count; i++) {
    struct worker *w = &fw->workers[i];
    if (write(w->kick_fd, &one, sizeof one) < 0) { /* the worker wakes anyway on close */
    }
  }
  for (int i = 0; i < fw->workers_count; i++) {
    struct worker *w = &fw->workers[i];
    if (w->started) pthread_join(w->thread, NULL);
    w->started = 0;
    close(w->kick_fd);
    close(w->udp_fd);
    close(w->tun_fd);
    free(w->tun_bufs);
    free(w->seg_bufs);
    free(w->udp_bufs);
    free(w->send);
    free(w->gro.buf);
  }
  if (fw->on_exit != NULL) napi_release_threadsafe_function(fw->on_exit, napi_tsfn_abort);
  fw->on_exit = NULL;
}
