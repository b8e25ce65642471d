# nginx for docker-compose: Debian's nginx with the cache-purge module the edge cache needs (deploy/nginx.conf).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx libnginx-mod-http-cache-purge \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/cache/nginx
COPY deploy/nginx.conf /etc/nginx/nginx.conf
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
