/**
 * Runs lookupExternalInterface in the namespace it is started in (the tests start it with
 * `ip netns exec`) and prints the choice as JSON, or `{"error": ...}`.
 *   node dist/test/helpers/iface_probe.js '<InterfaceChoice JSON>'
 */
import { lookupExternalInterface } from "../../src/iface/external_interface.js";
import type { InterfaceChoice } from "../../src/iface/external_interface.js";

const choice = JSON.parse(process.argv[2] ?? "{}") as InterfaceChoice;
try {
  const found = await lookupExternalInterface(choice);
  process.stdout.write(JSON.stringify(found));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: (err as Error).message }));
}
