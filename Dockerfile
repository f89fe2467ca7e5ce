# syntax=docker/dockerfile:1
# intentwall as a container: the release binary on distroless (glibc), non-root, no shell.
#
#   docker build -t intentwall .                          # with the live cloud backends
#   docker build --build-arg FEATURES= -t intentwall .    # snapshots only
#
# The image runs `intentwall` directly (ENTRYPOINT); Kubernetes `args:` replace only CMD, so a
# Job passes intentwall's own flags and never needs a shell. See docs/deploy.md.

# --- build -----------------------------------------------------------------------------------
# bookworm: the same glibc as the distroless runtime below (Debian 12)
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The live cloud backends (the AWS, Azure and GCP SDK clients) are the `live` feature of Cargo.toml;
# the default features hold the three provider plugins. `--build-arg FEATURES=` builds without
# live (a snapshot-only image, e.g. for a CI approval gate: much smaller and faster to build).
ARG FEATURES=live
# the release profile keeps full debug info for profiling (53 MB); the image keeps symbols for
# readable backtraces but drops the debug info (8 MB)
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features "${FEATURES}" \
 && install -m 0755 target/release/intentwall /intentwall

# --- runtime ---------------------------------------------------------------------------------
# cc: glibc, libgcc and CA certificates (the cloud SDKs speak TLS), nothing else: no shell, no
# package manager. :nonroot runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /intentwall /usr/local/bin/intentwall
USER 65532:65532
# the Job mounts a writable emptyDir here (plan files); the root filesystem stays read-only
WORKDIR /work
ENTRYPOINT ["intentwall"]
CMD ["--help"]
