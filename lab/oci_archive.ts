/**
 * The lab's images, made here (no registry is reachable): a root folder of Debian's
 * busybox-static and some of its applets, and an OCI image archive of a folder: one uncompressed
 * layer, a config with the entrypoint, a manifest, and an index naming the image as containerd's
 * `ctr images import` reads it (the io.containerd.image.name annotation).
 */
import { createHash } from "node:crypto";
import { chmod, copyFile, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../src/util/exec.js";

const BUSYBOX = "/bin/busybox";

/** Makes `root` an image's root: /bin/busybox (Debian's busybox-static) and links for `applets`. */
export async function writeBusyboxRoot(root: string, applets: readonly string[]): Promise<void> {
  await mkdir(join(root, "bin"), { recursive: true });
  await copyFile(BUSYBOX, join(root, "bin/busybox"));
  await chmod(join(root, "bin/busybox"), 0o755);
  for (const applet of applets)
    await symlink("busybox", join(root, "bin", applet)).catch(() => undefined);
}

/** What the image is: its name, its root folder, what it runs. */
export interface OciImageSpec {
  /** The image's full name, such as localhost/flannel-ts-pause:1. */
  readonly name: string;
  readonly rootDir: string;
  readonly entrypoint: readonly string[];
}

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/** Writes a blob into the layout by its sha256; its descriptor. */
async function putBlob(layout: string, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const hex = createHash("sha256").update(bytes).digest("hex");
  await writeFile(join(layout, "blobs/sha256", hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/** Makes the archive at `out` (a tar of an OCI image layout); its layer is reproducible. */
export async function writeOciArchive(spec: OciImageSpec, out: string): Promise<void> {
  const work = `${out}.d`;
  const layout = join(work, "layout");
  await rm(work, { recursive: true, force: true });
  await mkdir(join(layout, "blobs/sha256"), { recursive: true });
  const layerTar = join(work, "layer.tar");
  const tarFlags = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0"];
  await run("tar", ["-C", spec.rootDir, ...tarFlags, "-cf", layerTar, "."]);
  const layer = await putBlob(
    layout,
    "application/vnd.oci.image.layer.v1.tar",
    await readFile(layerTar),
  );
  const config = await putBlob(
    layout,
    "application/vnd.oci.image.config.v1+json",
    Buffer.from(
      JSON.stringify({
        architecture: process.arch === "arm64" ? "arm64" : "amd64",
        os: "linux",
        config: { Entrypoint: spec.entrypoint },
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = await putBlob(
    layout,
    "application/vnd.oci.image.manifest.v1+json",
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config,
        layers: [layer],
      }),
    ),
  );
  const tag = spec.name.slice(spec.name.lastIndexOf(":") + 1);
  await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          ...manifest,
          annotations: {
            "io.containerd.image.name": spec.name,
            "org.opencontainers.image.ref.name": tag,
          },
        },
      ],
    }),
  );
  await run("tar", ["-C", layout, "-cf", out, "."]);
  await rm(work, { recursive: true, force: true });
}
