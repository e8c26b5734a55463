{
  "targets": [
    {
      "target_name": "kernel_sockets",
      "sources": ["native/kernel_sockets.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "udp_forwarder",
      "sources": [
        "native/udp_forwarder/addon.c",
        "native/udp_forwarder/host_table.c",
        "native/udp_forwarder/tun.c",
        "native/udp_forwarder/tun_to_udp.c",
        "native/udp_forwarder/udp_to_tun.c",
        "native/udp_forwarder/workers.c"
      ],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "libraries": ["-lpthread"]
    }
  ]
}
