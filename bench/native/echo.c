/*
 * The machine's ceiling for the benchmark: a single-threaded epoll server
 * that reads 4096-byte kv739 frames and writes each one back (one write per
 * frame). Nothing is cheaper to serve over TCP with this protocol; the load
 * generator's rate against it is what the client side and the kernel allow.
 *
 * usage: echo PORT   (prints "ready" once listening; exits on SIGTERM)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_BYTES 4096
#define MAX_FDS 65536

struct conn {
  char buf[FRAME_BYTES * 16];
  size_t len;
};
static struct conn *conns[MAX_FDS];

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: echo PORT\n");
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 4096) != 0) {
    perror("echo: listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  printf("ready\n");
  fflush(stdout);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (c >= MAX_FDS) {
            close(c);
            continue;
          }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conns[c] = calloc(1, sizeof(struct conn));
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      struct conn *k = conns[fd];
      ssize_t r = read(fd, k->buf + k->len, sizeof k->buf - k->len);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
        free(k);
        conns[fd] = NULL;
        continue;
      }
      k->len += (size_t)r;
      size_t off = 0;
      /* one write per frame, as a server answering each request on its own would */
      while (k->len - off >= FRAME_BYTES) {
        size_t done = 0;
        while (done < FRAME_BYTES) {
          ssize_t w = write(fd, k->buf + off + done, FRAME_BYTES - done);
          if (w < 0 && errno == EAGAIN) continue;
          if (w <= 0) break;
          done += (size_t)w;
        }
        off += FRAME_BYTES;
      }
      memmove(k->buf, k->buf + off, k->len - off);
      k->len -= off;
    }
  }
}
