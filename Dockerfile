# tumblerd as a sidecar: reads the host's kernel log (mounted read-only) and changes the host's
# firewall (host network, NET_ADMIN). See the README for the docker run line and a compose file.
# The build steps are the README's install steps: npm ci, npm run build.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY config ./config
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ipset nftables \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tumbler
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/config ./config
RUN chmod +x dist/cli/*.js \
 && ln -s /opt/tumbler/dist/cli/tumblerd.js /usr/local/bin/tumblerd \
 && ln -s /opt/tumbler/dist/cli/tumbler.js /usr/local/bin/tumbler
# Root inside the container: iptables needs it even with NET_ADMIN; the capabilities docker
# grants (NET_ADMIN, and no others added) bound what that root can do.
VOLUME /var/lib/tumblerd
ENTRYPOINT ["tumblerd"]
CMD ["--config", "/etc/tumblerd.yaml"]
