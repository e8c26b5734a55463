/**
 * The files the .deb installs besides the executable (scripts/package.mjs writes them): the
 * systemd unit, the defaults file with every FLANNELD_* variable, and flannel's conflist.
 */
export { conflistText } from "../cni/install.js";
import { envName } from "../cli/flag_spec.js";
import { FLANNELD_FLAGS } from "../cli/flanneld_flags.js";

/**
 * flanneld.service as flannel's: Type=notify (flanneld sends READY=1 once subnet.env is written),
 * restarted always, its FLANNELD_* variables from /etc/default/flanneld.
 */
export function systemdUnit(): string {
  return `[Unit]
Description=flannel-ts: flannel's network fabric for this host's pods
Documentation=https://github.com/flannel-io/flannel
After=network-online.target
Wants=network-online.target
Before=containerd.service kubelet.service

[Service]
Type=notify
NotifyAccess=main
EnvironmentFile=-/etc/default/flanneld
ExecStart=/usr/bin/flanneld $FLANNELD_OPTS
Restart=always
RestartSec=5
WatchdogSec=60
KillMode=process

[Install]
WantedBy=multi-user.target
`;
}

function shellValue(value: string | boolean | number | readonly string[]): string {
  const text = Array.isArray(value) ? value.join(",") : String(value);
  return /^[A-Za-z0-9_./:,=@+-]*$/.test(text) ? text : `"${text.replace(/["\\$`]/g, "\\$&")}"`;
}

/** /etc/default/flanneld: every variable flanneld reads, commented out, with its default. */
export function defaultsFile(): string {
  const lines = [
    "# flanneld's settings, read by flanneld.service (flannel-ts). Each FLANNELD_<FLAG> is the",
    "# flag --<flag>; uncomment and set what you need, then: systemctl restart flanneld",
    "# At least: FLANNELD_ETCD_ENDPOINTS (etcd mode), or FLANNELD_KUBE_SUBNET_MGR=true.",
    "",
  ];
  for (const spec of FLANNELD_FLAGS) {
    if (spec.name === "version") continue;
    lines.push(`# ${spec.help}`, `#${envName(spec.name)}=${shellValue(spec.default)}`, "");
  }
  lines.push("# Extra command-line flags for flanneld.", '#FLANNELD_OPTS=""', "");
  return lines.join("\n");
}
