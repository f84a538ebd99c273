#!/usr/bin/env bash
# The guard as another repository would use it: `npm pack -w services/guard`, installed with
# express and Fastify into a fresh project outside this repository, type-checked there
# (scripts/packed-guard/consumer.ts against the installed declarations) and run there
# (scripts/packed-guard/check.mjs) against a real Sigil issuer started from this repository
# (embedded PGlite) with clients made by the CLI. Fails on any failure; cleans up its processes
# and directories. Needs the issuer built (`npm run build`; CI has built it for the tests).
# Runs alone: bash scripts/packed-guard.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
started=$SECONDS

work="$(mktemp -d "${TMPDIR:-/tmp}/sigil-packed-guard.XXXXXX")"
issuer_pid=""
cleanup() {
  if [ -n "$issuer_pid" ] && kill -0 "$issuer_pid" 2>/dev/null; then
    kill "$issuer_pid" 2>/dev/null || true
    wait "$issuer_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

[ -f services/issuer/dist/main.js ] || npm run build --silent

echo "== packed guard: npm pack -w services/guard"
mkdir -p "$work/pack" "$work/project" "$work/issuer"
npm pack -w services/guard --pack-destination "$work/pack" --silent >/dev/null
tarball="$(ls "$work"/pack/*.tgz)"
tar -tzf "$tarball" | sed 's#^package/##' | sort >"$work/contents"
echo "   $(basename "$tarball"): $(wc -l <"$work/contents") files"
# what the package must hold, and must not
for required in package.json README.md LICENSE dist/index.js dist/index.d.ts dist/fastify.js dist/fastify.d.ts dist/core-index.js dist/core-index.d.ts; do
  grep -qx "$required" "$work/contents" || { echo "the tarball lacks $required" >&2; exit 1; }
done
if grep -E '(^|/)test/|\.test\.|tsbuildinfo|tsconfig' "$work/contents"; then echo "the tarball holds test or build files (above)" >&2; exit 1; fi
# every source map names sources that are in the tarball
tar -xzf "$tarball" -C "$work/pack"
node -e '
  const fs = require("fs"), path = require("path");
  const dist = path.join(process.argv[1], "package/dist");
  for (const file of fs.readdirSync(dist).filter((name) => name.endsWith(".js.map"))) {
    for (const source of JSON.parse(fs.readFileSync(path.join(dist, file), "utf8")).sources) {
      if (!fs.existsSync(path.resolve(dist, source))) { console.error(`${file} names ${source}, not in the tarball`); process.exit(1); }
    }
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(process.argv[1], "package/package.json"), "utf8"));
  if (manifest.private) { console.error("the packed package.json is private"); process.exit(1); }
  for (const name of Object.keys(manifest.dependencies ?? {})) if (name.startsWith("@sigil/")) { console.error(`workspace dependency ${name}`); process.exit(1); }
' "$work/pack"

# the versions this repository locks, within the package's ranges
locked() { node -p "require('./package-lock.json').packages['node_modules/$1'].version"; }
deps=("$tarball" "express@$(locked express)" "fastify@$(locked fastify)" "@types/express@$(locked @types/express)" "@types/node@$(locked @types/node)")

echo "== packed guard: a fresh project in $work/project: npm install ${deps[*]/#$tarball/$(basename "$tarball")}"
cp scripts/packed-guard/check.mjs scripts/packed-guard/consumer.ts scripts/packed-guard/tsconfig.json "$work/project/"
printf '{ "name": "guard-consumer", "private": true, "type": "module" }\n' >"$work/project/package.json"
(cd "$work/project" && npm install --no-audit --no-fund --loglevel=error "${deps[@]}" >/dev/null)

echo "== packed guard: tsc on consumer.ts against the installed declarations"
"$repo/node_modules/.bin/tsc" -p "$work/project/tsconfig.json"

echo "== packed guard: a real issuer (PGlite) and clients made with the CLI"
port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
issuer="http://127.0.0.1:${port}"
audience="http://localhost:4001"
export DATA_DIR="$work/issuer/data" KEYS_DIR="$work/issuer/keys" LOG_LEVEL=warn
PORT="$port" ISSUER="$issuer" node services/issuer/dist/main.js >"$work/issuer/log" 2>&1 &
issuer_pid=$!
node -e '
  const deadline = Date.now() + 30000;
  (async () => {
    while (Date.now() < deadline) {
      try { if ((await fetch(process.argv[1] + "/healthz")).ok) return; } catch {}
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    console.error("the issuer did not answer /healthz within 30 s"); process.exit(1);
  })();
' "$issuer" || { cat "$work/issuer/log" >&2; exit 1; }
writer="$(node services/issuer/bin/sigil.js clients create --name packed-writer --grant client_credentials --scope "orders:read orders:write" --resource "$audience" --json)"
reader="$(node services/issuer/bin/sigil.js clients create --name packed-reader --grant client_credentials --scope "orders:read" --resource "$audience" --json)"
field() { node -p "JSON.parse(process.argv[1]).$2" "$1"; }

echo "== packed guard: express and Fastify apps using the installed package"
(cd "$work/project" && ISSUER="$issuer" AUDIENCE="$audience" \
  WRITER_ID="$(field "$writer" client_id)" WRITER_SECRET="$(field "$writer" client_secret)" \
  READER_ID="$(field "$reader" client_id)" READER_SECRET="$(field "$reader" client_secret)" \
  node check.mjs)
echo "== packed guard: passed in $((SECONDS - started)) s"
