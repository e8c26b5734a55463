/** What flannelctl doctor knows of the host once it has read the store, the files and flags. */
import type { PlaneInspection } from "../backend/backend.js";
import type { NetworkConfig } from "../config/network_config.js";
import type { FlanneldOptions } from "../daemon/run_flanneld.js";
import type { ExternalInterface } from "../iface/external_interface.js";
import type { Lease } from "../lease/lease.js";
import type { Netlink } from "../net/netlink.js";
import type { TrafficManager } from "../trafficmngr/traffic_manager.js";

export interface HostView {
  /** flanneld's settings, as its flags and FLANNELD_* variables give them. */
  readonly options: FlanneldOptions;
  readonly config: NetworkConfig;
  /** Every lease in the store. */
  readonly leases: readonly Lease[];
  /** This host's lease; null when the store holds none for it. */
  readonly own: Lease | null;
  readonly extIface: ExternalInterface;
  /** The backend's data plane as it must be here; null without a lease. */
  readonly inspection: PlaneInspection | null;
  /** subnet.env's text; null when the file is missing. */
  readonly subnetEnv: string | null;
  readonly netlink: Netlink;
  readonly traffic: TrafficManager;
  /** /proc (tests point it elsewhere). */
  readonly procDir: string;
  /** `uname -r`, for kernel bugs that depend on it. */
  readonly kernelRelease: string;
  readonly now: Date;
}
