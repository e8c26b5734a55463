{
  "targets": [
    {
      "target_name": "netlink_socket",
      "sources": ["native/netlink_socket.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
