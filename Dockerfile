# syntax=docker/dockerfile:1
# Portcullis gateway image (docs/deployment.md#container).
#   docker build -t portcullis .
#   docker run --read-only -p 8080:8080 -v "$PWD/portcullis.yaml:/etc/portcullis/portcullis.yaml:ro" portcullis
# Two stages: `build` compiles the package exactly as `npm pack` makes it (prepack: src only, no
# tests, no source maps) and installs its production dependencies from the lockfile; the runtime
# stage gets only that, runs as an unprivileged user (uid 1000) and writes nothing to its root
# filesystem (logs go to stdout/stderr; the audit log, when on, to a volume).
# NODE_IMAGE: any Debian-based image with Node.js 20.18+ (and npm in the build stage) whose user
# 1000 is `node`; the official one by default.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: the build needs typescript only (esbuild's binary is for the dashboard bundle,
# which is committed as src/dashboard/assets.generated.ts).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json LICENSE README.md ./
COPY bin ./bin
COPY scripts/build-package.mjs ./scripts/
COPY src ./src
COPY docs ./docs
COPY examples ./examples
RUN npm pack --pack-destination /tmp --silent \
 && mkdir /app \
 && tar -xzf /tmp/portcullis-*.tgz -C /app --strip-components=1 \
 && cp package-lock.json /app/ \
 && cd /app \
 && npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -f package-lock.json \
 && npm cache clean --force

FROM ${NODE_IMAGE}
# The runtime needs Node only: npm, npx, corepack and yarn go (less to patch, less to exploit).
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
ENV NODE_ENV=production \
    PORTCULLIS_CONFIG=/etc/portcullis/portcullis.yaml \
    PORTCULLIS_HEALTH_URL=http://127.0.0.1:9901/readyz
WORKDIR /app
COPY --from=build /app /app
# A default config: the admin listener on all interfaces (probes come from outside the container);
# mount yours over it.
COPY deploy/container/portcullis.yaml /etc/portcullis/portcullis.yaml
USER 1000:1000
EXPOSE 8080 9901
# /readyz answers 200 once the listeners are up and 503 while starting or draining. No shell or
# curl needed: the image's own Node does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.PORTCULLIS_HEALTH_URL).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains (shutdown.drainTimeoutMs), SIGHUP reloads. Node runs as PID 1 and handles both
# itself; it starts no other process (workers from --workers are its own children, reaped by it).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/portcullis.js"]
CMD ["serve"]
