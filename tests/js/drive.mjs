// Drives the acr-retag emulator through every public method of the JavaScript
// @azure/container-registry SDK (ContainerRegistryClient, ContainerRepository, RegistryArtifact,
// ContainerRegistryContentClient), unmodified, over HTTPS (the emulator's CA comes in through
// NODE_EXTRA_CA_CERTS). Run by tests/js/test_js_sdk.py, which judges the outcome.
//
// Environment: ACR_ENDPOINT (https://127.0.0.1:PORT, loopback only), JS_MODE (anonymous |
// credential), JS_PREFIX (repository prefix, unique per run).
//
// Output: one JSON document on stdout: {"mode", "sdkVersion", "steps": [{name, method, ok, error,
// status, log: [start, end], detail}], "getTokenCalls"}. `log` is the slice of the emulator's
// request log (GET /_emulator/requests, an admin call that is itself never logged) written while
// the step ran, so the test can read exactly which requests each method sent.

import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { Readable } from "node:stream";

import {
  ContainerRegistryClient,
  ContainerRegistryContentClient,
  KnownManifestMediaType,
} from "@azure/container-registry";

const require = createRequire(import.meta.url);
const sdkVersion = require("@azure/container-registry/package.json").version;

const endpoint = process.env.ACR_ENDPOINT;
const mode = process.env.JS_MODE ?? "credential";
const prefix = process.env.JS_PREFIX ?? `js-${randomBytes(3).toString("hex")}`;
const endpointUrl = new URL(endpoint ?? "");
if (endpointUrl.hostname !== "127.0.0.1" || endpointUrl.protocol !== "https:") {
  throw new Error(`ACR_ENDPOINT must be https://127.0.0.1:PORT (loopback only), got ${endpoint}`);
}

const OCI_MANIFEST = KnownManifestMediaType.OciImageManifest;
const DOCKER_MANIFEST = KnownManifestMediaType.DockerManifest;
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";

// A TokenCredential as @azure/core-auth defines it: getToken(scopes, options) resolves to an
// AAD-shaped AccessToken. The emulator's /oauth2/exchange takes any non-empty AAD token.
const getTokenCalls = [];
const credential = {
  async getToken(scopes) {
    getTokenCalls.push(Array.isArray(scopes) ? scopes : [scopes]);
    return {
      token: `aad-js-${randomBytes(16).toString("hex")}`,
      expiresOnTimestamp: Date.now() + 3600 * 1000,
    };
  },
};
const cred = mode === "credential" ? credential : undefined;
const clientOptions = { retryOptions: { maxRetries: 0 } };

const sha256 = (buffer) => `sha256:${createHash("sha256").update(buffer).digest("hex")}`;

async function logLength() {
  const response = await fetch(`${endpoint}/_emulator/requests`);
  if (!response.ok) throw new Error(`admin request log: HTTP ${response.status}`);
  return (await response.json()).length;
}

async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

