# Sigil issuer image. Build: docker build -t sigil .   Run: see docker-compose.yml and README.md.

FROM node:22-bookworm-slim AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# Package manifests (and the CLI's bin file, so npm links `sigil`) only: the dependency layers
# below are reused until a manifest or the lockfile changes.
FROM base AS manifests
COPY . /src
RUN cd /src && cp -r --parents package.json package-lock.json services/*/package.json services/*/bin /app/

# Full install and build. Scripts are skipped at install time because the sources are not
# there yet (the root `prepare` script would run the build); the build runs once they are.
FROM base AS build
COPY --from=manifests /app/ ./
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build \
 && mkdir /out \
 && cp -r --parents migrations services/*/package.json services/*/dist services/*/bin /out/ \
 && find /out -name '*.tsbuildinfo' -delete

# Production dependencies only. `--ignore-scripts` keeps the root `prepare` (a build that needs
# the dev dependencies) from running. It also skips argon2's install step, so argon2's native
# addon is compiled here against this image's Node headers: its prebuilt linux-x64 binary has
# crashed on load (seen on Node 20, Debian bookworm), and a compiled build/Release wins over it.
FROM base AS production-deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY --from=manifests /app/ ./
RUN npm ci --omit=dev --ignore-scripts \
 && if [ -d node_modules/argon2 ]; then \
      cd node_modules/argon2 \
      && node /usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/usr/local \
      && rm -rf build/Release/obj.target build/Release/.deps; \
    fi

FROM base AS runtime
ENV NODE_ENV=production \
    PORT=4000 \
    KEYS_DIR=/var/lib/sigil/keys \
    DATA_DIR=/var/lib/sigil/data
# Owned by the runtime user with mode 0700; a named volume mounted here starts with this owner.
RUN mkdir -p /var/lib/sigil/keys /var/lib/sigil/data \
 && chown -R node:node /var/lib/sigil \
 && chmod 0700 /var/lib/sigil/keys /var/lib/sigil/data
# Application files stay owned by root: the runtime user can read them, not change them.
COPY --from=production-deps /app/ ./
COPY --from=build /out/ ./
USER node
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "services/issuer/dist/main.js"]
