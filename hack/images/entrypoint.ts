/**
 * What the airlock image holds and how it starts Node, shared by the image build, its test and
 * the benchmarks that start Airlock as the image does.
 */

/** the workspace packages whose sources (`<package>/src`) the image holds */
export const WORKSPACES = ['api', 'policy', 'kube', 'sidecar', 'operator', 'webhooks', 'cli', 'native'] as const;

/**
 * Node's flags in the image's entrypoint. --max-semi-space-size=8: V8 grows the young
 * generation's semi-spaces up to 16 MiB each under a high allocation rate (a large result through
 * the sidecar) and keeps them; 8 MiB bounds the sidecar's RSS under load with no measurable CPU
 * cost (cli/bin/airlock gives the local sidecar the same). The old-generation cap the launcher
 * adds is left out here: the operator's informer caches grow with the cluster. The shipped
 * compile cache is built with the same flags (V8 tags its cache with them).
 */
export const AIRLOCK_NODE_FLAGS = ['--disable-warning=ExperimentalWarning', '--liftoff-only', '--max-semi-space-size=8'] as const;

/** where the image keeps its compile cache (read-only), relative to the workspace at /app */
export const COMPILE_CACHE_DIR = '.node-compile-cache';

/**
 * The image's environment besides PATH and NODE_COMPILE_CACHE:
 * - MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own malloc arena; two are
 *   enough for Airlock's processes, whose JavaScript runs on one thread, and leave less memory
 *   fragmented across arenas (cli/bin/airlock gives the local sidecar the same; the operator's
 *   peak with 1,000 AgentConnections under `make bench-operator`: 196 instead of 200 MiB);
 * - NODE_COMPILE_CACHE_PORTABLE=1: the shipped compile cache keys modules by their path relative
 *   to it (compile-cache.ts).
 */
export const AIRLOCK_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', NODE_COMPILE_CACHE_PORTABLE: '1' };