async function streamToBuffer(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const steps = [];

// Runs one SDK call; `expectStatus` means the call must fail with that HTTP status.
async function step(name, method, fn, { expectStatus } = {}) {
  const start = await logLength();
  let ok = true;
  let error = null;
  let status = null;
  let detail = null;
  try {
    detail = (await fn()) ?? null;
    if (expectStatus !== undefined) {
      ok = false;
      error = `expected HTTP ${expectStatus}, the call succeeded`;
    }
  } catch (err) {
    status = err?.statusCode ?? null;
    if (expectStatus !== undefined && status === expectStatus) {
      detail = { code: err?.code ?? null, message: String(err?.message ?? "").slice(0, 300) };
    } else {
      ok = false;
      error = `${err?.name ?? "Error"}: ${String(err?.message ?? err).slice(0, 500)}`;
    }
  }
  const end = await logLength();
  steps.push({ name, method, ok, error, status, log: [start, end], detail });
  return detail;
}

const repo = `${prefix}/app`;
const goneRepo = `${prefix}/gone`;
const dropRepo = `${prefix}/drop`;

const client = cred
  ? new ContainerRegistryClient(endpoint, cred, clientOptions)
  : new ContainerRegistryClient(endpoint, clientOptions);
// The content client's typings require a credential; in anonymous mode we pass `undefined`
// (its refresh-token credential then uses grant_type=password like the registry client).
const content = new ContainerRegistryContentClient(endpoint, repo, cred, clientOptions);
const goneContent = new ContainerRegistryContentClient(endpoint, goneRepo, cred, clientOptions);
const dropContent = new ContainerRegistryContentClient(endpoint, dropRepo, cred, clientOptions);

const config = Buffer.from(
  JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
);
// Over the SDK's 4 MiB chunk size, so uploadBlob sends two PATCHes.
const layer = Buffer.alloc(5 * 1024 * 1024 + 17, 7);
const extra = randomBytes(1000);
const ids = {};

async function full() {
// ---- ContainerRegistryContentClient -------------------------------------------------------
await step("uploadBlob (config, Buffer)", "ContainerRegistryContentClient.uploadBlob", async () => {
  const result = await content.uploadBlob(config);
  check(result.digest === sha256(config), "digest is the sha256 of the bytes");
  check(result.sizeInBytes === config.length, "sizeInBytes");
  ids.config = result.digest;
  return result;
});
await step("uploadBlob (5 MiB layer, stream)", "ContainerRegistryContentClient.uploadBlob", async () => {
  const result = await content.uploadBlob(Readable.from([layer]));
  check(result.digest === sha256(layer), "digest is the sha256 of the bytes");
  check(result.sizeInBytes === layer.length, "sizeInBytes");
  ids.layer = result.digest;
  return result;
});

const ociManifest = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256(config) },
  layers: [{ mediaType: OCI_LAYER, size: layer.length, digest: sha256(layer) }],
};
await step("setManifest (OCI object, tag v1)", "ContainerRegistryContentClient.setManifest", async () => {
  const result = await content.setManifest(ociManifest, { tag: "v1" });
  check(result.digest === sha256(Buffer.from(JSON.stringify(ociManifest))), "digest of the JSON");
  ids.v1 = result.digest;
  return result;
});
const dockerManifest = Buffer.from(
  JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, size: config.length, digest: sha256(config) },
      layers: [{ mediaType: DOCKER_LAYER, size: layer.length, digest: sha256(layer) }],
    },
    null,
    3,
  ),
);
await step(
  "setManifest (Docker bytes, tag docker)",
  "ContainerRegistryContentClient.setManifest",
  async () => {
    const result = await content.setManifest(dockerManifest, {
      tag: "docker",
      mediaType: DOCKER_MANIFEST,
    });
    check(result.digest === sha256(dockerManifest), "bytes kept as sent (3-space indent)");
    ids.docker = result.digest;
    return result;
  },
);
const index = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {
        mediaType: OCI_MANIFEST,
        size: Buffer.from(JSON.stringify(ociManifest)).length,
        digest: sha256(Buffer.from(JSON.stringify(ociManifest))),
        platform: { architecture: "amd64", os: "linux" },
      },
    ],
  }),
);
await step("setManifest (OCI index, by digest)", "ContainerRegistryContentClient.setManifest", async () => {
  const result = await content.setManifest(index, { mediaType: OCI_INDEX });
  check(result.digest === sha256(index), "digest of the bytes");
  ids.index = result.digest;
  return result;
});
await step(
  "setManifest (same index bytes, tag multi = a re-tag)",
  "ContainerRegistryContentClient.setManifest",
  async () => {
    const result = await content.setManifest(index, { tag: "multi", mediaType: OCI_INDEX });
    check(result.digest === ids.index, "same digest");
    return result;
  },
);
await step("getManifest (tag v1)", "ContainerRegistryContentClient.getManifest", async () => {
  const result = await content.getManifest("v1");
  check(result.digest === ids.v1, "digest");
  check(result.mediaType === OCI_MANIFEST, `mediaType ${result.mediaType}`);
  check(JSON.stringify(result.manifest) === JSON.stringify(ociManifest), "manifest");
  return { digest: result.digest, mediaType: result.mediaType };
});
await step("getManifest (Docker, by digest)", "ContainerRegistryContentClient.getManifest", async () => {
  const result = await content.getManifest(ids.docker);
  check(result.mediaType === DOCKER_MANIFEST, `mediaType ${result.mediaType}`);
  check(result.content.equals(dockerManifest), "bytes are byte-exact");
  return { digest: result.digest, mediaType: result.mediaType };
});
await step("getManifest (index, tag multi)", "ContainerRegistryContentClient.getManifest", async () => {
  const result = await content.getManifest("multi");
  check(result.mediaType === OCI_INDEX, `mediaType ${result.mediaType}`);
  check(result.digest === ids.index, "digest");
  return { digest: result.digest, mediaType: result.mediaType };
});
await step(
  "getManifest (unknown tag -> 404)",
  "ContainerRegistryContentClient.getManifest",
  () => content.getManifest("no-such-tag"),
  { expectStatus: 404 },
);
await step("downloadBlob (5 MiB layer)", "ContainerRegistryContentClient.downloadBlob", async () => {
  const result = await content.downloadBlob(ids.layer);
  const bytes = await streamToBuffer(result.content);
  check(bytes.equals(layer), "same bytes");
  return { digest: result.digest, length: bytes.length };
});
await step("uploadBlob (extra blob)", "ContainerRegistryContentClient.uploadBlob", async () => {
  ids.extra = (await content.uploadBlob(extra)).digest;
  return { digest: ids.extra };
});
await step("deleteBlob", "ContainerRegistryContentClient.deleteBlob", () =>
  content.deleteBlob(ids.extra),
);
await step(
  "downloadBlob (deleted blob -> 404)",
  "ContainerRegistryContentClient.downloadBlob",
  () => content.downloadBlob(ids.extra),
  { expectStatus: 404 },
);

