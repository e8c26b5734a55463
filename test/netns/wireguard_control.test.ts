/**
 * The WgControl contract on a real WireGuard device (wireguard-go: this kernel has none), for both
 * implementations: wireguard-go's socket, and `wg`.
 */
import { describeWgControl } from "../../src/backend/wireguard/control.case.test.js";
import { WgToolControl } from "../../src/backend/wireguard/wg_tool.js";
import { addNetns, deleteNetns, uniquePrefix } from "../../lab/netns.js";
import { startWireguardGo } from "../helpers/wireguard_go.js";

async function device(via: "uapi" | "wg") {
  const netns = uniquePrefix("ftwg");
  await addNetns(netns);
  try {
    const wg = await startWireguardGo(netns, "wgtest0");
    return {
      control: via === "uapi" ? wg.control : new WgToolControl("wgtest0", wg.wgCommand),
      async cleanup() {
        await wg.stop();
        await deleteNetns(netns);
      },
    };
  } catch (err) {
    await deleteNetns(netns);
    throw err;
  }
}

describeWgControl("wireguard-go's socket (UapiControl)", () => device("uapi"));
describeWgControl("wg on wireguard-go (WgToolControl)", () => device("wg"));
