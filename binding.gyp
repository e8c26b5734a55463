{
  "targets": [
    {
      "target_name": "netlink_socket",
      "sources": ["native/netlink_socket.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "udp_forwarder",
      "sources": ["native/udp_forwarder.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "libraries": ["-lpthread"]
    }
  ]
}