// Two more repositories: one for deleteRepository, one for ContainerRepository.delete.
for (const [other, name] of [
  [goneContent, "gone"],
  [dropContent, "drop"],
]) {
  await step(`setManifest (repository ${name}, tag v1)`, "ContainerRegistryContentClient.setManifest", async () => {
    await other.uploadBlob(config);
    await other.uploadBlob(Buffer.from("layer of " + name));
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256(config) },
      layers: [
        {
          mediaType: OCI_LAYER,
          size: Buffer.from("layer of " + name).length,
          digest: sha256(Buffer.from("layer of " + name)),
        },
      ],
    };
    return other.setManifest(manifest, { tag: "v1" });
  });
}

// ---- ContainerRegistryClient ------------------------------------------------------------------
await step("listRepositoryNames", "ContainerRegistryClient.listRepositoryNames", async () => {
  const names = await collect(client.listRepositoryNames());
  for (const name of [repo, goneRepo, dropRepo]) check(names.includes(name), `lists ${name}`);
  return { count: names.length };
});
await step(
  "listRepositoryNames.byPage (maxPageSize 1)",
  "ContainerRegistryClient.listRepositoryNames",
  async () => {
    const pages = await collect(client.listRepositoryNames().byPage({ maxPageSize: 1 }));
    check(pages.length >= 3, `at least 3 pages, got ${pages.length}`);
    check(pages.every((page) => page.length <= 1), "at most one name a page");
    const names = pages.flat();
    check(new Set(names).size === names.length, "no name twice");
    return { pages: pages.length };
  },
);
await step(
  "listRepositoryNames.byPage (resume from a continuationToken)",
  "ContainerRegistryClient.listRepositoryNames",
  async () => {
    const first = (await client.listRepositoryNames().byPage({ maxPageSize: 1 }).next()).value;
    check(first.continuationToken, "the first page has a continuationToken");
    const rest = await collect(
      client.listRepositoryNames().byPage({ maxPageSize: 1, continuationToken: first.continuationToken }),
    );
    const names = [...first, ...rest.flat()];
    for (const name of [repo, goneRepo, dropRepo]) check(names.includes(name), `lists ${name}`);
    return { pages: 1 + rest.length };
  },
);
const repository = await step("getRepository", "ContainerRegistryClient.getRepository", async () => {
  const repository = client.getRepository(repo);
  check(repository.name === repo, "name");
  check(repository.registryEndpoint === endpoint, "registryEndpoint");
  return repository;
});
const artifact = await step("getArtifact (tag v1)", "ContainerRegistryClient.getArtifact", async () => {
  const artifact = client.getArtifact(repo, "v1");
  check(artifact.repositoryName === repo, "repositoryName");
  check(
    artifact.fullyQualifiedReference === `${endpointUrl.hostname}/${repo}:v1`,
    `fullyQualifiedReference ${artifact.fullyQualifiedReference}`,
  );
  return artifact;
});

