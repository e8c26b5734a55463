/**
 * Stands in for systemd's notify socket: binds an AF_UNIX datagram socket (a path, or @name in
 * the abstract namespace of the network namespace it runs in) and prints each datagram as a JSON
 * line, with whether `watchFile` existed when it arrived. Run in the namespace of the process
 * under test: node notify_listener.js <socket> <watchFile>. Prints "listening" once bound.
 */
import { existsSync } from "node:fs";
import { kernelSockets } from "../../src/native/index.js";

const [socket = "", watchFile = ""] = process.argv.slice(2);
const addon = kernelSockets();
const fd = addon.unixDatagram(socket);
addon.watch(fd, () => {
  for (let datagram = addon.receive(fd); datagram !== null; datagram = addon.receive(fd)) {
    const fileExisted = watchFile !== "" && existsSync(watchFile);
    process.stdout.write(`${JSON.stringify({ message: datagram.toString(), fileExisted })}\n`);
  }
});
process.stdout.write("listening\n");
