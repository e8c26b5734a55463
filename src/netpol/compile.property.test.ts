/**
 * The compiled rules give the verdicts of the API's semantics: for random clusters and policy
 * sets (test/helpers/netpol_arbitrary.ts), every packet between the pods, the outside and a
 * hostNetwork pod, over TCP, UDP and SCTP to ports 80 to 82, passes the plans of its two nodes
 * (read as nftables runs them, test/helpers/netpol_interpreter.ts) exactly when the evaluator
 * (evaluate.ts) allows it. test/netns/netpol.test.ts checks a sample on real packets.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  HOST_NETWORK_IP,
  OUTSIDE_IP,
  POD_IPS,
  clusterArb,
} from "../../test/helpers/netpol_arbitrary.js";
import { clusterViewOf } from "./cluster_view.js";
import { planVerdict } from "../../test/helpers/netpol_interpreter.js";
import { compilePlan } from "./compile.js";
import { evaluate } from "./evaluate.js";
import type { Protocol } from "./objects.js";

const nodeOf = (ip: string) =>
  ip.startsWith("10.244.1.") ? "n1" : ip.startsWith("10.244.2.") ? "n2" : null;

test("the compiled plans and the evaluator give the same verdict on every packet", () => {
  fc.assert(
    fc.property(clusterArb, (raw) => {
      const view = clusterViewOf(raw);
      const plans = {
        n1: compilePlan(view, { nodeName: "n1", families: [4] }),
        n2: compilePlan(view, { nodeName: "n2", families: [4] }),
      };
      const ips = [...POD_IPS, OUTSIDE_IP, HOST_NETWORK_IP];
      for (const src of ips)
        for (const dst of ips) {
          if (src === dst) continue;
          for (const protocol of ["TCP", "UDP", "SCTP"] as Protocol[])
            for (const port of [80, 81, 82]) {
              const packet = { src, dst, protocol, port };
              const s = nodeOf(src);
              const d = nodeOf(dst);
              const compiled = planVerdict(
                s === null ? null : plans[s],
                d === null ? null : plans[d],
                packet,
              );
              const judged = evaluate(view, packet).allowed;
              assert.equal(
                compiled,
                judged,
                `${src} -> ${dst} ${protocol}/${port}: rules ${compiled}, evaluator ${judged}`,
              );
            }
        }
    }),
    { numRuns: 300 },
  );
});