// ---- ContainerRepository ----------------------------------------------------------------------
await step("getProperties", "ContainerRepository.getProperties", async () => {
  const props = await repository.getProperties();
  check(props.name === repo, "name");
  check(props.manifestCount === 3, `manifestCount ${props.manifestCount}`);
  check(props.tagCount === 3, `tagCount ${props.tagCount}`);
  check(props.createdOn instanceof Date && props.lastUpdatedOn instanceof Date, "dates");
  check(props.canDelete === true && props.canWrite === true, "changeable attributes");
  return { manifestCount: props.manifestCount, tagCount: props.tagCount };
});
await step("updateProperties", "ContainerRepository.updateProperties", async () => {
  const props = await repository.updateProperties({ canList: true, canRead: true, canWrite: true, canDelete: true });
  check(props.name === repo && props.canDelete === true, "answer carries the attributes");
  return { canDelete: props.canDelete };
});
await step("listManifestProperties", "ContainerRepository.listManifestProperties", async () => {
  const manifests = await collect(repository.listManifestProperties());
  const digests = manifests.map((m) => m.digest).sort();
  check(JSON.stringify(digests) === JSON.stringify([ids.v1, ids.docker, ids.index].sort()), "digests");
  const v1 = manifests.find((m) => m.digest === ids.v1);
  check(v1.architecture === "amd64" && v1.operatingSystem === "linux", "platform of v1");
  check(JSON.stringify(v1.tags) === JSON.stringify(["v1"]), `tags ${v1.tags}`);
  return { count: manifests.length };
});
await step(
  "listManifestProperties.byPage (LastUpdatedOnDescending, maxPageSize 1)",
  "ContainerRepository.listManifestProperties",
  async () => {
    const pages = await collect(
      repository.listManifestProperties({ order: "LastUpdatedOnDescending" }).byPage({ maxPageSize: 1 }),
    );
    const digests = pages.flat().map((m) => m.digest);
    check(pages.length === 3, `3 pages, got ${pages.length}`);
    check(JSON.stringify(digests) === JSON.stringify([ids.index, ids.docker, ids.v1]), `order ${digests}`);
    return { pages: pages.length };
  },
);
await step(
  "listManifestProperties (LastUpdatedOnAscending)",
  "ContainerRepository.listManifestProperties",
  async () => {
    const digests = (await collect(repository.listManifestProperties({ order: "LastUpdatedOnAscending" }))).map(
      (m) => m.digest,
    );
    check(JSON.stringify(digests) === JSON.stringify([ids.v1, ids.docker, ids.index]), `order ${digests}`);
    return { count: digests.length };
  },
);
await step("getArtifact (from repository, by digest)", "ContainerRepository.getArtifact", async () => {
  const byDigest = repository.getArtifact(ids.docker);
  check(byDigest.fullyQualifiedReference === `${endpointUrl.hostname}/${repo}@${ids.docker}`, "reference");
  return { fullyQualifiedReference: byDigest.fullyQualifiedReference };
});

