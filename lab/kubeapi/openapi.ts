/**
 * The double's OpenAPI v3 discovery, as much as kubectl reads of it: the root (`/openapi/v3`)
 * naming each group/version's document, and per group/version the PATCH operation of each
 * kind with its `x-kubernetes-group-version-kind` and the `fieldValidation` parameter. From
 * these kubectl learns that the server validates fields itself (`--validate=strict`, the
 * default), so it sends `fieldValidation=Strict` instead of downloading schemas. There are no
 * schemas: `kubectl apply` then builds its patches from its own types, as it does for any
 * server whose OpenAPI lacks them. No `/openapi/v2`.
 */
import type { Json } from "./patch.js";
import { RESOURCE_INFO } from "./store.js";
import type { Resource } from "./store.js";

const RESOURCES = Object.keys(RESOURCE_INFO) as Resource[];

/** `api/v1`, `apis/networking.k8s.io/v1`: the root's keys for each group/version. */
function groupVersionPaths(): string[] {
  const paths = new Set(
    RESOURCES.map((r) => {
      const { group, version } = RESOURCE_INFO[r];
      return group === "" ? `api/${version}` : `apis/${group}/${version}`;
    }),
  );
  return [...paths];
}

function patchOperation(resource: Resource): Json {
  const info = RESOURCE_INFO[resource];
  return {
    patch: {
      operationId: `patch${info.kind}`,
      parameters: [
        { name: "dryRun", in: "query", schema: { type: "string" } },
        { name: "fieldManager", in: "query", schema: { type: "string" } },
        { name: "fieldValidation", in: "query", schema: { type: "string" } },
      ],
      responses: { "200": { description: "OK" } },
      "x-kubernetes-action": "patch",
      "x-kubernetes-group-version-kind": {
        group: info.group,
        version: info.version,
        kind: info.kind,
      },
    },
  };
}

/** The answer for an `/openapi/v3...` path, or null for one it does not serve. */
export function openApiV3(path: string): Json | null {
  if (path === "/openapi/v3")
    return {
      paths: Object.fromEntries(
        groupVersionPaths().map((gv) => [
          gv,
          { serverRelativeURL: `/openapi/v3/${gv}?hash=double` },
        ]),
      ),
    };
  const gv = path.replace(/^\/openapi\/v3\//, "");
  if (!groupVersionPaths().includes(gv)) return null;
  const paths: Record<string, Json> = {};
  for (const resource of RESOURCES) {
    const info = RESOURCE_INFO[resource];
    const own = info.group === "" ? `api/${info.version}` : `apis/${info.group}/${info.version}`;
    if (own !== gv) continue;
    const scope = info.namespaced ? "/namespaces/{namespace}" : "";
    paths[`/${gv}${scope}/${resource}/{name}`] = patchOperation(resource);
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes API double", version: "v1.32.0" },
    paths,
    components: { schemas: {} },
  };
}
