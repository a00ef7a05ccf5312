# syntax=docker/dockerfile:1
#
# The rivet server: the `rivet` binary on distroless, as a non-root user,
# with the embedded store in the volume /data. See docs/deploy.md.
#
#   docker build -t rivet .
#   docker run -p 6420:6420 -v rivet-data:/data -e RIVET_ADMIN_TOKEN=change-me rivet
#
# For your own program, build your main package instead of ./cmd/rivet.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/rivet ./cmd/rivet \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rivet /usr/local/bin/rivet
# An empty /data owned by the nonroot user (65532): a new named volume
# takes this ownership, so the server can write its store there.
COPY --from=build --chown=65532:65532 /out/data /data
ENV RIVET_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 6420
USER 65532:65532
# SIGTERM drains gracefully: give `docker stop` more than 30 s (-t 45).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/rivet"]
CMD ["serve", "--listen", "0.0.0.0:6420", "--data", "/data"]