// ---- RegistryArtifact -------------------------------------------------------------------------
await step("getManifestProperties (tag v1)", "RegistryArtifact.getManifestProperties", async () => {
  const props = await artifact.getManifestProperties();
  check(props.digest === ids.v1, "digest");
  check(props.repositoryName === repo, "repositoryName");
  check(props.sizeInBytes > layer.length, `sizeInBytes ${props.sizeInBytes}`);
  check(props.architecture === "amd64" && props.operatingSystem === "linux", "platform");
  return { digest: props.digest, sizeInBytes: props.sizeInBytes };
});
await step(
  "getManifestProperties (index, by digest)",
  "RegistryArtifact.getManifestProperties",
  async () => {
    const props = await repository.getArtifact(ids.index).getManifestProperties();
    check(props.digest === ids.index, "digest");
    const refs = props.relatedArtifacts ?? [];
    check(refs.length === 1 && refs[0].digest === ids.v1, "relatedArtifacts (references)");
    return { relatedArtifacts: refs.length };
  },
);
await step("updateManifestProperties (lock)", "RegistryArtifact.updateManifestProperties", async () => {
  const props = await artifact.updateManifestProperties({ canDelete: false, canWrite: false });
  check(props.canDelete === false && props.canWrite === false, "locked");
  return { canDelete: props.canDelete, canWrite: props.canWrite };
});
await step("delete (locked manifest -> 405)", "RegistryArtifact.delete", () => artifact.delete(), {
  expectStatus: 405,
});
await step("updateManifestProperties (unlock)", "RegistryArtifact.updateManifestProperties", async () => {
  const props = await artifact.updateManifestProperties({ canDelete: true, canWrite: true });
  check(props.canDelete === true && props.canWrite === true, "unlocked");
  return { canDelete: props.canDelete };
});
await step("getTagProperties", "RegistryArtifact.getTagProperties", async () => {
  const props = await artifact.getTagProperties("v1");
  check(props.name === "v1" && props.digest === ids.v1, "name and digest");
  check(props.createdOn instanceof Date, "createdOn");
  return { name: props.name, digest: props.digest };
});
await step(
  "getTagProperties (unknown tag -> 404)",
  "RegistryArtifact.getTagProperties",
  () => artifact.getTagProperties("no-such-tag"),
  { expectStatus: 404 },
);
await step("updateTagProperties", "RegistryArtifact.updateTagProperties", async () => {
  const locked = await artifact.updateTagProperties("v1", { canWrite: false });
  check(locked.canWrite === false, "locked");
  const unlocked = await artifact.updateTagProperties("v1", { canWrite: true });
  check(unlocked.canWrite === true, "unlocked");
  return { name: unlocked.name };
});
await step("listTagProperties", "RegistryArtifact.listTagProperties", async () => {
  const tags = (await collect(artifact.listTagProperties())).map((t) => t.name);
  check(JSON.stringify(tags) === JSON.stringify(["docker", "multi", "v1"]), `tags ${tags}`);
  return { tags };
});
await step(
  "listTagProperties.byPage (LastUpdatedOnDescending, maxPageSize 1)",
  "RegistryArtifact.listTagProperties",
  async () => {
    const pages = await collect(
      artifact.listTagProperties({ order: "LastUpdatedOnDescending" }).byPage({ maxPageSize: 1 }),
    );
    const tags = pages.flat().map((t) => t.name);
    check(JSON.stringify(tags) === JSON.stringify(["multi", "docker", "v1"]), `order ${tags}`);
    return { pages: pages.length };
  },
);
await step("setManifest (tag extra on v1)", "ContainerRegistryContentClient.setManifest", () =>
  content.setManifest(ociManifest, { tag: "extra" }),
);
await step("deleteTag", "RegistryArtifact.deleteTag", () => artifact.deleteTag("extra"));
await step(
  "getTagProperties (deleted tag -> 404)",
  "RegistryArtifact.getTagProperties",
  () => artifact.getTagProperties("extra"),
  { expectStatus: 404 },
);
await step("delete (tag docker)", "RegistryArtifact.delete", () =>
  client.getArtifact(repo, "docker").delete(),
);
await step(
  "getManifest (deleted manifest -> 404)",
  "ContainerRegistryContentClient.getManifest",
  () => content.getManifest(ids.docker),
  { expectStatus: 404 },
);
await step("deleteManifest (index)", "ContainerRegistryContentClient.deleteManifest", () =>
  content.deleteManifest(ids.index),
);

// ---- deleting repositories ----------------------------------------------------------------------
await step("deleteRepository", "ContainerRegistryClient.deleteRepository", () =>
  client.deleteRepository(goneRepo),
);
await step("delete (repository)", "ContainerRepository.delete", () =>
  client.getRepository(dropRepo).delete(),
);
await step(
  "getProperties (deleted repository -> 404)",
  "ContainerRepository.getProperties",
  () => client.getRepository(dropRepo).getProperties(),
  { expectStatus: 404 },
);
await step("listRepositoryNames (after deletes)", "ContainerRegistryClient.listRepositoryNames", async () => {
  const names = await collect(client.listRepositoryNames());
  check(names.includes(repo) && !names.includes(goneRepo) && !names.includes(dropRepo), `names ${names}`);
  return { count: names.length };
});

}

