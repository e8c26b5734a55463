/**
 * flanneld's start-up snapshot: `npm run build` runs this with `node --build-snapshot` (see
 * scripts/build_helpers.mjs) and bin/flanneld starts Node from the snapshot, so that a start skips
 * parsing and running the modules below: they are already loaded, as they were when the snapshot
 * was made. Nothing that a module computes while it loads may depend on the host it runs on (the
 * snapshot is made once, at build time); what it reads of the host, it reads when called.
 */
import { startupSnapshot } from "node:v8";
import { parseVxlanConfig } from "../backend/vxlan/vxlan.js";
import { loadNetworkConfig } from "../config/network_config.js";
import { decodeLeaseAttrs } from "../lease/lease.js";
import { parseFlanneldFlags } from "./flanneld_flags.js";
import { main } from "./flanneld_main.js";
import { exitWith } from "../util/exit_with.js";
// What flanneld_main loads when it starts a daemon in etcd mode. The Kubernetes client is not
// run here, but its code is in the snapshot too: the CommonJS bundle inlines dynamic imports.
import "../daemon/run_flanneld.js";
import "./flanneld_deps.js";
import "../daemon/sd_notify.js";
import "../subnet/etcd/local_manager.js";

// A schema's first parse compiles it (zod makes a parser function per object schema): here, on
// made-up input, so that a start finds the flags', the config's and the leases' ready.
parseFlanneldFlags(["--iface=eth0"], {});
parseVxlanConfig(
  loadNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}').backend,
);
decodeLeaseAttrs(
  '{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}',
);

startupSnapshot.setDeserializeMainFunction(() => {
  exitWith(main(process.argv.slice(2)));
});
