import assert from "node:assert/strict";
import { test } from "node:test";
import { IPNet } from "../ip/ip.js";
import { iptablesRules, restorePayload } from "./iptables.js";
import { chainRulesOf, nftScript } from "./nftables.js";

const rules = {
  masq: {
    network: IPNet.parse("10.244.0.0/16")!,
    subnet: IPNet.parse("10.244.1.0/24")!,
    randomFully: false,
  },
  forward: { network: IPNet.parse("10.244.0.0/16")! },
};

test("restorePayload() rewrites flannel's chains and re-appends each jump after deleting every old copy", () => {
  const saved = {
    nat: ':FLANNEL-POSTRTG - [0:0]\n-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    filter: "",
  };
  const payload = restorePayload(iptablesRules(rules), saved, new Set(["nat", "filter"]));
  const nat = payload.split("COMMIT")[0]!;
  assert.equal(
    nat.split('-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG').length,
    3,
    "both copies deleted",
  );
  assert.match(nat, /^\*nat\n:FLANNEL-POSTRTG - \[0:0\]\n/);
  assert.match(
    nat,
    /-A FLANNEL-POSTRTG -s 10\.244\.0\.0\/16 ! -d 224\.0\.0\.0\/4 -m comment --comment "flanneld masq" -j MASQUERADE\n/,
  );
  assert.match(
    payload,
    /\*filter\n:FLANNEL-FWD - \[0:0\]\n-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n/,
  );
});

test("restorePayload() removes flannel's chain when its rules are switched off", () => {
  const saved = {
    nat: ':FLANNEL-POSTRTG - [0:0]\n-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    filter: "",
  };
  const payload = restorePayload(
    iptablesRules({ masq: null, forward: null }),
    saved,
    new Set(["nat", "filter"]),
  );
  assert.equal(
    payload,
    '*nat\n:FLANNEL-POSTRTG - [0:0]\n-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n-X FLANNEL-POSTRTG\nCOMMIT\n',
  );
});

test("nftScript() declares, flushes and fills both chains in one script", () => {
  const script = nftScript(rules);
  assert.match(script, /^add table ip flannel-ipv4 \{ comment "rules for flannel-ipv4" ; \}\n/);
  assert.match(
    script,
    /add chain ip flannel-ipv4 postrtg \{ comment "chain to manage traffic masquerading by flannel" ; type nat hook postrouting priority srcnat ; \}\nflush chain ip flannel-ipv4 postrtg\n/,
  );
  assert.match(
    script,
    /add rule ip flannel-ipv4 postrtg ip saddr != 10\.244\.0\.0\/16 ip daddr 10\.244\.0\.0\/16 masquerade\n/,
  );
  assert.match(script, /add rule ip flannel-ipv4 forward ip daddr 10\.244\.0\.0\/16 accept\n/);
  // Without IPv6 the ip6 table is declared (as flannel does) and holds no chains.
  assert.match(
    script,
    /add table ip6 flannel-ipv6 \{ comment "rules for flannel-ipv6" ; \}\nadd chain ip6 flannel-ipv6 postrtg\ndelete chain ip6 flannel-ipv6 postrtg\n/,
  );
});

const dualStack = {
  ...rules,
  masq6: {
    network: IPNet.parse("fd00:10:244::/56")!,
    subnet: IPNet.parse("fd00:10:244:1::/64")!,
    randomFully: false,
  },
  forward6: { network: IPNet.parse("fd00:10:244::/56")! },
};

test("IPv6 rules: the same chains through ip6tables, with ff00::/8 left alone", () => {
  const v6 = iptablesRules(dualStack, 6).map((r) => `-A ${r.chain} ${r.spec}`);
  assert.ok(
    v6.includes(
      '-A FLANNEL-POSTRTG -s fd00:10:244::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE',
    ),
    v6.join("\n"),
  );
  assert.ok(
    v6.includes(
      '-A FLANNEL-FWD -d fd00:10:244::/56 -m comment --comment "flanneld forward" -j ACCEPT',
    ),
  );
  assert.equal(iptablesRules(rules, 6).length, 0, "no IPv6 rules without EnableIPv6");
  assert.deepEqual(
    iptablesRules(dualStack, 4),
    iptablesRules(rules, 4),
    "IPv4 rules are unchanged by IPv6",
  );
});

test("IPv6 rules: table ip6 flannel-ipv6 with ip6 matches", () => {
  const script = nftScript(dualStack);
  assert.match(
    script,
    /add rule ip6 flannel-ipv6 postrtg ip6 saddr fd00:10:244::\/56 ip6 daddr != ff00::\/8 masquerade\n/,
  );
  assert.match(script, /add rule ip6 flannel-ipv6 forward ip6 saddr fd00:10:244::\/56 accept\n/);
});

test("chainRulesOf() reads the rule lines of a chain from an nft listing", () => {
  const listing =
    'table ip flannel-ipv4 {\n\tcomment "x"\n\tchain forward {\n\t\tcomment "y"\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tip saddr 10.0.0.0/8 accept\n\t}\n}\n';
  assert.deepEqual(chainRulesOf(listing, "forward"), ["ip saddr 10.0.0.0/8 accept"]);
  assert.equal(chainRulesOf(listing, "postrtg"), null);
});