// Real ACR with anonymous pull enabled: reads work without a credential (pull, metadata_read,
// the catalog), every write is refused with 401 after the anonymous token exchange.
async function anonymousPull() {
  const writer = new ContainerRegistryContentClient(endpoint, repo, credential, clientOptions);
  await step("setup: push v1 with a credential", "setup", async () => {
    await writer.uploadBlob(config);
    ids.layer = (await writer.uploadBlob(extra)).digest;
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256(config) },
      layers: [{ mediaType: OCI_LAYER, size: extra.length, digest: ids.layer }],
    };
    ids.v1 = (await writer.setManifest(manifest, { tag: "v1" })).digest;
    return manifest;
  });
  const manifest = steps[0].detail;
  const artifact = client.getArtifact(repo, "v1");
  await step("listRepositoryNames", "ContainerRegistryClient.listRepositoryNames", async () => {
    const names = await collect(client.listRepositoryNames());
    check(names.includes(repo), "lists the repository");
  });
  await step("getProperties", "ContainerRepository.getProperties", async () => {
    check((await client.getRepository(repo).getProperties()).tagCount === 1, "tagCount");
  });
  await step("listManifestProperties", "ContainerRepository.listManifestProperties", async () => {
    check((await collect(client.getRepository(repo).listManifestProperties())).length === 1, "one");
  });
  await step("getManifestProperties", "RegistryArtifact.getManifestProperties", async () => {
    check((await artifact.getManifestProperties()).digest === ids.v1, "digest");
  });
  await step("getTagProperties", "RegistryArtifact.getTagProperties", async () => {
    check((await artifact.getTagProperties("v1")).digest === ids.v1, "digest");
  });
  await step("listTagProperties", "RegistryArtifact.listTagProperties", async () => {
    check((await collect(artifact.listTagProperties())).length === 1, "one tag");
  });
  await step("getManifest", "ContainerRegistryContentClient.getManifest", async () => {
    check((await content.getManifest("v1")).digest === ids.v1, "digest");
  });
  await step("downloadBlob", "ContainerRegistryContentClient.downloadBlob", async () => {
    check((await streamToBuffer((await content.downloadBlob(ids.layer)).content)).equals(extra), "bytes");
  });
  const refused = { expectStatus: 401 };
  await step("updateProperties (-> 401)", "ContainerRepository.updateProperties",
    () => client.getRepository(repo).updateProperties({ canDelete: false }), refused);
  await step("updateManifestProperties (-> 401)", "RegistryArtifact.updateManifestProperties",
    () => artifact.updateManifestProperties({ canDelete: false }), refused);
  await step("updateTagProperties (-> 401)", "RegistryArtifact.updateTagProperties",
    () => artifact.updateTagProperties("v1", { canDelete: false }), refused);
  await step("deleteTag (-> 401)", "RegistryArtifact.deleteTag", () => artifact.deleteTag("v1"), refused);
  await step("delete (-> 401)", "RegistryArtifact.delete", () => artifact.delete(), refused);
  await step("deleteRepository (-> 401)", "ContainerRegistryClient.deleteRepository",
    () => client.deleteRepository(repo), refused);
  await step("delete repository (-> 401)", "ContainerRepository.delete",
    () => client.getRepository(repo).delete(), refused);
  await step("uploadBlob (-> 401)", "ContainerRegistryContentClient.uploadBlob",
    () => content.uploadBlob(Buffer.from("anonymous")), refused);
  await step("setManifest (-> 401)", "ContainerRegistryContentClient.setManifest",
    () => content.setManifest(manifest, { tag: "anon" }), refused);
  await step("deleteManifest (-> 401)", "ContainerRegistryContentClient.deleteManifest",
    () => content.deleteManifest(ids.v1), refused);
  await step("deleteBlob (-> 401)", "ContainerRegistryContentClient.deleteBlob",
    () => content.deleteBlob(ids.layer), refused);
  await step("getManifest (still there)", "ContainerRegistryContentClient.getManifest", async () => {
    check((await content.getManifest("v1")).digest === ids.v1, "digest");
  });
}

await (mode === "anonymous-pull" ? anonymousPull() : full());

process.stdout.write(
  JSON.stringify({
    mode,
    sdkVersion,
    node: process.version,
    steps: steps.map(({ detail, ...rest }) => ({
      ...rest,
      detail: detail && typeof detail === "object" && !("registryEndpoint" in detail) ? detail : null,
    })),
    getTokenCalls: getTokenCalls.length,
    getTokenScopes: [...new Set(getTokenCalls.flat())],
  }) + "\n",
);
