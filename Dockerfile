# syntax=docker/dockerfile:1
# The image Fly runs: Bun, the app with its production dependencies, and LiteFS as the entrypoint. LiteFS
# mounts /litefs, joins the cluster, runs the migrations on a primary candidate, then the app (litefs.yml).
ARG BUN_VERSION=1.4.5

FROM oven/bun:${BUN_VERSION}-slim AS deps
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production

FROM oven/bun:${BUN_VERSION}-slim
# fuse3 for the LiteFS mount, ca-certificates for Consul, sqlite3 for inspecting the database by hand.
RUN apt-get update -y \
  && apt-get install -y --no-install-recommends ca-certificates fuse3 sqlite3 \
  && rm -rf /var/lib/apt/lists/*
# 0.5.14 is LiteFS's last release (the project gets little new work): pinned, so a rebuild never changes it.
COPY --from=flyio/litefs:0.5.14 /usr/local/bin/litefs /usr/local/bin/litefs

WORKDIR /app
# Must agree with litefs.yml: the app on 8081 behind the proxy, on every interface (the private network is
# IPv6: replicas call the primary at <id>.vm.<app>.internal:INTERNAL_PORT), its database in the FUSE mount.
ENV NODE_ENV=production \
    PORT=8081 \
    HOST=:: \
    LITEFS_DIR=/litefs \
    DATABASE_URL=file:/litefs/app.db

COPY --from=deps /app/node_modules ./node_modules
COPY . .
COPY litefs.yml /etc/litefs.yml

# LiteFS runs as root (FUSE) and supervises the app; the app's exit stops the machine.
ENTRYPOINT ["litefs", "mount"]
