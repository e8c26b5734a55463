/**
 * The Node annotations flannel reads and writes (flannel's pkg/subnet/kube/annotations.go), with
 * its rules for `--kube-annotation-prefix`: no slash gets `/` appended; one slash not at the end
 * and no trailing `-` gets `-` appended (`example.com/9` gives `example.com/9-backend-type`);
 * more than one slash is refused; the result must match flannel's (unanchored) pattern.
 */
import { ConfigError } from "../../errors.js";

/** flannel's default annotation prefix. */
export const DEFAULT_ANNOTATION_PREFIX = "flannel.alpha.coreos.com";

/** The full annotation names for one prefix. */
export interface Annotations {
  readonly subnetKubeManaged: string;
  readonly backendData: string;
  readonly backendV6Data: string;
  readonly backendType: string;
  readonly backendPublicIP: string;
  readonly backendPublicIPv6: string;
  readonly backendNodePublicIP: string;
  readonly backendNodePublicIPv6: string;
  readonly backendPublicIPOverwrite: string;
  readonly backendPublicIPv6Overwrite: string;
}

// Unanchored at the start, as flannel's regexp.MatchString is.
const PREFIX_PATTERN = /(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/;

/** Builds the annotation names for `--kube-annotation-prefix`; throws ConfigError when invalid. */
export function newAnnotations(prefixFlag: string): Annotations {
  let prefix = prefixFlag;
  const slashes = prefix.split("/").length - 1;
  if (slashes > 1) {
    throw new ConfigError(
      `Invalid --kube-annotation-prefix "${prefixFlag}": subnet/kube: prefix can contain at most single slash`,
    );
  }
  if (slashes === 0) prefix += "/";
  if (!prefix.endsWith("/") && !prefix.endsWith("-")) prefix += "-";
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError(
      `Invalid --kube-annotation-prefix "${prefixFlag}": subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*`,
    );
  }
  return {
    subnetKubeManaged: `${prefix}kube-subnet-manager`,
    backendData: `${prefix}backend-data`,
    backendV6Data: `${prefix}backend-v6-data`,
    backendType: `${prefix}backend-type`,
    backendPublicIP: `${prefix}public-ip`,
    backendPublicIPv6: `${prefix}public-ipv6`,
    backendNodePublicIP: `${prefix}node-public-ip`,
    backendNodePublicIPv6: `${prefix}node-public-ipv6`,
    backendPublicIPOverwrite: `${prefix}public-ip-overwrite`,
    backendPublicIPv6Overwrite: `${prefix}public-ipv6-overwrite`,
  };
}
